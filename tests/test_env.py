"""Tests for harness.env: fingerprint keys, JSON, caching, Jetson and git detection."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from evbench.harness import env
from evbench.harness.env import fingerprint, git_commit, jetson_info

EXPECTED_KEYS = {
    "cpu_model",
    "cpu_cores_logical",
    "cpu_cores_physical",
    "memory_gb",
    "os",
    "kernel",
    "python",
    "hostname",
    "gpu_name",
    "gpu_driver",
    "cuda_version",
    "cudnn_version",
    "torch",
    "torchvision",
    "numpy",
    "onnxruntime",
    "av",
    "backend",
    "precision",
    "device",
    "threads",
    "interop_threads",
    "jetson",
    "git_commit",
    "time",
}


def test_fingerprint_keys_and_json() -> None:
    fp = fingerprint(device="cpu", backend="onnxruntime-cpu", precision="fp16")
    assert EXPECTED_KEYS <= set(fp)
    json.dumps(fp, allow_nan=False)
    assert fp["backend"] == "onnxruntime-cpu"
    assert fp["precision"] == "fp16"
    assert fp["device"] == "cpu"
    assert fp["threads"] == torch.get_num_threads()
    assert fp["torch"] == torch.__version__
    assert fp["cpu_cores_logical"] >= 1
    assert fp["memory_gb"] > 0
    when = dt.datetime.fromisoformat(fp["time"])
    assert when.utcoffset() == dt.timedelta(0)


def test_gpu_fields_follow_cuda_availability() -> None:
    fp = fingerprint(device="cuda:0")  # valid even without CUDA: describes the machine
    if torch.cuda.is_available():
        assert fp["gpu_name"]
    else:
        assert fp["gpu_name"] is None
        assert fp["gpu_driver"] is None
        assert fp["cudnn_version"] is None
    assert fp["cuda_version"] == torch.version.cuda


def test_static_part_is_cached_and_result_is_a_copy() -> None:
    first = fingerprint()
    first["cpu_model"] = "mutated"
    second = fingerprint()
    assert second["cpu_model"] != "mutated"
    assert env._static_info.cache_info().hits >= 1


def test_threads_are_read_per_call() -> None:
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert fingerprint()["threads"] == 1
    finally:
        torch.set_num_threads(old)


def test_invalid_device_raises() -> None:
    with pytest.raises(RuntimeError, match="invalid device"):
        fingerprint(device="not-a-device")


def test_jetson_info(tmp_path: Path) -> None:
    assert jetson_info(tmp_path / "missing") is None
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R32 (release), REVISION: 7.1, GCID: 29818004\n# second line\n")
    info = jetson_info(release)
    assert info is not None
    assert info["l4t"] == "# R32 (release), REVISION: 7.1, GCID: 29818004"
    assert info["power_mode"] is None
    json.dumps(info)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_clean_dirty_and_not_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert git_commit(str(repo)) is None  # not a checkout
    _git(repo, "init", "-q")
    git_commit.cache_clear()
    assert git_commit(str(repo)) is None  # no commit yet
    (repo / "a.txt").write_text("1\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "init")
    git_commit.cache_clear()
    sha = git_commit(str(repo))
    assert sha is not None and re.fullmatch(r"[0-9a-f]{40}", sha)
    (repo / "untracked.txt").write_text("x\n")
    git_commit.cache_clear()
    assert git_commit(str(repo)) == sha  # untracked files do not make it dirty
    (repo / "a.txt").write_text("2\n")
    git_commit.cache_clear()
    assert git_commit(str(repo)) == f"{sha}-dirty"
    sub = repo / "sub"
    sub.mkdir()
    git_commit.cache_clear()
    assert git_commit(str(sub)) is None  # inside, but not the top of, a checkout
    git_commit.cache_clear()
