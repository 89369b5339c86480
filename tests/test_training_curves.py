"""Training curves: per-epoch logs with a held-out validation split, the curve side file, the report section."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from evbench.harness.registry import create_method
from evbench.harness.training import (
    TrainSpec,
    curve_path,
    epoch_lr,
    save_checkpoint,
    train_method,
    validation_split,
)
from evbench.reports.training_curves import find_curves, training_section


@dataclass
class _Entry:
    id: str
    label: int


@dataclass
class _Item:
    x: torch.Tensor
    label: int


class _Clips:
    """SYNTHETIC feature clips (T=6, D=24, 3 classes): class centre + noise; records which clips were read."""

    def __init__(self, n: int = 60) -> None:
        rng = np.random.default_rng(1)
        self.labels = np.repeat(np.arange(3), n // 3)
        centres = rng.normal(0, 2, (3, 24))
        self.x = centres[self.labels][:, None, :] + rng.normal(0, 1, (n, 6, 24))
        self.entries = [_Entry(f"v_{i:04d}", int(c)) for i, c in enumerate(self.labels)]
        self.read: list[int] = []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> _Item:
        self.read.append(i)
        return _Item(torch.tensor(self.x[i], dtype=torch.float32), int(self.labels[i]))


def _uniform(frames_used: int = 2):
    torch.manual_seed(0)
    return create_method("uniform", config="features", num_classes=3, feature_dim=24, frames=6,
                         gmacs_per_frame=10.0), frames_used


def test_validation_split_is_blocked_per_class_and_disjoint():
    ds = _Clips(60)
    fit, val = validation_split(ds, 0.25)
    assert set(fit).isdisjoint(val) and sorted(fit + val) == list(range(60))
    assert len(val) == 15  # 5 per class
    # per class, the last clips in id order are held out
    for c in range(3):
        idx = [i for i in range(60) if ds.labels[i] == c]
        assert sorted(i for i in val if ds.labels[i] == c) == idx[-5:]
    assert validation_split(ds, 0.0) == (list(range(60)), [])
    with pytest.raises(ValueError, match="val_fraction"):
        validation_split(ds, 1.0)


def test_curves_record_validation_metrics_and_never_train_on_validation_clips(tmp_path):
    ds = _Clips(60)
    method, _ = _uniform()
    spec = TrainSpec(epochs=3, batch_size=16, lr=1e-2, seed=0, val_fraction=0.25)
    _fit, val = validation_split(ds, 0.25)
    report = train_method(method, ds, spec)
    assert report.val_clips == len(val) == 15
    assert report.clips_seen == 3 * 45  # training batches read only the 45 fit clips
    assert len(report.logs) == 3
    for k, log in enumerate(report.logs):
        assert log["epoch"] == k and log["stage"] == "joint"
        assert 0.0 <= log["val_top1"] <= 1.0 and log["val_clips"] == 15
        # uniform features, T=6: every frame's feature (10 GMACs) plus the linear head
        assert 60.0 <= log["val_gmacs_per_video"] < 60.1
        assert log["seconds"] > 0
    assert report.logs[-1]["val_top1"] > 0.9  # separable classes: learned, measured on held-out clips
    assert report.logs[-1]["seconds"] >= report.logs[0]["seconds"]
    # the side file beside the checkpoint holds every epoch
    ckpt = save_checkpoint(tmp_path / "c.pt", method, build={"method": "uniform", "config": "features",
                           "num_classes": 3, "overrides": {}}, train=spec.to_dict(), class_names=["a", "b", "c"],
                           report=report)
    curve = json.loads(curve_path(ckpt).read_text())
    assert curve["format"] == "evbench-curve-1" and curve["val_clips"] == 15
    assert [r["epoch"] for r in curve["logs"]] == [0, 1, 2]
    assert curve["train"]["val_fraction"] == 0.25


def test_train_spec_dict_without_validation_is_unchanged():
    assert "val_fraction" not in TrainSpec(epochs=2).to_dict()
    assert TrainSpec(epochs=2, val_fraction=0.1).to_dict()["val_fraction"] == 0.1


def test_cos_schedule_steps_the_learning_rate_per_epoch_and_is_recorded():
    assert [epoch_lr(1e-3, e, 4, "constant") for e in range(4)] == [1e-3] * 4
    cos = [epoch_lr(1e-3, e, 4, "cos") for e in range(4)]
    assert cos[0] == pytest.approx(1e-3) and cos[2] == pytest.approx(5e-4)
    assert cos == sorted(cos, reverse=True) and len(set(cos)) == 4 and cos[-1] == pytest.approx(0.5e-3 * (1 - 2 ** -0.5))
    m, _ = _uniform()
    report = train_method(m, _Clips(30), TrainSpec(epochs=4, batch_size=8, seed=3, lr=1e-3, lr_schedule="cos"))
    assert [r["lr"] for r in report.logs] == pytest.approx(cos)
    assert TrainSpec(lr_schedule="cos").to_dict()["lr_schedule"] == "cos"
    assert "lr_schedule" not in TrainSpec().to_dict()  # older cell ids unchanged
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cos; got 'step'"):
        TrainSpec(lr_schedule="step")


def test_no_validation_split_trains_on_every_clip_in_the_same_order():
    a, b = _Clips(30), _Clips(30)
    m1, _ = _uniform()
    r1 = train_method(m1, a, TrainSpec(epochs=2, batch_size=8, seed=3))
    m2, _ = _uniform()
    r2 = train_method(m2, b, TrainSpec(epochs=2, batch_size=8, seed=3, val_fraction=0.0))
    assert r2.val_clips == 0 and r2.clips_seen == 60
    assert a.read == b.read and r1.clips_seen == 60
    assert "val_top1" not in r1.logs[0]
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_report_training_section_draws_one_figure_per_checkpoint(tmp_path):
    ds = _Clips(60)
    method, _ = _uniform()
    spec = TrainSpec(epochs=2, batch_size=16, lr=1e-2, val_fraction=0.25)
    report = train_method(method, ds, spec)
    run = tmp_path / "run"
    ckpt = save_checkpoint(run / "checkpoints" / "abc.pt", method,
                           build={"method": "uniform", "config": "features", "num_classes": 3,
                                  "overrides": {"frames": 6}},
                           train=spec.to_dict(), class_names=["a", "b", "c"], report=report)
    rows = pd.DataFrame([
        {"method": "uniform", "label": "uniform frames=6", "checkpoint": str(ckpt)},
        {"method": "uniform", "label": "uniform frames=6 knob", "checkpoint": str(ckpt)},
        {"method": "uniform", "label": "untrained", "checkpoint": None},
    ])
    curves = find_curves(rows, str(run))
    assert len(curves) == 1 and curves[0]["labels"] == ["uniform frames=6", "uniform frames=6 knob"]
    out = tmp_path / "report"
    html = training_section(rows, str(run), out)
    assert '<section id="training">' in html and html.count("<img") == 1
    assert "validation (15 clips held out of training)" in html
    assert (out / "training" / "curve-0.png").stat().st_size > 1000
    # a moved run: the stored checkpoint path is gone, the run folder's checkpoints/ is searched
    moved = tmp_path / "moved"
    run.rename(moved)
    assert len(find_curves(rows, str(moved / "results.jsonl"))) == 1
    # no curves: no section
    assert training_section(rows.iloc[2:], str(moved), out) == ""
