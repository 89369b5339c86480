"""End to end: two real nights of a tiny suite through `evbench nightly` (run --history, compare, trend pages)."""

from __future__ import annotations

import json

import pytest
from evbench.harness.cli import main
from evbench.harness.history import history


@pytest.mark.slow
def test_two_real_nights_are_added_compared_and_drawn(tiny_generated, tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(
        f'name = "tinynight"\ndescription = "two-night test"\ndataset = "{tiny_generated}"\n'
        "[measure]\nmin_queries = 32\nmin_duration_s = 0.1\nmax_duration_s = 5.0\noffline = false\n"
        'latency_clips = 2\neval_batch_size = 4\n[[methods]]\nname = "uniform"\nconfig = "lite"\nknobs = [{}]\n')
    root = tmp_path / "history"
    argv = ["nightly", "--history", str(root), "--suite", str(suite), "--quiet", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "night1")]) == 0
    assert "first night on this machine key" in capsys.readouterr().out
    rc = main([*argv, "--out", str(tmp_path / "night2")])
    result = json.loads((tmp_path / "night2" / "compare.json").read_text())
    assert len(result) == 1
    cell = result[0]
    assert cell["gmacs_base"] == cell["gmacs_new"]  # same commit, same clips: exactly the same cost
    assert not cell["verdict"].startswith(("not comparable (machine", "not comparable (only", "cost changed"))
    assert cell["verdict"] in ("no change", "slower", "faster") or cell["verdict"].startswith("not comparable (noisy")
    # --fail-on regression exits 1 on a regression, and fails closed on a night whose timing was noisy
    assert rc == (1 if cell["regression"] or cell["noisy"] else 0)

    hist = history(root)
    assert hist["run_id"].nunique() == 2 and set(hist["status"]) == {"ok"}
    state = json.loads(hist["machine_state"].iloc[-1])
    assert state["others_cpu_cores"] >= 0 and "load_1min" in state["before"]
    assert hist["noisy"].iloc[-1] == (state["others_cpu_cores"] > state["noisy_threshold_cores"]) or bool(
        state["thermal_throttle_events"])
    assert (tmp_path / "night2" / "report" / "trends" / "index.html").is_file()
    assert 'href="trends/index.html"' in (tmp_path / "night2" / "report" / "index.html").read_text()
