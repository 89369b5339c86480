"""Run history (DuckDB): add runs and pytest-benchmark JSON, machine key, one-call load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from evbench.harness.cli import main
from evbench.harness.history import History, HistoryError, bench_data, machine_identity, machine_key
from evbench.harness.results import history
from nightly_helpers import night_rows, real_rows, write_run


@pytest.fixture(scope="module")
def rows():
    return real_rows(2)


def test_add_run_stores_identity_scalars_samples_and_clips(tmp_path, rows):
    run = write_run(tmp_path / "run1", night_rows(rows, seed=0, commit="a" * 40))
    with History(tmp_path / "h") as h:
        rid, status = h.add_run(run)
        assert status == "added"
        assert h.add_run(run) == (rid, "present")
        clips = h.clips([rid])
    df = history(tmp_path / "h")
    assert len(df) == 2 and set(df["cell_id"]) == {r["cell_id"] for r in rows}
    r = df.set_index("cell_id").loc[rows[0]["cell_id"]]
    assert r["commit"] == "a" * 40 and r["method"] == "uniform" and r["dataset"] == "generated"
    assert r["top1"] == pytest.approx(rows[0]["top1"]) and r["gmacs_per_video"] == pytest.approx(rows[0]["gmacs_per_video"])
    assert isinstance(r["latency_samples_ms"], np.ndarray) and len(r["latency_samples_ms"]) == 128
    assert r["latency_ms_p50"] == pytest.approx(np.median(r["latency_samples_ms"]))
    assert r["noisy"] is False or r["noisy"] == False  # noqa: E712 — pandas BooleanDtype
    assert json.loads(r["decisions"]) == {"exit_hist": rows[0]["exit_hist"], "frames_used_hist": rows[0]["frames_used_hist"]}
    assert r["machine_key"] == machine_key(machine_identity(rows[0]))
    assert len(clips) == 2 * rows[0]["num_videos"]


def test_rewritten_run_replaces_its_entry(tmp_path, rows):
    run = write_run(tmp_path / "run", night_rows(rows[:1], seed=0))
    with History(tmp_path / "h") as h:
        first, _ = h.add_run(run)
        write_run(run, night_rows(rows[1:2], seed=0))  # resumed: one more cell
        second, status = h.add_run(run)
        assert status == "replaced" and second != first
        assert list(h.runs()["run_id"]) == [second]
        assert h.run_id_of(run) == second


def test_machine_key_groups_the_fingerprint(rows):
    ident = machine_identity(rows[0])
    assert {"cpu_model", "threads", "torch", "backend", "precision", "device", "jetson_power_mode"} <= set(ident)
    assert ident["threads"] == 2 and ident["backend"] == "torch" and ident["jetson_power_mode"] is None
    other = json.loads(json.dumps(rows[0]))
    other["env"]["torch"] = "9.9.9"
    assert machine_key(machine_identity(other)) != machine_key(ident)
    other = json.loads(json.dumps(rows[0]))
    other["env"]["hostname"] = "another-box"  # same hardware and software: comparable
    assert machine_key(machine_identity(other)) == machine_key(ident)


def _bench_json(path, *, median_s=0.002):
    data = {
        "machine_info": {"node": "n", "processor": "x86_64", "machine": "x86_64", "python_version": "3.11.7",
                         "cpu": {"brand_raw": "Test CPU", "count": 2}},
        "commit_info": {"id": "b" * 40, "dirty": False},
        "datetime": "2026-11-30T02:00:00+00:00", "version": "5.2.3",
        "benchmarks": [{"group": "uniform", "name": "test_uniform_forward", "fullname": "bench/bench_uniform.py::test_uniform_forward",
                        "params": None, "extra_info": {"gmacs": 0.95, "note": "x"},
                        "stats": {"min": median_s * 0.9, "max": median_s * 1.3, "mean": median_s * 1.02,
                                  "stddev": median_s * 0.05, "median": median_s, "rounds": 40,
                                  "data": list(np.linspace(median_s * 0.9, median_s * 1.1, 40))}}],
    }
    path.write_text(json.dumps(data))
    return path


def test_pytest_benchmark_json_lands_in_the_same_history(tmp_path, rows, capsys):
    f = _bench_json(tmp_path / "0001_bench.json")
    data = bench_data(f)
    cell = data.cells.iloc[0]
    assert cell["cell_id"] == "bench:bench/bench_uniform.py::test_uniform_forward"
    assert cell["latency_ms_p50"] == pytest.approx(2.0) and len(cell["latency_samples_ms"]) == 40
    assert cell["gmacs"] == pytest.approx(0.95) and cell["commit"] == "b" * 40
    run = write_run(tmp_path / "run", night_rows(rows[:1], seed=0))
    assert main(["history", "add", str(run), "--history", str(tmp_path / "h")]) == 0
    assert main(["history", "add-bench", str(f), "--history", str(tmp_path / "h")]) == 0
    df = history(tmp_path / "h")
    assert set(df["run_kind"]) == {"evbench-run", "pytest-benchmark"} and len(df) == 2
    assert main(["history", "add-bench", str(run / "results.jsonl"), "--history", str(tmp_path / "h")]) == 2
    assert "pytest-benchmark" in capsys.readouterr().err


def test_missing_history_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(HistoryError, match="no run history"):
        history(tmp_path / "nothing")
    assert main(["history", "list", "--history", str(tmp_path / "nothing")]) == 2
    assert "no run history" in capsys.readouterr().err
    assert main(["history", "add", str(tmp_path), "--history", str(tmp_path / "h")]) == 2
    assert "not an evbench run directory" in capsys.readouterr().err
