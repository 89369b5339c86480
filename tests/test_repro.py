"""Reproducibility: identical runs with the same seed give identical weights and top-1, and rows record the seeds.

Before seeding the build, ``evbench run --suite features --train X.npz`` twice gave top-1 0.125, 0.5 and
0.625 for one cell on a 40-clip file: the initial weights came from torch's unseeded global generator.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from evbench.harness import runner
from evbench.harness.data import open_dataset
from evbench.harness.results import load
from evbench.harness.suites import load_suite
from evbench.harness.training import TrainSpec, deterministic_algorithms, run_seeds, train_method
from shared_data import shared_path

SUITE = """
name = "repro"
dataset = "{npz}"
default_config = "features"
[train]
epochs = 2
batch_size = 8
lr = 0.01
seed = {seed}
[measure]
latency = false
eval_batch_size = 64
[[methods]]
name = "uniform_lstm"
config = "features"
overrides = [{{ frames = 2 }}, {{ frames = 4 }}]
[[methods]]
name = "liteeval"
config = "features"
overrides = [{{ frames = 8, coarse_dim = 8, fine_embed = 32, coarse_embed = 16, large_cell = 32, small_cell = 16 }}]
"""


def _feature_file(path: Path, *, ids: bool, n_per_class: int = 10, classes: int = 4, t: int = 8, d: int = 16) -> Path:
    """SYNTHETIC per-frame features, hard enough that an unseeded init changes top-1."""
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(0, 0.6, (classes, d))
    feats = (centres[labels][:, None, :] + rng.normal(0, 1.5, (len(labels), t, d))).astype(np.float32)
    extra = {"video_ids": np.array([f"v_{c}_g{i:02d}" for c, i in zip(labels, range(len(labels)), strict=True)])}
    np.savez(path, features=feats, labels=labels, **(extra if ids else {}))
    return path


def _scramble_global_rngs(k: int) -> None:
    """Leave every global RNG somewhere else, as a fresh process (or an earlier cell) would."""
    torch.manual_seed(1000 + k)
    np.random.seed(2000 + k)
    random.seed(3000 + k)


def _run(tmp_path: Path, npz: Path, name: str, *, seed: int = 0) -> tuple[dict, dict]:
    toml = tmp_path / f"{name}.toml"
    toml.write_text(SUITE.format(npz=npz, seed=seed))
    cells = load_suite(str(toml)).cells(train_data=str(npz), data=str(npz), test_split="test")
    out = tmp_path / name
    summary = runner.run_cells(cells, out=out, progress=False)
    assert summary.failed == 0, summary.failures
    df = load(out)
    weights = {}
    for p in (out / "checkpoints").glob("*.pt"):
        payload = torch.load(p, weights_only=True)
        weights[(payload["build"]["method"], json.dumps(payload["build"]["overrides"], sort_keys=True))] = \
            payload["state_dict"]
    return {r.cell_id: (r.top1, r.frames_used) for r in df.itertuples()}, {"weights": weights, "df": df}


@pytest.mark.parametrize("ids", [False, True], ids=["random-carve-out", "video-id-carve-out"])
def test_two_identical_feature_runs_give_identical_top1_and_weights(tmp_path, one_thread, ids):
    npz = _feature_file(tmp_path / "x.npz", ids=ids)
    _scramble_global_rngs(1)
    a, extra_a = _run(tmp_path, npz, "a")
    _scramble_global_rngs(2)
    b, extra_b = _run(tmp_path, npz, "b")
    assert len(a) == 3 and a == b  # every cell: same id, same top-1, same frames used
    wa, wb = extra_a["weights"], extra_b["weights"]
    assert wa.keys() == wb.keys() and len(wa) == 3
    for name in wa:
        assert all(torch.equal(wa[name][k], wb[name][k]) for k in wa[name]), name
    seeds = extra_a["df"]["seeds"].iloc[0]
    assert seeds == {"init": 0, "train": 0, "data_order": 0, "tsn_offsets": None,
                     "carve_out": None if ids else 0, "bootstrap": 0, "train_threads": 1}


def test_another_seed_is_another_run(tmp_path, one_thread):
    npz = _feature_file(tmp_path / "x.npz", ids=False)
    _, a = _run(tmp_path, npz, "a", seed=0)
    _, b = _run(tmp_path, npz, "b", seed=1)
    assert a["df"]["seeds"].iloc[0]["init"] == 0 and b["df"]["seeds"].iloc[0]["init"] == 1
    assert a["weights"].keys() == b["weights"].keys()
    for build, wa in a["weights"].items():
        wb = b["weights"][build]
        assert any(not torch.equal(wa[k], wb[k]) for k in wa), build  # the seed is really used, not ignored


def test_training_restores_the_deterministic_settings():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before


def test_run_seeds_marks_unused_rngs():
    assert run_seeds(None) == {"init": 0, "train": None, "data_order": None, "tsn_offsets": None,
                               "carve_out": None, "bootstrap": 0, "train_threads": None}
    assert run_seeds(7, tsn_sampling=True, carve_out=7, train_threads=2)["tsn_offsets"] == 7


@pytest.mark.slow
def test_shared_ucf101_features_subset_trains_identically_twice(tmp_path, one_thread):
    """A 6-class, 60-clip subset of the shared UCF101 VGG16 train features: two trainings, one set of weights."""
    src = shared_path("ucf101_vgg16", "train.npz")
    with np.load(src, allow_pickle=False) as z:
        labels = z["labels"]
        keep = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(6)])
        sub = {k: z[k][keep] for k in ("features", "labels", "video_ids") if k in z.files}
        sub["features"] = sub["features"][:, :, :256]  # 256 of 4096 dims: enough to learn, cheap to train
        if "scale" in z.files:
            sub["scale"] = z["scale"]
    npz = tmp_path / "ucf_subset.npz"
    np.savez(npz, **sub)
    ds = open_dataset(str(npz), split="train", frames=1, size=1, train=True)
    tops = []
    for k in range(2):
        _scramble_global_rngs(k)
        method, _ = runner.build_method("uniform_lstm", "features", {"frames": 8}, len(ds.class_names), ds, seed=0)
        train_method(method, ds, TrainSpec(epochs=2, batch_size=16, lr=1e-3, seed=0))
        test = open_dataset(str(npz), split="test", frames=1, size=1)
        with torch.inference_mode():
            x = torch.stack([test[i].x for i in range(len(test))])
            y = torch.tensor([test[i].label for i in range(len(test))])
            tops.append(float((method(x).logits.argmax(-1) == y).float().mean()))
        tops.append({n: p.detach().clone() for n, p in method.state_dict().items()})
    assert tops[0] == tops[2]
    assert all(torch.equal(tops[1][n], tops[3][n]) for n in tops[1])
