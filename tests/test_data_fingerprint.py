"""Content fingerprints of dataset sources, and the cell/build ids that hash them instead of paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from evbench.harness.data import DataError, data_fingerprint
from evbench.harness.suites import load_suite


def _npz(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, features=rng.normal(size=(8, 3, 4)).astype(np.float32), labels=np.arange(8) % 2,
             class_names=np.array(["a", "b"]))
    return path


def test_npz_fingerprint_is_content_not_path(tmp_path, monkeypatch):
    a = _npz(tmp_path / "train.npz")
    copy = tmp_path / "sub" / "other-name.npz"
    copy.parent.mkdir()
    shutil.copyfile(a, copy)
    monkeypatch.chdir(tmp_path)
    fp = data_fingerprint(str(a))
    assert fp == data_fingerprint("train.npz") == data_fingerprint(str(copy))
    assert str(tmp_path) not in repr(fp)
    _npz(a, seed=1)  # same path, same shapes, other values
    assert data_fingerprint(str(a)) != fp


def test_folder_fingerprint_sees_edits_and_split_files(tmp_path, tiny_generated):
    root = tmp_path / "data"
    shutil.copytree(tiny_generated, root)
    fp = data_fingerprint(str(root))
    assert fp["kind"] == "folder" and fp["files"] > 8
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)  # copy2 keeps mtimes: same content, other path
    assert data_fingerprint(str(moved)) == fp
    video = next(p for p in sorted(root.rglob("*")) if p.suffix in {".mp4", ".avi"})
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched (rewritten in place)
    assert data_fingerprint(str(root)) != fp
    split = root / "ucfTrainTestlist" / "testlist01.txt"
    fp2 = data_fingerprint(str(moved))
    lines = (moved / "ucfTrainTestlist" / "testlist01.txt").read_text().splitlines()
    (moved / "ucfTrainTestlist" / "testlist01.txt").write_text("\n".join(reversed(lines)) + "\n")
    assert data_fingerprint(str(moved)) != fp2 and split.exists()


def test_generated_fingerprint_is_its_parameters(tmp_path, tiny_generated):
    fp = data_fingerprint(f"generated:{tiny_generated}")
    assert fp["kind"] == "generated" and fp["params"]["num_classes"] == 2 and fp["params"]["size"] == 64
    assert data_fingerprint(f"generated:{tmp_path / 'not-yet'}") == data_fingerprint("generated")
    assert data_fingerprint("generated") != fp


def test_missing_source_names_the_path(tmp_path):
    with pytest.raises(DataError, match="nothing-here"):
        data_fingerprint(str(tmp_path / "nothing-here"))
    assert data_fingerprint(None) is None


SUITE = """
name = "fp"
dataset = "x"
[train]
epochs = 1
[[methods]]
name = "uniform"
config = "features"
overrides = [{ frames = 2 }]
"""


def test_cell_ids_follow_data_content_not_path(tmp_path, monkeypatch):
    _npz(tmp_path / "train.npz")
    f = tmp_path / "fp.toml"
    f.write_text(SUITE)
    suite = load_suite(str(f))
    monkeypatch.chdir(tmp_path)
    rel = suite.cells(train_data="train.npz", data="train.npz")
    absolute = suite.cells(train_data=str(tmp_path / "train.npz"), data=str(tmp_path / "train.npz"))
    assert [c.id for c in rel] == [c.id for c in absolute]  # a resume with --train /abs/path finds its cells
    assert [c.build_id for c in rel] == [c.build_id for c in absolute]  # ...and its checkpoints
    assert rel[0].test_data != absolute[0].test_data  # rows still say which path was given
    _npz(tmp_path / "train.npz", seed=3)  # changed file at the same path
    changed = suite.cells(train_data="train.npz", data="train.npz")
    assert changed[0].id != rel[0].id and changed[0].build_id != rel[0].build_id  # never the old checkpoint
