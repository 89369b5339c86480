"""Results store integrity: newline guard, short writes and ENOSPC/EROFS, no .tmp left, unreadable rows counted,
the exclusive lock on a run directory, Ctrl-C, and a torn last row healed by --resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evbench.harness import runner
from evbench.harness.cli import main
from evbench.harness.results import (
    BadRow,
    ResultStore,
    ResultStoreError,
    append_jsonl,
    load,
    read_jsonl,
)
from evbench.harness.rundir import LOCK_FILE, RunInterrupted, RunLock, RunLockedError
from evbench.harness.suites import load_suite

# --------------------------------------------------------------------------- the row writer


def test_row_after_a_torn_fragment_starts_its_own_line(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "ok"})
    with open(store.path, "a") as fh:
        fh.write('{"cell_id": "b", "sta')  # a crash mid-write
    store.append({"cell_id": "b", "status": "ok"})
    lines = store.path.read_text().splitlines()
    assert lines[1] == '{"cell_id": "b", "sta' and json.loads(lines[2]) == {"cell_id": "b", "status": "ok"}
    assert store.finished_ids() == {"a", "b"}
    bad = store.unreadable()
    assert [b.line for b in bad] == [2] and bad[0].reason.startswith("invalid JSON, a torn or corrupt row")


def test_disk_full_raises_naming_the_file_and_leaves_it_as_it_was(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full absent: no real ENOSPC device on this system")
    target = tmp_path / "full.jsonl"
    target.symlink_to("/dev/full")  # every write to /dev/full fails with ENOSPC
    with pytest.raises(ResultStoreError, match=r"full\.jsonl: no space left on device \(ENOSPC\)") as info:
        append_jsonl(target, [{"cell_id": "a"}])
    assert info.value.path == target and "not finished" in str(info.value)


def test_short_write_is_completed_or_refused(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [{"cell_id": "a", "status": "ok"}])
    before = path.read_bytes()
    ino = path.stat().st_ino
    real_write = os.write
    budget = {"bytes": 7}  # the device takes 7 bytes, then nothing

    def stingy(fd, data):
        if os.fstat(fd).st_ino != ino:
            return real_write(fd, data)
        n = min(len(data), budget["bytes"])
        budget["bytes"] -= n
        return real_write(fd, bytes(data[:n])) if n else 0

    monkeypatch.setattr(os, "write", stingy)
    with pytest.raises(ResultStoreError, match="short write"):
        append_jsonl(path, [{"cell_id": "b", "status": "ok"}])
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_bytes() == before  # cut back: no fragment of the refused row
    budget["bytes"] = 10**6
    monkeypatch.setattr(os, "write", lambda fd, data: stingy(fd, data[:5]) if os.fstat(fd).st_ino == ino
                        else real_write(fd, data))  # 5 bytes per call: the remainder is retried
    append_jsonl(path, [{"cell_id": "b", "status": "ok"}])
    monkeypatch.setattr(os, "write", real_write)
    assert [r["cell_id"] for r in read_jsonl(path)] == ["a", "b"]


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_or_forbidden_out_is_one_clear_error(tmp_path, monkeypatch, code):
    store = ResultStore(tmp_path)
    real_open = os.open

    def refuse(path, flags, *a):
        if str(path).endswith("results.jsonl"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ResultStoreError, match=rf"results\.jsonl: .*\({errno.errorcode[code]}\)"):
        store.append({"cell_id": "a", "status": "ok"})


def test_out_that_cannot_be_a_directory_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultStoreError, match=r"cannot write .*file/run: .*ENOTDIR"):
        ResultStore(tmp_path / "file" / "run")
    with pytest.raises(ResultStoreError, match="ENOTDIR"):
        RunLock(tmp_path / "file" / "run").acquire()


def test_failed_samples_write_leaves_no_tmp(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    frame = pd.DataFrame({"id": ["v1", "v2"], "gmacs": [1.0, 2.0]})

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(ResultStoreError, match=r"c1\.parquet: no space left on device"):
        store.write_samples("c1", frame)
    assert list((tmp_path / "samples").iterdir()) == []
    (tmp_path / "samples" / "c2.parquet.tmp").write_bytes(b"half")  # a kill -9 mid-write
    assert [p.name for p in store.remove_stale_tmp()] == ["c2.parquet.tmp"]


def test_non_object_and_torn_lines_are_counted_and_named_not_fatal(tmp_path, capsys):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "ok", "method": "uniform", "top1": 0.5})
    with open(store.path, "a") as fh:
        fh.write("[1, 2]\n3\nnot json\n")
    store.append({"cell_id": "b", "status": "ok", "method": "uniform", "top1": 0.75})
    with open(store.path, "a") as fh:
        fh.write('{"cell_id": "c"')
    with pytest.warns(UserWarning):
        df = load(tmp_path)
    assert sorted(df["cell_id"]) == ["a", "b"]
    bad = df.attrs["unreadable_rows"]
    assert [b.line for b in bad] == [2, 3, 4, 6] and all(isinstance(b, BadRow) for b in bad)
    assert "not a JSON object (list)" in bad[0].reason and "torn" in bad[3].reason
    with pytest.warns(UserWarning):
        rc = main(["report", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 0 and "4 unreadable rows skipped" in err and "results.jsonl:2 not a JSON object" in err
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Unreadable rows" in page and "<b class=\"bad\">4</b> line(s)" in page


# --------------------------------------------------------------------------- the lock


def test_second_lock_on_one_directory_is_refused_naming_the_pid(tmp_path):
    with RunLock(tmp_path) as held:
        assert held.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=rf"in use by another evbench run \(pid {os.getpid()}") as info:
            RunLock(tmp_path).acquire()
        assert info.value.pid == os.getpid()
        with RunLock(tmp_path, reentrant=True) as nested:  # run_cells inside the CLI's hold
            assert nested.held
        assert held.held  # the nested release let nothing go
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass
    assert (tmp_path / LOCK_FILE).read_text() == ""


# --------------------------------------------------------------------------- runs on a tiny feature file

SUITE = """
name = "tinyfeat"
dataset = "{npz}"
default_config = "features"
[train]
epochs = {epochs}
batch_size = 8
lr = 0.01
seed = 0
[measure]
min_queries = {queries}
min_duration_s = {duration}
max_duration_s = 30.0
offline = false
latency_clips = 1
eval_batch_size = 64
[[methods]]
name = "uniform"
config = "features"
overrides = [{overrides}]
"""
THREE = "{ frames = 1 }, { frames = 2 }, { frames = 4 }"


def _feature_file(path: Path, *, n_per_class: int = 10, classes: int = 3, t: int = 4, d: int = 8) -> Path:
    """A small SYNTHETIC feature file (no video ids: the carve-out is the seeded random one)."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(0, 1.0, (classes, d))
    feats = centres[labels][:, None, :] + rng.normal(0, 1.5, (len(labels), t, d))
    np.savez(path, features=feats.astype(np.float32), labels=labels)
    return path


