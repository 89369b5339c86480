"""Nightly micro-benchmarks of the early-exit family (pytest-benchmark, CPU, lite configurations).

Run: ``python -m pytest bench/bench_early_exit.py --benchmark-only``.

For RSEE, TLEE, FrameExit and the dynamic-inference grid, single-stream batch-1
latency is measured at several values of the ``threshold`` knob on a fixed
random-weight model whose classifier/gate weights are scaled so that the
exits actually fire (an untrained model is never confident).  Each benchmark
records in ``extra_info`` the GMACs/video of that operating point (trace sum
over the cost table), the frames processed and covered, and the honest FPS
pair (:func:`evbench.methods.exits.honest_fps`): frames *processed* per second
versus frames *covered* per second — the number TLEE's ``time_test.py``
reports as FPS.  Latency should follow GMACs across the sweep.
"""

from __future__ import annotations

import time

import pytest
import torch
from evbench.harness.costs import cost_table, trace_gmacs
from evbench.harness.registry import create_method
from evbench.methods.exits import honest_fps

FRAMES = 8
RES = 112


def _sharpen(name: str, method: torch.nn.Module) -> None:
    """Scale the exit-deciding weights of a random model so that its exits fire at ordinary thresholds."""
    with torch.no_grad():
        if name == "rsee":
            method.new_fc.weight.normal_(0, 1.0)
        elif name == "tlee":
            method.classifier.weight.mul_(20)
            method.gate.fc2.weight.mul_(20)
        elif name == "frameexit":
            for g in method.exit_selector:
                g.linear.weight.mul_(30)
        elif name == "dyngrid":
            for h in method.heads:
                h.fc.weight.mul_(8)


SWEEPS = {
    "rsee": (0.5, 0.7, 0.9, 1.01),
    "tlee": (0.2, 0.5, 0.8, 1.01),
    "frameexit": (0.2, 0.5, 0.8, 1.01),
    "dyngrid": (0.5, 0.8, 0.95, 1.01),
}


@pytest.fixture(scope="module")
def models():
    out = {}
    for name in SWEEPS:
        torch.manual_seed(0)
        m = create_method(name, config="lite", num_classes=6).eval()
        _sharpen(name, m)
        out[name] = m
    return out


@pytest.mark.parametrize("name,threshold", [(n, t) for n, ts in SWEEPS.items() for t in ts])
def test_threshold_sweep_latency(benchmark, models, name, threshold):
    method = models[name]
    x = torch.randn(1, FRAMES, 3, RES, RES, generator=torch.Generator().manual_seed(0))
    knobs = {"threshold": threshold}

    def query():
        with torch.inference_mode():
            return method(x, knobs=knobs)

    out = query()  # warm-up on this input shape and path
    gmacs = trace_gmacs(out.trace[0], cost_table(method))
    processed = len({s.frame for s in out.trace[0] if s.frame >= 0})
    result = benchmark.pedantic(query, rounds=5, warmup_rounds=1, iterations=1)
    assert result.logits.shape == (1, 6)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: one timed call
        t0 = time.perf_counter()
        query()
        mean_s = time.perf_counter() - t0
    else:
        mean_s = stats.stats.mean
    fps = honest_fps(mean_s, processed, FRAMES)
    benchmark.extra_info.update({"method": name, "threshold": threshold, "gmacs_per_video": gmacs,
                                 "frames_processed": processed, "frames_covered": FRAMES,
                                 "threads": torch.get_num_threads(), **fps})
