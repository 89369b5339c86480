"""The results store: atomic rows, torn lines, load() as the one reader."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from evbench.harness.results import ResultStore, load, load_samples


def test_append_load_roundtrip_flattens_env_and_derives_gflops(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "ok", "method": "m", "knobs": {"t": 0.5}, "gmacs_per_video": 2.0,
                  "top1": float("nan"), "env": {"torch": "x", "threads": 2}})
    store.write_samples("a", pd.DataFrame({"id": ["v1"], "gmacs": [2.0]}))
    df = load(tmp_path)
    assert df.loc[0, "env_torch"] == "x" and df.loc[0, "gflops_per_video"] == 4.0
    assert json.loads(df.loc[0, "knobs"]) == {"t": 0.5}
    assert df.loc[0, "top1"] is None or math.isnan(df.loc[0, "top1"])  # NaN stored as null, never invented
    assert load_samples(tmp_path, "a")["gmacs"].tolist() == [2.0]


def test_torn_last_line_is_ignored_and_latest_row_wins(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "failed", "error": "boom"})
    store.append({"cell_id": "a", "status": "ok"})
    with open(store.path, "a") as fh:
        fh.write('{"cell_id": "b", "sta')  # a crash mid-write
    with pytest.warns(UserWarning, match="torn"):
        df = load(tmp_path)
    assert df["cell_id"].tolist() == ["a"] and df.loc[0, "status"] == "ok"
    assert store.finished_ids() == {"a"}


def test_missing_results_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing")
