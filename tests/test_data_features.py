"""Per-frame feature files (.npz), synthetic and the shared UCF101 VGG16 file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from evbench.harness.data import DataError, FeatureDataset, open_dataset

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _npz(path: Path, **over) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "features": rng.integers(0, 256, (30, 5, 7), dtype=np.uint8),
        "labels": np.repeat(np.arange(3), 10),
        "class_names": np.array(["a", "b", "c"]),
        "video_ids": np.array([f"v{i:03d}" for i in range(30)]),
        "scale": np.float32(0.5),
    }
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_carved_validation_split(tmp_path):
    p = _npz(tmp_path / "f.npz")
    tr = open_dataset(str(p), split="train", seed=0)
    te = open_dataset(str(p), split="test", seed=0)
    al = open_dataset(str(p), split="all")
    assert isinstance(tr, FeatureDataset) and tr.input_kind == "features"
    assert (len(tr), len(te), len(al)) == (24, 6, 30)
    assert not {e.id for e in tr.entries} & {e.id for e in te.entries}
    assert np.bincount(te.labels).tolist() == [2, 2, 2]
    assert "carved from f.npz (stratified 20 %: the last clips of each class in video-id order" in te.note
    assert [e.id for e in open_dataset(str(p), split="test", seed=0).entries] == [
        e.id for e in te.entries
    ]
    # the carve-out follows video-id order, not a random draw: the seed does not move it
    assert [e.id for e in open_dataset(str(p), split="test", seed=1).entries] == [
        e.id for e in te.entries
    ]
    assert [e.id for e in te.entries] == ["v008", "v009", "v018", "v019", "v028", "v029"]


def test_sample_is_dequantised_float_with_all_frames(tmp_path):
    p = _npz(tmp_path / "f.npz")
    raw = np.load(p)["features"]
    ds = open_dataset(str(p), split="all")
    s = ds[4]
    assert s.x.shape == (5, 7) and s.x.dtype == torch.float32
    assert torch.allclose(s.x, torch.from_numpy(raw[4].astype(np.float32) * 0.5))
    assert s.frame_indices == [0, 1, 2, 3, 4]
    assert s.id == "v004" and s.label == 0 and s.path == str(p)
    assert ds.class_names == ["a", "b", "c"]


def test_gmacs_per_frame_file_key_then_argument(tmp_path):
    p = _npz(tmp_path / "f.npz")
    assert open_dataset(str(p)).gmacs_per_frame is None
    assert open_dataset(str(p), gmacs_per_frame=77.35).gmacs_per_frame == 77.35
    q = _npz(tmp_path / "g.npz", gmacs_per_frame=np.float64(1.5))
    assert open_dataset(str(q), gmacs_per_frame=77.35).gmacs_per_frame == 1.5


def test_optional_keys_and_float_features(tmp_path):
    feats = np.random.default_rng(1).normal(size=(6, 3, 4)).astype(np.float16)
    p = _npz(
        tmp_path / "h.npz",
        features=feats,
        labels=np.array([0, 1, 0, 1, 0, 1]),
        class_names=None,
        video_ids=None,
        scale=None,
    )
    ds = open_dataset(str(p), split="all")
    assert ds.class_names == ["class_0", "class_1"] and ds.entries[2].id == "h#2"
    assert torch.allclose(ds[1].x, torch.from_numpy(feats[1].astype(np.float32)))


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"labels": None}, "lacks"),
        ({"labels": np.zeros(29, dtype=int)}, "does not match"),
        ({"labels": np.full(30, 5)}, "outside"),
        ({"features": np.zeros((30, 4), dtype=np.uint8)}, r"\(N, T, D\)"),
        ({"video_ids": np.array(["x"])}, "video_ids"),
        ({"class_names": np.array([{"a": 1}, None, 3], dtype=object)}, "unreadable"),
    ],
)
def test_bad_feature_files(tmp_path, over, match):
    p = _npz(tmp_path / "bad.npz", **over)
    with pytest.raises(DataError, match=match) as ei:
        open_dataset(str(p), split="all")
    assert ei.value.path == str(p)


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"nonsense")
    with pytest.raises(DataError):
        open_dataset(str(p))


@pytest.mark.shared_data
def test_shared_ucf101_vgg16_features():
    path = SHARED / "ucf101_vgg16" / "train.npz"
    if not path.is_file():
        pytest.skip(f"shared feature file {path} absent")
    tr = open_dataset(str(path), split="train", gmacs_per_frame=5 * 15.47)
    va = open_dataset(str(path), split="test", gmacs_per_frame=5 * 15.47)
    assert len(tr) + len(va) == 1442
    assert 0.18 < len(va) / 1442 < 0.22
    assert len(tr.class_names) == 15 and tr.class_names[0] == "ApplyEyeMakeup"
    assert set(np.unique(va.labels)) == set(range(15))
    assert tr.gmacs_per_frame == pytest.approx(77.35)
    assert "validation split carved from train.npz" in va.note
    s = va[0]
    assert s.x.shape == (25, 4096) and s.x.dtype == torch.float32
    assert 0.0 <= float(s.x.min()) and float(s.x.max()) <= 6.0 + 1e-5
    assert s.decode_ms >= 0.0
    s2 = tr[0]  # shares the loaded array: no second read
    assert s2.decode_ms == 0.0
