"""Machine state around a timed window: competing CPU use, the noisy flag, and its place in latency results."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from evbench.harness.machine_state import NOISY_SHARE, TimedWindow, noisy_share, snapshot
from evbench.harness.timing import measure_latency


def test_snapshot_reads_what_is_readable():
    s = snapshot()
    assert {"load_1min", "cpu_count", "cpu_mhz", "governor", "temperature_c", "thermal_throttle_count", "gpu"} <= set(s)
    assert s["cpu_count"] == psutil.cpu_count(logical=True)
    assert s["load_1min"] is None or s["load_1min"] >= 0


def test_competing_process_makes_the_window_noisy():
    spin = "import time\nt = time.time()\nwhile time.time() - t < 4: pass\n"
    proc = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.5)  # interpreter start-up
        competitor = psutil.Process(proc.pid)
        c0 = sum(competitor.cpu_times()[:2])
        with TimedWindow() as win:
            time.sleep(1.5)  # this process idles: any busy CPU is someone else's
        used = (sum(competitor.cpu_times()[:2]) - c0) / 1.5
    finally:
        proc.kill()
        proc.wait()
    state, noisy = win.result()
    assert used > 0.2, "the competitor did not get CPU time"
    assert state["others_cpu_cores"] >= 0.8 * used  # the competitor is counted among the others
    assert state["own_cpu_cores"] < 0.2
    assert noisy == (state["others_cpu_cores"] > NOISY_SHARE) and noisy
    assert state["noisy_threshold_cores"] == NOISY_SHARE


def test_own_work_is_not_counted_as_others():
    with TimedWindow(threshold=1000.0, per_process=False) as win:
        t = time.process_time()
        while time.process_time() - t < 0.4:
            pass
    state, noisy = win.result()
    own_cpu_s = state["own_cpu_cores"] * state["window_s"]
    assert own_cpu_s == pytest.approx(0.4, abs=0.06)  # the 0.4 s of CPU this process spun is its own, whatever the load
    assert noisy is (bool(state["thermal_throttle_events"]) or bool(state["gpu_throttled"]))


def test_threshold_from_argument_or_environment(monkeypatch):
    assert noisy_share() == NOISY_SHARE
    monkeypatch.setenv("EVBENCH_NOISY_SHARE", "0.5")
    assert noisy_share() == 0.5 and noisy_share(2.0) == 2.0
    monkeypatch.setenv("EVBENCH_NOISY_SHARE", "lots")
    with pytest.raises(ValueError, match="EVBENCH_NOISY_SHARE"):
        noisy_share()
    with pytest.raises(ValueError, match=">= 0"):
        noisy_share(-1.0)
    with pytest.raises(RuntimeError, match="before the window closed"):
        TimedWindow(1.0).result()


def test_latency_result_carries_machine_state_and_noisy():
    stats = measure_latency(lambda: sum(range(2000)), min_queries=16, min_duration_s=0.05, noisy_share=1000.0)
    d = stats.to_dict()
    assert d["machine_state"]["window_s"] > 0 and "others_cpu_cores" in d["machine_state"]
    assert d["noisy"] in (False, True) and d["machine_state"]["noisy_threshold_cores"] == 1000.0
    off = measure_latency(lambda: None, min_queries=4, min_duration_s=0.0, machine_state=False)
    assert off.machine_state is None and off.noisy is None
