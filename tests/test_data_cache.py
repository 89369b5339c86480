"""The on-disk frame cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from evbench.harness.data import FrameCache, file_fingerprint, generate_dataset, open_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("gen") / "tiny"
    return generate_dataset(root, seed=3, num_classes=2, videos_per_class=4, num_frames=16, size=64)


def test_put_get_roundtrip_is_atomic(tmp_path):
    cache = FrameCache(tmp_path / "c")
    arr = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    assert cache.get("ab" * 20) is None
    cache.put("ab" * 20, arr)
    got = cache.get("ab" * 20)
    assert np.array_equal(got, arr) and got.dtype == np.uint8
    leftovers = [p for p in (tmp_path / "c").rglob("*") if p.is_file() and p.suffix != ".npy"]
    assert leftovers == []
    assert (cache.hits, cache.misses) == (1, 1)


def test_corrupt_entry_reads_as_miss(tmp_path):
    cache = FrameCache(tmp_path)
    cache.put("cd" * 20, np.zeros((1, 2, 2, 3), dtype=np.uint8))
    (tmp_path / "cd" / f"{'cd' * 20}.npy").write_bytes(b"\x93NUMPY broken")
    assert cache.get("cd" * 20) is None


def test_key_depends_on_content_and_sampling_not_on_path(tmp_path, tiny):
    cache = FrameCache(tmp_path / "c")
    video = f"{tiny}/RedDisc/v_RedDisc_g01_c01.mp4"
    copy = tmp_path / "copy.mp4"
    shutil.copy(video, copy)
    k = cache.key(video, [1, 5, 9], 112)
    assert k == cache.key(str(copy), [1, 5, 9], 112)
    assert file_fingerprint(video) == file_fingerprint(str(copy))
    assert k != cache.key(video, [1, 5, 10], 112)
    assert k != cache.key(video, [1, 5, 9], 84)
    assert k != cache.key(video, [1, 5, 9], 112, scale_size=128, crop_size=112)
    other = f"{tiny}/RedDisc/v_RedDisc_g02_c01.mp4"
    assert k != cache.key(other, [1, 5, 9], 112)


def test_dataset_hit_returns_identical_tensor_without_decoding(tmp_path, tiny):
    ds = open_dataset(f"generated:{tiny}", split="test", frames=4, size=56, cache_dir=str(tmp_path))
    first = ds[0]
    assert not first.cached and first.decode_ms > 0
    again = ds[0]
    assert again.cached and again.decode_ms == 0.0
    assert torch.equal(first.x, again.x)
    assert again.frame_indices == first.frame_indices
    assert list((tmp_path / "frames").rglob("*.npy"))
    # a fresh dataset object (new process, say) hits the same entry
    ds2 = open_dataset(
        f"generated:{tiny}", split="test", frames=4, size=56, cache_dir=str(tmp_path)
    )
    assert ds2[0].cached and torch.equal(ds2[0].x, first.x)


def test_training_clips_bypass_the_cache(tmp_path, tiny):
    ds = open_dataset(
        f"generated:{tiny}", split="train", frames=4, size=56, train=True, cache_dir=str(tmp_path)
    )
    s = ds[0]
    assert not s.cached
    assert not list((tmp_path / "frames").rglob("*.npy"))


def test_unwritable_cache_only_warns(tmp_path, tiny):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ds = open_dataset(f"generated:{tiny}", split="test", frames=2, size=32)
    ds.cache = FrameCache(blocker / "frames")  # a path under a regular file: not creatable
    with pytest.warns(UserWarning, match="not writable"):
        s = ds[0]
    assert s.x.shape == (2, 3, 32, 32)
