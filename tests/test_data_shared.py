"""Loaders on the real shared clips and frame folders (skip when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from evbench.harness.data import decode_frames, open_dataset, probe_num_frames, probe_video
from PIL import Image

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
pytestmark = pytest.mark.shared_data


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data {path} absent")
    return path


@pytest.mark.parametrize("name", ["arid", "kth", "kinetics", "ucf101"])
def test_real_clips_decode_sample_and_preprocess(name, tmp_path):
    root = _need(SHARED / "clips" / name)
    ds = open_dataset(str(root), split="test", frames=8, size=112, cache_dir=str(tmp_path))
    assert len(ds) >= 1 and ds.synthetic is False and ds.input_kind == "pixels"
    for i in range(len(ds)):
        s = ds[i]
        assert s.x.shape == (8, 3, 112, 112) and s.x.dtype == torch.float32
        assert torch.isfinite(s.x).all() and -2.2 < float(s.x.min()) and float(s.x.max()) < 2.7
        n = probe_num_frames(s.path)
        assert s.frame_indices == sorted(s.frame_indices) and max(s.frame_indices) < n
        assert s.decode_ms > 0 and not s.cached
        assert s.label == ds.class_names.index(s.id.split("/")[0])
    again = ds[0]
    assert again.cached and again.decode_ms == 0.0


def test_real_codecs_and_sizes():
    clips = _need(SHARED / "clips")
    avi = next(clips.glob("ucf101/*/*.avi"), None)
    mp4 = next(clips.glob("arid/*/*.mp4"), None)
    if avi is None or mp4 is None:
        pytest.skip(f"expected .avi and .mp4 clips under {clips}")
    assert probe_video(str(avi))["codec"] == "mpeg4"
    assert probe_video(str(mp4))["codec"] == "h264"
    wide = _need(clips / "arid" / "Run" / "Run_22_25.mp4")  # 476x240
    out = decode_frames(str(wide), [0, 127])
    assert out.shape == (2, 240, 476, 3)


def test_real_training_sampling_is_random_but_seeded():
    root = _need(SHARED / "clips" / "kth")
    a = open_dataset(str(root), frames=8, size=56, train=True, seed=1)
    b = open_dataset(str(root), frames=8, size=56, train=True, seed=1)
    first = [a.indices(i) for i in range(len(a))]
    assert first == [b.indices(i) for i in range(len(b))]
    assert first != [a.indices(i) for i in range(len(a))]  # next epoch, new offsets
    a.set_epoch(3)
    b.set_epoch(3)
    assert [a.indices(i) for i in range(len(a))] == [b.indices(i) for i in range(len(b))]


def test_real_frame_folders(tmp_path):
    root = _need(SHARED / "ucf101_frames")
    ds = open_dataset(str(root), split="test", frames=8, size=112, cache_dir=str(tmp_path))
    assert ds.class_names == ["ApplyEyeMakeup"] and len(ds) == 6
    s = ds[0]
    assert s.x.shape == (8, 3, 112, 112)
    assert s.frame_indices == [1, 4, 7, 10, 14, 17, 20, 23]  # 25 frames, 8 centres
    folder = Path(s.path)
    direct = np.asarray(Image.open(folder / "i_0002.jpg").convert("RGB"))
    assert np.array_equal(decode_frames(str(folder), [1])[0], direct)
    assert direct.shape == (256, 340, 3)


def test_real_frame_folders_through_a_tsn_list(tmp_path):
    root = _need(SHARED / "ucf101_frames" / "ApplyEyeMakeup")
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{d} 25 0\n" for d in sorted(root.iterdir()) if d.is_dir()))
    ds = open_dataset(str(lst), frames=4, size=84, cache_dir=str(tmp_path / "c"))
    assert len(ds) == 6 and ds.class_names == ["ApplyEyeMakeup"]
    assert ds[5].x.shape == (4, 3, 84, 84)