@pytest.fixture
def tiny_features(tmp_path):
    """(suite toml, npz) of three quick feature cells."""
    npz = _feature_file(tmp_path / "feats.npz")
    toml = tmp_path / "tinyfeat.toml"
    toml.write_text(SUITE.format(npz=npz, epochs=3, queries=2, duration=0.0, overrides=THREE))
    return toml, npz


def _cells(toml: Path, npz: Path):
    return load_suite(str(toml)).cells(train_data=str(npz), data=str(npz), test_split="test")


def test_cli_run_on_a_locked_out_fails_at_once_naming_the_holder(tiny_features, tmp_path, capsys):
    toml, npz = tiny_features
    out = tmp_path / "run"
    with RunLock(out):
        t0 = time.perf_counter()
        rc = main(["run", "--suite", str(toml), "--train", str(npz), "--out", str(out), "--quiet", "--no-report"])
        elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2 and f"pid {os.getpid()}" in err and "choose another --out" in err and "Traceback" not in err
    assert elapsed < 30 and not (out / "results.jsonl").exists()


def test_resume_after_a_torn_last_row_finds_every_cell_exactly_once(tiny_features, tmp_path, one_thread):
    toml, npz = tiny_features
    cells = _cells(toml, npz)
    out = tmp_path / "run"
    first = runner.run_cells(cells, out=out, progress=False)
    assert first.done == 3
    store = ResultStore(out)
    text = store.path.read_bytes()
    last = text.rstrip(b"\n").rfind(b"\n") + 1
    store.path.write_bytes(text[: last + (len(text) - last) // 2])  # power loss half-way through the last row
    with pytest.warns(UserWarning, match="torn"):
        summary = runner.run_cells(cells, out=out, resume=True, progress=False)
    assert summary.skipped == 2 and summary.done == 1 and summary.failed == 0
    rows = store.rows()
    assert Counter(r["cell_id"] for r in rows) == Counter({c.id: 1 for c in cells})
    assert all(r["status"] == "ok" for r in rows) and len(store.unreadable()) == 1  # the old fragment, named
    assert not list((out / "samples").glob("*.tmp"))


def test_interrupt_inside_a_run_is_typed_with_the_cells_kept(tiny_features, tmp_path, monkeypatch, one_thread):
    toml, npz = tiny_features
    cells = _cells(toml, npz)
    real = runner.run_cell
    calls: list[str] = []

    def interrupted(cell, ctx):
        calls.append(cell.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cell, ctx)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(RunInterrupted) as info:
        runner.run_cells(cells, out=tmp_path / "run", progress=False)
    assert (info.value.kept, info.value.total) == (2, 3)
    with RunLock(tmp_path / "run"):  # the interrupted run let go of its lock
        pass


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what}: run exited early with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


#: The first run of the two-run test: the real CLI, but each cell waits for a gate file ``go<k>`` first, so the
#: test decides when cells run (a loaded machine needs 30-100 s to start a second Python with torch).
GATED_RUN = """
import sys, time, pathlib
from evbench.harness import runner
from evbench.harness.cli import main
gate, real, calls = pathlib.Path(sys.argv[1]), runner.run_cell, []
def gated(cell, ctx):
    calls.append(cell.id)
    while not (gate / f"go{len(calls)}").exists():
        time.sleep(0.05)
    return real(cell, ctx)
runner.run_cell = gated
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_two_runs_on_one_out_then_ctrl_c_then_resume(tiny_features, tmp_path, one_thread):
    """Real processes: the second run is refused naming the first's pid; Ctrl-C keeps finished cells; resume."""
    toml, npz = tiny_features
    out = tmp_path / "run"
    args = ["run", "--suite", str(toml), "--train", str(npz), "--out", str(out), "--quiet", "--no-report",
            "--threads", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.Popen([sys.executable, "-c", GATED_RUN, str(tmp_path), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lock = out / LOCK_FILE
        _wait(lambda: lock.exists() and lock.read_text().strip(), 300, "the first run's lock", first)
        second = subprocess.run([sys.executable, "-m", "evbench.harness.cli", *args], capture_output=True,
                                text=True, env=env, timeout=300)
        assert first.poll() is None
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert "choose another --out" in second.stderr and not (out / "results.jsonl").exists()
        (tmp_path / "go1").touch()  # one cell, then Ctrl-C while the second waits for its gate
        results = out / "results.jsonl"
        _wait(lambda: results.exists() and results.read_text().count("\n") >= 1, 300, "the first row", first)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.startswith("evbench: interrupted")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"evbench: interrupted, 1 of 3 cells kept in {out}; resume with `"), err
    assert f"--out {out} --resume" in lines[0] and "--threads 1" in lines[0]
    assert len(ResultStore(out).finished_ids()) == 1
    assert main([*args, "--resume"]) == 0  # in-process: the same options, as the hint says
    rows = ResultStore(out).rows()
    assert sorted(Counter(r["cell_id"] for r in rows).values()) == [1, 1, 1]


def test_run_with_bad_files_says_so_on_the_console(tmp_path, capsys):
    from evbench.harness.cli import _print_store_notes

    store = ResultStore(tmp_path)
    err = [{"path": "/data/a.mp4", "error": "DataError: /data/a.mp4: cannot decode", "stage": "eval"},
           {"path": "/data/b.avi", "error": "DataError: /data/b.avi: 0 frames", "stage": "train"}]
    store.append({"cell_id": "x", "status": "ok", "data_errors": err})
    store.append({"cell_id": "y", "status": "ok", "data_errors": err[:1]})  # the same file twice counts once
    _print_store_notes(tmp_path, report=tmp_path / "report" / "index.html")
    line = capsys.readouterr().err.strip()
    assert line.startswith("evbench: 2 files failed to decode or load: a.mp4 (DataError: /data/a.mp4: cannot decode)")
    assert "b.avi (DataError" in line and line.endswith(f"see {tmp_path / 'report' / 'index.html'}")


def test_cli_run_on_an_out_that_cannot_be_created_is_one_line(tiny_features, tmp_path, capsys):
    toml, npz = tiny_features
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "run"  # ENOTDIR from the kernel, before any set-up work
    rc = main(["run", "--suite", str(toml), "--train", str(npz), "--out", str(out), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and f"evbench: cannot write {out}" in err and "ENOTDIR" in err and "Traceback" not in err


def test_cli_run_on_a_full_disk_stops_with_one_line_and_keeps_nothing_half(tiny_features, tmp_path, capsys,
                                                                          monkeypatch, one_thread):
    from evbench.harness import results

    toml, npz = tiny_features
    out = tmp_path / "run"

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results, "_write_all", full)
    rc = main(["run", "--suite", str(toml), "--train", str(npz), "--out", str(out), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"cannot write {out / 'results.jsonl'}: no space left on device (ENOSPC)" in err
    assert (out / "results.jsonl").read_bytes() == b""  # no fragment of the refused row
    assert "cells measured" not in err  # the run stopped at the first row it could not store
