"""Nightly check of the modeled-device roofline against this CPU, and a GPU where one is attached (pytest-benchmark; ``tox -e bench``).

The same model family the Jetson profiles use (:mod:`evbench.harness.devices.modeled`),
with runtime ``torch-cpu-fp32``, is fitted to measured batch-1 latencies of a
few torchvision models and must predict held-out ones.  The held-out errors
(% of measured p50) go to ``extra_info`` for the trend pages; the bound is wide
because a shared CPU is noisy.
"""

from __future__ import annotations

import pytest
import torch
from evbench.harness.devices.modeled import validate_cpu, validate_device


def test_bench_modeled_validation_cpu(benchmark):
    """Fit on 4 models at 96 px, 1 thread, 2 rounds; held-out mean |error| must stay below 40 %."""
    holder = {}

    def run():
        holder["r"] = validate_cpu(calibration_models=("resnet18", "squeezenet1_1", "mobilenet_v3_large", "vgg11"),
                                   held_out_models=("resnet50", "mobilenet_v2"), resolution=96, threads=1,
                                   rounds=2, min_queries=16, min_duration_s=0.3,
                                   max_duration_s=3.0)

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    s = holder["r"]["summary"]
    benchmark.extra_info.update({
        "held_out_mean_abs_error_pct": s["held_out_mean_abs_error_pct"],
        "held_out_max_abs_error_pct": s["held_out_max_abs_error_pct"],
        "eta_compute": s["eta_compute"], "eta_bandwidth": s["eta_bandwidth"], "t_layer_ms": s["t_layer_ms"],
    })
    assert s["held_out_mean_abs_error_pct"] < 40


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
def test_bench_modeled_validation_cuda(benchmark):  # pragma: no cover - GPU machines only
    """The Jetson runtime's model (pytorch-fp16) fitted and checked on an attached GPU at 224 px, CUDA events.

    Fit on 4 models, 2 held out, 2 rounds; the held-out mean |error| goes to
    ``extra_info`` and must stay below 40 % (the CPU bound: the same model family).
    """
    holder = {}

    def run():
        holder["r"] = validate_device(device="cuda", precision="fp16",
                                      calibration_models=("resnet18", "squeezenet1_1", "mobilenet_v3_large", "vgg11"),
                                      held_out_models=("resnet50", "mobilenet_v2"), resolution=224, rounds=2,
                                      min_queries=32, min_duration_s=0.3, max_duration_s=3.0)

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    s = holder["r"]["summary"]
    benchmark.extra_info.update({k: s[k] for k in ("held_out_mean_abs_error_pct", "held_out_max_abs_error_pct",
                                                   "eta_compute", "eta_bandwidth", "t_layer_ms", "gpu_name")})
    assert s["held_out_mean_abs_error_pct"] < 40
