"""The embedded generated dataset: determinism, real H.264, layout, sparse evidence."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from evbench.harness.data import (
    DataError,
    decode_frames,
    generate_dataset,
    open_dataset,
    probe_video,
    resize_crop,
)
from evbench.harness.data import generate as gen_mod
from evbench.harness.data import source as source_mod
from evbench.harness.data.generate import fine_texture_min_resolution, read_manifest

TINY = {"num_classes": 2, "videos_per_class": 4, "num_frames": 16, "size": 64}


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("gen")
    a = generate_dataset(base / "a", seed=5, **TINY)
    b = generate_dataset(base / "b", seed=5, **TINY)
    return Path(a), Path(b)


def _videos(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.mp4"))


def test_same_seed_same_manifest_and_pixels(pair):
    a, b = pair
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()
    va, vb = _videos(a), _videos(b)
    assert [p.relative_to(a) for p in va] == [p.relative_to(b) for p in vb] and len(va) == 8
    idx = list(range(16))
    for p, q in zip(va, vb, strict=True):
        assert np.array_equal(decode_frames(str(p), idx), decode_frames(str(q), idx))


def test_other_seed_other_pixels(pair, tmp_path):
    c = Path(generate_dataset(tmp_path / "c", seed=6, **TINY))
    p = "RedDisc/v_RedDisc_g01_c01.mp4"
    assert not np.array_equal(decode_frames(str(pair[0] / p), [0]), decode_frames(str(c / p), [0]))


def test_real_h264_in_ucf101_layout(pair):
    root = pair[0]
    info = probe_video(str(_videos(root)[0]))
    assert info["codec"] == "h264" and info["frames"] == 16
    assert (info["width"], info["height"], round(info["fps"])) == (64, 64, 25)
    m = read_manifest(root)
    assert m["codec"] == "libx264" and m["synthetic"] is True and m["version"] == gen_mod.GENERATOR_VERSION
    sd = root / "ucfTrainTestlist"
    assert (sd / "classInd.txt").read_text() == "1 RedDisc\n2 BlueSquare\n"
    test = (sd / "testlist01.txt").read_text().split()
    train = (sd / "trainlist01.txt").read_text().splitlines()
    assert all("_g01_" in t for t in test) and len(test) == 2
    assert all("_g01_" not in t for t in train) and len(train) == 6
    assert {v["split"] for v in m["videos"] if v["group"] == 1} == {"test"}


def test_open_generated_is_marked_synthetic(pair, tmp_path):
    ds = open_dataset(
        f"generated:{pair[0]}", split="train", frames=4, size=32, cache_dir=str(tmp_path)
    )
    assert ds.synthetic is True and ds.note.startswith("SYNTHETIC") and ds.name == "generated"
    assert len(ds) == 6 and ds.manifest is not None and ds.class_names == ["RedDisc", "BlueSquare"]
    assert all(e.num_frames == 16 for e in ds.entries)  # from the manifest: no probing
    s = ds[0]
    assert s.x.shape == (4, 3, 32, 32)
    # opened as a plain folder it is still recognised as synthetic
    assert open_dataset(str(pair[0]), split="test", cache_dir=str(tmp_path)).synthetic is True


def test_evidence_is_sparse_in_time(pair):
    """Same group/clip share the scene: two classes' videos differ (beyond noise)
    only inside their evidence and decoy windows, and TSN centres hit the window."""
    root = pair[0]
    m = read_manifest(root)
    by = {(v["group"], v["clip"], v["label"]): v for v in m["videos"]}
    n = m["params"]["num_frames"]
    lmin = round(n * 6 / 48)
    t_needed = math.ceil(n / lmin)
    checked = 0
    for (g, c, lab), v in by.items():
        if lab != 0:
            continue
        w = by[(g, c, 1)]
        fa = decode_frames(str(root / v["id"]), list(range(n))).astype(np.int16)
        fb = decode_frames(str(root / w["id"]), list(range(n))).astype(np.int16)
        diff = np.abs(fa - fb).mean(axis=(1, 2, 3))
        special = set()
        for x in (v, w):
            special |= set(range(x["evidence"]["start"], x["evidence"]["end"]))
            if x["decoy"]:
                special |= set(range(x["decoy"]["start"], x["decoy"]["end"]))
        quiet = [diff[t] for t in range(n) if t not in special]
        loud = [diff[t] for t in range(v["evidence"]["start"], v["evidence"]["end"])]
        assert max(quiet) < 8.0  # noise only
        assert min(loud) > 2 * max(quiet)
        for x in (v, w):
            e = x["evidence"]
            assert 2 <= e["end"] - e["start"] <= round(n * 10 / 48)
            from evbench.harness.data import tsn_indices

            assert any(e["start"] <= i < e["end"] for i in tsn_indices(n, t_needed, train=False))
        checked += 1
    assert checked == 4


def _patch_gradients(frame: np.ndarray, bbox: list[int], size: int, r: int) -> tuple[float, float]:
    """Mean |d/dy| and |d/dx| inside the (shrunken) evidence patch after the pipeline at side r."""
    out = resize_crop(frame, r)[0].astype(float).mean(-1)
    k = 256 / size * r / 224  # stored px -> output px
    off = 16 * r / 224  # the centre crop's offset
    x0, y0, x1, y1 = bbox
    w = (x1 - x0) * k
    a, b = int(x0 * k - off + 0.25 * w), int(x1 * k - off - 0.25 * w)
    c, d = int(y0 * k - off + 0.25 * w), int(y1 * k - off - 0.25 * w)
    p = out[c:d, a:b]
    return float(np.abs(np.diff(p, axis=0)).mean()), float(np.abs(np.diff(p, axis=1)).mean())


def test_fine_classes_need_high_resolution(tmp_path):
    root = Path(
        generate_dataset(
            tmp_path / "fine", seed=1, num_classes=4, videos_per_class=2, num_frames=12, size=64
        )
    )
    m = read_manifest(root)
    fine = {c["name"] for c in m["classes"] if c["needs_high_res"]}
    assert fine == {"GreyStripesH", "GreyStripesV"}
    thr = fine_texture_min_resolution(64)
    assert m["fine_texture"]["min_resolution"] == thr == 56
    for v in m["videos"]:
        if v["class"] not in fine:
            assert v["evidence"]["needs_high_res"] is False
            continue
        frame = decode_frames(str(root / v["id"]), [v["evidence"]["start"]])
        along, across = (0, 1) if v["class"] == "GreyStripesH" else (1, 0)
        hi = _patch_gradients(frame, v["evidence"]["bbox"], 64, 224)
        assert hi[along] > 5 * hi[across] and hi[along] > 10  # stripes survive H.264 and the crop
        lo = _patch_gradients(frame, v["evidence"]["bbox"], 64, thr // 2)
        assert max(lo) < 2.0  # at half the threshold: a flat grey square


def test_generation_is_atomic_and_idempotent(pair, tmp_path):
    root = pair[0]
    assert not [p for p in root.parent.iterdir() if ".tmp-" in p.name]
    before = (root / "manifest.json").stat().st_mtime_ns
    assert generate_dataset(root, seed=5, **TINY) == str(root)
    assert (root / "manifest.json").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other parameters"):
        generate_dataset(root, seed=6, **TINY)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path / "foreign", **TINY)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "bad", num_classes=99)


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen_mod, "write_video", boom)
    with pytest.raises(RuntimeError):
        generate_dataset(tmp_path / "x", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_default_source_generates_into_the_cache_root(tmp_path, monkeypatch):
    calls = []
    tiny_gen = functools.partial(generate_dataset, **TINY)

    def spy(root, **kw):
        calls.append(Path(root))
        assert kw == {"seed": 0, **gen_mod.DEFAULT_DATASET}
        return tiny_gen(root, seed=kw["seed"])

    monkeypatch.setattr(source_mod, "generate_dataset", spy)
    ds = open_dataset("generated", split="test", frames=2, size=32, cache_dir=str(tmp_path))
    assert calls == [gen_mod.generated_root(tmp_path, 0)]
    assert (
        ds.synthetic
        and len(ds) == 2
        and json.loads((calls[0] / "manifest.json").read_text())["params"]["seed"] == 0
    )
    open_dataset("generated", split="train", cache_dir=str(tmp_path))
    assert len(calls) == 1  # reused, not regenerated


def test_mpeg4_fallback_when_libx264_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(gen_mod, "_codec", lambda: ("mpeg4", ".avi", {}))
    root = Path(generate_dataset(tmp_path / "avi", **TINY))
    assert read_manifest(root)["codec"] == "mpeg4"
    vids = sorted(root.glob("*/*.avi"))
    assert len(vids) == 8 and probe_video(str(vids[0]))["codec"] == "mpeg4"
    ds = open_dataset(f"generated:{root}", split="test", frames=2, size=32, cache_dir=str(tmp_path))
    assert ds[0].x.shape == (2, 3, 32, 32)


def test_truncated_generated_video_fails_alone(pair, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(pair[0], root)
    victim = root / "RedDisc" / "v_RedDisc_g01_c01.mp4"
    victim.write_bytes(victim.read_bytes()[:500])
    ds = open_dataset(str(root), split="test", frames=2, size=32, cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError) as ei:
        ds[0]
    assert ei.value.path == str(victim)
    assert ds[1].x.shape == (2, 3, 32, 32)


def test_generated_source_on_a_foreign_folder_is_a_data_error(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="generated dataset"):
        open_dataset(f"generated:{tmp_path / 'mine'}")
