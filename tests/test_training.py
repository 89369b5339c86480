"""The training loop: trains through training_loss, skips bad clips, checkpoints load with weights_only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from evbench.harness.data import DataError
from evbench.harness.registry import create_method
from evbench.harness.training import TrainSpec, load_checkpoint, save_checkpoint, train_method


@dataclass
class _Item:
    x: torch.Tensor
    label: int


class _Separable:
    """Feature clips (T=5, D=16) whose class is the sign pattern of a few dimensions; clip 3 is unreadable."""

    def __init__(self, n: int = 64) -> None:
        rng = np.random.default_rng(0)
        self.labels = rng.integers(0, 3, n)
        centres = rng.normal(0, 3, (3, 16))
        self.x = centres[self.labels][:, None, :] + rng.normal(0, 1, (n, 5, 16))
        self.entries = list(range(n))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> _Item:
        if i == 3:
            raise DataError("clip3.npz", "truncated")
        return _Item(torch.tensor(self.x[i], dtype=torch.float32), int(self.labels[i]))


def _method():
    return create_method("uniform", config="features", num_classes=3, feature_dim=16, frames=5, gmacs_per_frame=1.0)


def test_training_learns_skips_bad_clips_and_checkpoint_roundtrips(tmp_path):
    data = _Separable()
    m = _method()
    report = train_method(m, data, TrainSpec(epochs=15, batch_size=16, lr=1e-2))
    assert report.logs[-1]["train_top1"] > 0.9
    assert report.skipped == [{"path": "clip3.npz", "error": "DataError: clip3.npz: truncated"}]
    assert not m.training
    ckpt = save_checkpoint(tmp_path / "m.pt", m, build={"method": "uniform", "config": "features", "num_classes": 3,
                                                         "overrides": {"feature_dim": 16, "frames": 5, "gmacs_per_frame": 1.0}},
                           train=TrainSpec().to_dict(), class_names=["a", "b", "c"], report=report)
    payload = load_checkpoint(ckpt)  # weights_only=True inside
    m2 = create_method(payload["build"]["method"], config=payload["build"]["config"],
                       num_classes=payload["build"]["num_classes"], **payload["build"]["overrides"])
    m2.load_state_dict(payload["state_dict"])
    x = torch.randn(2, 5, 16)
    with torch.inference_mode():
        assert torch.equal(m(x).logits, m2(x).logits)


def test_non_checkpoint_file_is_rejected_by_name(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
