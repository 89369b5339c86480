"""The evbench CLI contract: methods --json, profile --json, run on real shared data."""

from __future__ import annotations

import json

import pytest
from evbench.harness.cli import main
from evbench.harness.results import load
from shared_data import shared_path


def test_methods_json_lists_names_and_cards(capsys):
    assert main(["methods", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in listing}
    assert {"uniform", "uniform_lstm"} <= names
    for m in listing:
        assert m["card"]["paper"] and "paper" in m["configs"] and "lite" in m["configs"]


def test_profile_json_has_the_contract_keys(capsys):
    rc = main(["profile", "--method", "uniform", "--config", "lite", "--frames", "2", "--min-queries", "4",
               "--min-duration", "0", "--no-offline", "--clips", "2", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("gmacs_per_frame", "gmacs_per_video", "executed_gmacs_per_video", "cost_table", "latency_ms", "fps",
                "peak_rss_mb"):
        assert key in d
    assert {"p50", "p90", "p99", "mean"} <= set(d["latency_ms"])
    assert d["cost_table"][0].keys() >= {"module", "input_shape", "gmacs"}
    assert d["executed_gmacs_per_video"] == pytest.approx(d["gmacs_per_video"], rel=0.01)
    assert d["gmacs_per_video"] == pytest.approx(2 * d["gmacs_per_frame"])
    assert len(d["latency_ms"]["samples"]) >= 4


def test_profile_unknown_knob_exits_with_a_clear_message(capsys):
    assert main(["profile", "--method", "uniform", "--config", "lite", "--knob", "bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.slow
def test_run_on_real_frame_folders_reports_per_file_decode(tmp_path):
    frames = shared_path("ucf101_frames")
    out = tmp_path / "run"
    suite = tmp_path / "s.toml"
    suite.write_text(
        'name = "real"\ndataset = "x"\n[data]\ntest_split = "all"\n[measure]\nmin_queries = 4\nmin_duration_s = 0.0\n'
        'offline = false\nper_file = true\nlatency_clips = 1\n[[methods]]\nname = "uniform"\nconfig = "lite"\n'
        'overrides = [{ frames = 2, resolution = 56 }]\n'
    )
    rc = main(["run", "--suite", str(suite), "--data", str(frames), "--out", str(out), "--quiet",
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    row = load(out).iloc[0]
    assert row["num_videos"] == 6 and len(row["per_file"]) == 6
    assert all(f["decode_ms"] > 0 for f in row["per_file"])
    assert row["trained"] is False or row["trained"] == 0
    assert (out / "report" / "index.html").exists()


@pytest.mark.slow
def test_run_side_by_side_on_backends_and_a_modeled_device(tmp_path, tiny_generated):
    suite = tmp_path / "s.toml"
    suite.write_text(
        f'name = "m"\ndataset = "generated:{tiny_generated}"\n[train]\nepochs = 1\nbatch_size = 4\n'
        '[measure]\nmin_queries = 4\nmin_duration_s = 0.0\noffline = false\nlatency_clips = 1\n'
        '[[methods]]\nname = "uniform"\nconfig = "lite"\noverrides = [{ frames = 2, resolution = 56 }]\n'
    )
    out = tmp_path / "run"
    rc = main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--device", "cpu,jetson-nano-modeled",
               "--backend", "torch,onnxruntime", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    df = load(out)
    assert len(df) == 4 and df["train_reused"].sum() == 3  # one trained model serves all four cells
    measured, modeled = df[df["device"] == "cpu"], df[df["device"] == "jetson-nano-modeled"]
    assert not measured["modeled"].any() and modeled["modeled"].all()
    assert set(modeled["backend"]) == {"modeled:pytorch-fp16", "modeled:tensorrt-fp16"}
    assert set(measured["backend"]) == {"torch", "onnxruntime"}
    assert (df["gmacs_per_video"] - df["gmacs_per_video"].iloc[0]).abs().max() < 1e-9
    assert (out / "cpu-validation.json").exists()
    page = (out / "report" / "index.html").read_text()
    assert 'href="#modeled"' in page and "held-out" in page.lower()
