"""Nightly micro-benchmarks of the uniform baselines (pytest-benchmark; ``tox -e bench``).

Speed targets are ratios measured side by side in one run, never absolute
times: processing k of T frames must cost about k/T of the time, as the GMAC
count says.  The ratio is recorded in ``extra_info`` for the trend pages and
checked against the GMAC ratio with a tolerance wide enough for CPU noise.
"""

from __future__ import annotations

import pytest
import torch
from evbench.harness.costs import trace_gmacs
from evbench.harness.registry import create_method
from evbench.harness.timing import measure_latency


@pytest.fixture(scope="module")
def lite_uniform():
    torch.manual_seed(0)
    return create_method("uniform", config="lite", num_classes=6).eval()


def test_bench_uniform_lite_clip(benchmark, lite_uniform):
    """Batch-1 latency of the lite TSN clip (4 frames @112)."""
    x = torch.randn(1, 4, 3, 112, 112)

    def run():
        with torch.inference_mode():
            lite_uniform(x)

    benchmark.pedantic(run, rounds=20, warmup_rounds=3)


def test_bench_frames_knob_latency_follows_gmacs(benchmark, lite_uniform):
    """Latency ratio of 1 vs 4 frames, measured in one run, against the GMAC ratio."""
    x = torch.randn(1, 4, 3, 112, 112)
    table = lite_uniform.cost_table()

    def query(k: int):
        def run():
            with torch.inference_mode():
                lite_uniform(x, knobs={"frames": k})
        return run

    with torch.inference_mode():
        g1 = trace_gmacs(lite_uniform(x, knobs={"frames": 1}).trace[0], table)
        g4 = trace_gmacs(lite_uniform(x).trace[0], table)
    lat1 = measure_latency(query(1), min_queries=64, min_duration_s=0.5)
    lat4 = benchmark.pedantic(lambda: measure_latency(query(4), min_queries=64, min_duration_s=0.5), rounds=1)
    ratio = lat1.p50 / lat4.p50
    benchmark.extra_info.update({"latency_ratio_1_vs_4": ratio, "gmac_ratio_1_vs_4": g1 / g4,
                                 "p50_ms_1": lat1.p50, "p50_ms_4": lat4.p50})
    assert ratio == pytest.approx(g1 / g4, rel=0.5)
