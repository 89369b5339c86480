"""`evbench profile --json` is a one-cell run: the same keys and values as that cell's row in `evbench run`.

For every registered method (lite configuration, 4 frames, 2 clips of the tiny generated dataset, untrained),
the run's stored row and the profile's JSON agree on every identity, counted and accuracy field
(:func:`evbench.harness.row.fields_of_kind`); only timed and run-level fields may differ.
"""

from __future__ import annotations

import json

import pytest
from evbench.harness import runner
from evbench.harness.cli import main
from evbench.harness.registry import list_methods
from evbench.harness.row import field_names, fields_of_kind
from evbench.harness.suites import load_suite

MEASURE = {"min_queries": 2, "min_duration_s": 0.0, "max_duration_s": 5.0, "warmup_runs": 1, "offline": False,
           "latency_clips": 2, "max_clips": 2, "crosscheck": False}


@pytest.fixture(scope="module")
def run_rows(tmp_path_factory, tiny_generated):
    tmp = tmp_path_factory.mktemp("parity")
    measure = "\n".join(f"{k} = {json.dumps(v)}" for k, v in MEASURE.items())
    methods = "".join(f'[[methods]]\nname = "{m}"\nconfig = "lite"\noverrides = [{{ frames = 4 }}]\n'
                      for m in list_methods())
    f = tmp / "parity.toml"
    f.write_text(f'name = "parity"\ndataset = "generated:{tiny_generated}"\n[data]\ntest_split = "all"\n'
                 f"[measure]\n{measure}\n{methods}")
    summary = runner.run_cells(load_suite(str(f)).cells(), out=tmp / "run", progress=False,
                               cache_dir=str(tmp / "cache"))
    assert summary.failed == 0, summary.failures
    rows = [json.loads(line) for line in (tmp / "run" / "results.jsonl").read_text().splitlines()]
    return {r["method"]: r for r in rows}, tmp


@pytest.mark.slow
@pytest.mark.parametrize("method", list_methods())
def test_profile_json_equals_the_run_row_on_every_measured_field(method, run_rows, tiny_generated, capsys,
                                                                one_thread):
    rows, tmp = run_rows
    row = rows[method]
    args = ["profile", "--method", method, "--config", "lite", "--frames", "4", "--data",
            f"generated:{tiny_generated}", "--split", "all", "--clips", "2", "--min-queries", "2",
            "--min-duration", "0", "--no-offline", "--no-crosscheck", "--measure", "max_duration_s=5",
            "--measure", "warmup_runs=1", "--cache-dir", str(tmp / "cache"), "--json"]
    assert main(args) == 0
    prof = json.loads(capsys.readouterr().out)
    assert set(prof) - {"latency_ms", "fps"} == set(row) == set(field_names())
    same = fields_of_kind("identity", "measured", "accuracy")
    differ = {k: (prof[k], row[k]) for k in same if prof[k] != row[k]}
    assert not differ, differ
    assert row["num_videos"] == 2 and row["gmacs_per_video"] > 0 and row["latency_ms_p50"] > 0
    # compatibility keys carry the row's values
    assert prof["latency_ms"] == {"p50": prof["latency_ms_p50"], "p90": prof["latency_ms_p90"],
                                  "p99": prof["latency_ms_p99"], "mean": prof["latency_ms_mean"],
                                  "samples": prof["latency_samples_ms"]}
    assert prof["fps"] == prof["fps_offline"]
    for key in ("gmacs_per_frame", "gmacs_per_video", "executed_gmacs_per_video", "cost_table", "peak_rss_mb"):
        assert key in prof


def test_profile_on_random_inputs_is_labelled_synthetic_and_measures_no_accuracy(capsys, one_thread):
    assert main(["profile", "--method", "uniform", "--config", "lite", "--frames", "2", "--clips", "2",
                 "--min-queries", "2", "--min-duration", "0", "--no-offline", "--no-crosscheck",
                 "--measure", "latency=false", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dataset"] == "random" and d["dataset_synthetic"] and d["dataset_source"] == "random"
    assert d["top1"] is None and "not measured" in d["accuracy_note"]
    assert d["num_videos"] == 2 and d["latency_ms_p50"] is None and d["latency_ms"]["p50"] is None
    assert d["measure_settings"]["latency"] is False and d["schema_version"] >= 2


def test_profile_bad_setting_is_one_line_naming_the_flag(capsys):
    assert main(["profile", "--method", "uniform", "--config", "lite", "--measure", "offline_batches=[0]"]) == 2
    err = capsys.readouterr().err
    assert "offline_batches" in err and "Traceback" not in err and err.count("\n") == 1
