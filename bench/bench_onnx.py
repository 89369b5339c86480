"""Nightly: ONNX Runtime vs torch eager on the same decisions (pytest-benchmark; ``tox -e bench``).

Both backends run the same method copy's Python control flow; only the costed
modules move to ONNX Runtime.  The ratio of p50 latencies, measured side by
side in one run with the same thread count, goes to ``extra_info`` for the
trend pages.  On an idle 2-core AMD EPYC (2026-11-30) the ratio was 0.40–0.95
(uniform 0.95, TLEE 0.54, RSEE 0.40, AR-Net 0.49): ONNX Runtime's kernels beat
eager at batch 1 even with a host round trip per module call.  The check fails
beyond 1.5×: a regression in that round trip is what the nightly should catch.
On a loaded machine both thread pools contend and the ratio is not meaningful.
"""

from __future__ import annotations

import pytest
import torch
from evbench.harness.onnx_backend import max_abs_logit_diff, to_onnxruntime
from evbench.harness.registry import create_method
from evbench.harness.timing import measure_latency


@pytest.mark.parametrize("name", ["uniform", "tlee", "rsee", "arnet"])
def test_bench_onnxruntime_vs_torch(benchmark, name):
    """p50 latency ratio ONNX Runtime / torch eager, lite configuration, 4 frames, batch 1."""
    torch.manual_seed(0)
    method = create_method(name, config="lite", num_classes=10, frames=4).eval()
    ort_method = to_onnxruntime(method)
    x = torch.randn(tuple(method.example_input(1).shape))

    def query(m):
        def run():
            with torch.inference_mode():
                m(x)
        return run

    check = max_abs_logit_diff(method, ort_method, [x])
    lat_torch = measure_latency(query(method), min_queries=64, min_duration_s=0.5)
    lat_ort = benchmark.pedantic(lambda: measure_latency(query(ort_method), min_queries=64, min_duration_s=0.5),
                                 rounds=1)
    ratio = lat_ort.p50 / lat_torch.p50
    benchmark.extra_info.update({"p50_ms_torch": lat_torch.p50, "p50_ms_onnxruntime": lat_ort.p50,
                                 "ratio_onnxruntime_vs_torch": ratio, "threads": torch.get_num_threads(),
                                 "max_abs_logit_diff": check["max_abs_logit_diff"]})
    assert check["decisions_match"]
    assert ratio < 1.5
