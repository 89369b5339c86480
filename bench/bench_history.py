"""Loading a 1,000-run history in one call (pytest-benchmark; ``tox -e bench``).

The issue's target: ``evbench.harness.results.history(DIR)`` returns 1,000 runs
as one DataFrame in under 2 s.  The synthetic history is built here through the
public store (:meth:`evbench.harness.history.History.add_many`): 1,000 nights of 10
cells, each cell with 64 raw latency samples (ms), top-1 and GMACs per video,
and 24 per-clip outcomes — 10,000 cell rows, 640,000 samples, 240,000 clips.
Building it takes a while; the benchmark times only the load.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from evbench.harness.history import _CLIP_COLUMNS, History, RunData
from evbench.harness.results import history

RUNS, CELLS, SAMPLES, CLIPS = 1000, 10, 64, 24
TARGET_S = 2.0


def _night(i: int, rng: np.random.Generator) -> RunData:
    run_id = f"run{i:05d}"
    t = dt.datetime(2024, 1, 1, 2) + dt.timedelta(days=i)
    cells = pd.DataFrame({
        "run_id": run_id, "cell_id": [f"cell{c:02d}" for c in range(CELLS)], "machine_key": "m0",
        "machine": '{"cpu_model":"bench"}', "method": "uniform", "config": "lite", "knobs": "{}", "overrides": "{}",
        "label": [f"uniform lite c{c}" for c in range(CELLS)], "dataset": "generated", "dataset_source": "generated",
        "suite": "nightly", "device": "cpu", "backend": "torch", "commit": f"{i:040x}", "time": t, "status": "ok",
        "noisy": False, "env": "{}", "machine_state": "{}", "decisions": '{"exit_hist":{"all_frames":24}}',
        "latency_samples_ms": [list(rng.lognormal(np.log(10 + c), 0.05, SAMPLES)) for c in range(CELLS)],
        "latency_ms_p50": rng.normal(10, 0.1, CELLS), "latency_ms_p90": rng.normal(11, 0.1, CELLS),
        "top1": rng.uniform(0.3, 0.5, CELLS), "num_videos": float(CLIPS), "gmacs_per_video": 0.9473,
    })
    clips = pd.DataFrame({"run_id": run_id, "cell_id": np.repeat(cells["cell_id"].to_numpy(), CLIPS),
                          "clip_id": [f"clip{k:03d}" for k in range(CLIPS)] * CELLS,
                          "label": np.tile(np.arange(CLIPS) % 6, CELLS), "pred": rng.integers(0, 6, CELLS * CLIPS)})
    run = {"run_id": run_id, "source": f"/nightly/{run_id}", "kind": "evbench-run", "suite": "nightly",
           "commit": f"{i:040x}", "time": t, "n_cells": CELLS}
    return RunData(run=run, cells=cells, clips=clips[_CLIP_COLUMNS])


@pytest.fixture(scope="module")
def thousand_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("history1000")
    rng = np.random.default_rng(0)
    with History(root) as h:
        for start in range(0, RUNS, 100):  # bulk inserts of 100 nights (History.add_many)
            assert set(h.add_many([_night(i, rng) for i in range(start, start + 100)])) == {"added"}
    return root


def test_bench_history_load_1000_runs(benchmark, thousand_runs):
    """history(DIR) of 1,000 runs x 10 cells (with raw samples) in one call, under 2 s."""
    df = benchmark.pedantic(history, args=(thousand_runs,), rounds=5, warmup_rounds=1)
    assert len(df) == RUNS * CELLS and df["run_id"].nunique() == RUNS
    assert len(df["latency_samples_ms"].iloc[0]) == SAMPLES
    median = benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info["runs"] = RUNS
    benchmark.extra_info["cell_rows"] = RUNS * CELLS
    if median is not None:
        assert median < TARGET_S, f"1,000-run history loaded in {median:.2f} s (target < {TARGET_S} s)"
