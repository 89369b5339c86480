"""The runner end to end on a tiny generated dataset: contract columns, resume, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from evbench.harness import runner
from evbench.harness.results import load, load_samples
from evbench.harness.suites import load_suite

SUITE = """
name = "tiny"
dataset = "generated:{root}"
[train]
epochs = 1
batch_size = 4
[measure]
min_queries = 4
min_duration_s = 0.0
max_duration_s = 5.0
offline = false
latency_clips = 2
[[methods]]
name = "uniform"
config = "lite"
overrides = [{{ backbone = "mobilenet_v2_035", resolution = 56, frames = 2 }}]
knobs = [{{}}, {{ frames = 1 }}]
"""

CONTRACT = ["method", "config", "knobs", "dataset", "top1", "top5", "gmacs_per_video", "frames_used", "latency_ms_p50"]


def _cells(tmp_path: Path, root: Path):
    f = tmp_path / "tiny.toml"
    f.write_text(SUITE.format(root=root))
    return load_suite(str(f)).cells()


@pytest.mark.slow
def test_run_writes_contract_columns_and_per_sample_rows(tmp_path, tiny_generated):
    cells = _cells(tmp_path, tiny_generated)
    summary = runner.run_cells(cells, out=tmp_path / "run", progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.done == 2 and summary.failed == 0
    df = load(tmp_path / "run")
    assert set(CONTRACT) <= set(df.columns)
    assert df["dataset_synthetic"].all()
    assert ((df["top1"] >= 0) & (df["top1"] <= 1)).all()
    one = df[df["knobs"] == '{"frames": 1}'].iloc[0]
    two = df[df["knobs"] == "{}"].iloc[0]
    assert one["frames_used"] == 1 and two["frames_used"] == 2
    assert one["gmacs_per_video"] < two["gmacs_per_video"]
    assert two["executed_gmacs_per_video"] == pytest.approx(two["gmacs_per_video"], rel=0.01)
    assert one["train_reused"]  # knob siblings share one trained model
    # honest FPS: one of two frames processed, so the covered rate is twice the processed rate
    assert one["fps_stream_covered"] == pytest.approx(2 * one["fps_stream_processed"])
    assert two["fps_stream_covered"] == pytest.approx(two["fps_stream_processed"])
    samples = load_samples(tmp_path / "run", two["cell_id"])
    assert len(samples) == two["num_videos"] and {"id", "pred", "gmacs", "exit"} <= set(samples.columns)
    assert two["env_torch"] and two["env_threads"] >= 1


@pytest.mark.slow
def test_resume_after_interruption_neither_loses_nor_repeats(tmp_path, tiny_generated, monkeypatch):
    cells = _cells(tmp_path, tiny_generated)
    out = tmp_path / "run"
    real = runner.run_cell
    calls: list[str] = []

    def interrupted(cell, ctx):
        calls.append(cell.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cell, ctx)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_cells(cells, out=out, progress=False, cache_dir=str(tmp_path / "cache"))
    assert len(load(out)) == 1
    with pytest.raises(FileExistsError, match="--resume"):
        runner.run_cells(cells, out=out, progress=False)
    calls.clear()
    monkeypatch.setattr(runner, "run_cell", lambda c, x: (calls.append(c.id), real(c, x))[1])
    summary = runner.run_cells(cells, out=out, resume=True, progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.skipped == 1 and summary.done == 1 and len(calls) == 1
    df = load(out)
    assert sorted(df["cell_id"]) == sorted(c.id for c in cells)


@pytest.mark.slow
def test_bad_video_is_recorded_and_the_run_goes_on(tmp_path, tiny_generated):
    root = tmp_path / "data"
    shutil.copytree(tiny_generated, root)
    test_list = (root / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    victim = root / test_list[0]
    victim.write_bytes(b"this is not a video")
    cells = _cells(tmp_path, root)[:1]
    summary = runner.run_cells(cells, out=tmp_path / "run", progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.failed == 0
    row = load(tmp_path / "run").iloc[0]
    errors = row["data_errors"]
    assert any(victim.name in e["path"] and e["stage"] == "eval" for e in errors)
    assert row["num_videos"] == len(test_list) - 1


def test_failed_cell_is_recorded_with_its_error(tmp_path, tiny_generated):
    cells = _cells(tmp_path, tiny_generated)
    bad = type(cells[0])(**{**cells[0].to_dict(), "method": "nosuch"})
    summary = runner.run_cells([bad], out=tmp_path / "run", progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.failed == 1
    row = load(tmp_path / "run").iloc[0]
    assert row["status"] == "failed" and "nosuch" in row["error"]


def test_cell_ids_are_stable_and_distinct(tmp_path, tiny_generated):
    a = _cells(tmp_path, tiny_generated)
    b = _cells(tmp_path, tiny_generated)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    assert len({c.build_id for c in a}) == 1


@pytest.mark.slow
def test_onnxruntime_cells_run_the_same_decisions(tmp_path, tiny_generated):
    f = tmp_path / "tiny.toml"
    f.write_text(SUITE.format(root=tiny_generated))
    suite = load_suite(str(f))
    cells = suite.cells(backend="torch") + suite.cells(backend="onnxruntime")
    summary = runner.run_cells(cells, out=tmp_path / "run", progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.failed == 0, summary.failures
    df = load(tmp_path / "run")
    ort = df[df["backend"] == "onnxruntime"]
    eager = df[df["backend"] == "torch"]
    assert len(ort) == len(eager) == 2
    assert (ort["max_abs_logit_diff"] <= 1e-4).all() and ort["decisions_match"].all()
    assert ort["env_backend"].eq("onnxruntime-cpu").all()
    # same trained model, same decisions: the same GMACs per video on both backends
    merged = ort.merge(eager, on="knobs", suffixes=("_ort", "_torch"))
    assert (merged["gmacs_per_video_ort"] - merged["gmacs_per_video_torch"]).abs().max() < 1e-9
    assert (merged["top1_ort"] == merged["top1_torch"]).all()


@pytest.mark.slow
def test_modeled_device_cells_are_marked_modeled(tmp_path, tiny_generated):
    f = tmp_path / "tiny.toml"
    f.write_text(SUITE.format(root=tiny_generated))
    cells = load_suite(str(f)).cells(device="jetson-nano-modeled")
    summary = runner.run_cells(cells, out=tmp_path / "run", progress=False, cache_dir=str(tmp_path / "cache"))
    assert summary.failed == 0, summary.failures
    df = load(tmp_path / "run")
    assert df["modeled"].all() and df["backend"].str.startswith("modeled:").all()
    assert (df["latency_ms_p50"] > 0).all()
    assert df["latency_convention"].str.contains("MODELED").all()
    # accuracy and GMACs are measured on this CPU; the fingerprint says so
    assert df["env_device"].eq("cpu").all()
    # fewer frames, less modeled time
    one = df[df["knobs"] == '{"frames": 1}'].iloc[0]
    two = df[df["knobs"] == "{}"].iloc[0]
    assert one["latency_ms_mean"] < two["latency_ms_mean"]
