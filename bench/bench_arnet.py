"""Nightly benchmark: AR-Net's realised inference against the official behaviour, same decisions, one run.

The official ``TSN_Ada`` (``mengyuest/AR-Net``, ``ops/models_ada.py``) runs the
policy CNN and LSTM on every frame and *every* backbone on every frame, then
masks the frame logits with the decisions (``combine_logits``).  evbench's
:class:`evbench.methods.arnet.ARNet` runs the policy only on frames that are not being
skipped and each backbone once, on the frames that chose it.  Both are timed
here, alternating query by query in one process on the same clip, with the
decisions of the realised run replayed in the official flow; the logits must
agree, and the speed-up is recorded in ``extra_info`` next to the executed
GMAC ratio (``FlopCounterMode``).

Configuration: ``lite`` by default (well under 2 minutes on a 2-core CPU);
``EVBENCH_BENCH_ARNET_CONFIG=paper`` compares the paper configuration
(ResNet-50/34/18 + MobileNetV2, 16 frames; minutes on a CPU).
``EVBENCH_BENCH_ARNET_BATCH`` sets the clips per query (default 1);
``EVBENCH_BENCH_THREADS`` the intra-op threads (default 1; 0 keeps torch's
default) — on a shared, oversubscribed CPU two OpenMP threads can make small
kernels hundreds of times slower, one thread gives steady ratios.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter

import pytest
import torch
from evbench.harness.costs import executed_gmacs
from evbench.harness.registry import create_method
from evbench.methods.arnet import ARNet, run_chunked
from torch import nn

CONFIG = os.environ.get("EVBENCH_BENCH_ARNET_CONFIG", "lite")
BATCH = int(os.environ.get("EVBENCH_BENCH_ARNET_BATCH", "1"))
ROUNDS = 3 if CONFIG == "paper" else 15
THREADS = int(os.environ.get("EVBENCH_BENCH_THREADS", "1"))


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    if THREADS:
        torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


#: Decision mix replayed by the policy (action indices in the official order: branches, policy head,
#: skip 1/2/4), cycled per policy step — every action occurs, as in a trained policy's histogram.
MIX = [0, 2, 1, 3, 4, 2, 5, 1, 3, 6]


class MixedPolicyLinear(nn.Module):
    """Wraps ``policy.linear``: its logits plus a large bias on the next action of :data:`MIX`.

    Untrained weights would pick nearly the same action everywhere; this keeps
    the real layer's work and makes the decision mix known and varied.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear
        self.k = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.linear(h)
        acts = [MIX[(self.k + i) % len(MIX)] for i in range(h.shape[0])]
        self.k += h.shape[0]
        return logits + 100.0 * nn.functional.one_hot(torch.tensor(acts), logits.shape[1]).to(logits.dtype)


@pytest.fixture(scope="module")
def arnet() -> ARNet:
    torch.manual_seed(0)
    m = create_method("arnet", config=CONFIG, num_classes=200 if CONFIG == "paper" else 6).eval()
    m.policy.linear = MixedPolicyLinear(m.policy.linear)
    return m


def official_forward(m: ARNet, x: torch.Tensor, resolutions: list[list]) -> torch.Tensor:
    """The official inference flow with given decisions: everything on every frame, logits masked.

    Args:
        m: The AR-Net whose modules are reused.
        x: ``(B, T, 3, R, R)`` clip batch.
        resolutions: Per sample, per frame the resolution chosen or ``"skip"``
            (``Output.decisions[i]["resolutions"]`` of the realised run).

    Returns:
        ``(B, C)`` logits.  The LSTM state is held on skipped frames as in
        evbench (the official code keeps updating the cell state there), so the
        logits are comparable; the work done is the official one.
    """
    b, t_total = x.shape[:2]
    flat = x.flatten(0, 1)
    feats = run_chunked(m.policy.encoder, flat).view(b, t_total, -1)
    h = x.new_zeros(b, m.hidden)
    c = x.new_zeros(b, m.hidden)
    skipped = torch.tensor([[r == "skip" for r in row] for row in resolutions], device=x.device)
    hs = []
    for t in range(t_total):
        hn, cn = m.policy.rnn(feats[:, t], (h, c))
        m.policy.linear(hn)  # the official model computes the action logits on every frame
        keep = skipped[:, t:t + 1]
        h, c = torch.where(keep, h, hn), torch.where(keep, c, cn)
        hs.append(h)
    hs_t = torch.stack(hs, 1)
    # same CPU call-size cap as the realised run, so the ratio measures the realisation, not the batching
    per = [m.heads[k](run_chunked(m.branches[k], flat)).view(b, t_total, -1) for k in range(m.n_branches)]
    if m.has_policy_head:
        per.append(m.lite_fc(hs_t))
    res_of = list(m.resolutions) + ([m.policy_resolution] if m.has_policy_head else [])
    r = torch.zeros(b, t_total, m.num_actions, device=x.device)
    for i, row in enumerate(resolutions):
        for t, res in enumerate(row):
            if res != "skip":
                r[i, t, res_of.index(res)] = 1.0
    return m._combine(r, torch.stack(per, 2), m.lite_fc(h))


def test_bench_arnet_realised_vs_official(benchmark, arnet: ARNet) -> None:
    """Realised vs official (all backbones, masked) inference with the same decisions; records the speed-up."""
    x = torch.randn(BATCH, arnet.card.frames, 3, arnet.card.resolution, arnet.card.resolution,
                    generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        arnet.policy.linear.k = 0
        out = arnet(x)
        decisions = [d["resolutions"] for d in out.decisions]
        official_logits = official_forward(arnet, x, decisions)
    torch.testing.assert_close(official_logits, out.logits, rtol=1e-3, atol=1e-4)

    def realised():
        arnet.policy.linear.k = 0  # replay the same decisions every query
        with torch.inference_mode():
            return arnet(x)

    def official() -> None:
        with torch.inference_mode():
            official_forward(arnet, x, decisions)

    holder: list = []
    g_real = executed_gmacs(lambda: holder.append(realised()))
    g_off = executed_gmacs(lambda: holder.append(official()))
    realised(), official()  # warm-up
    t_real, t_off = [], []
    for _ in range(ROUNDS):  # alternate, so load drift hits both alike
        t0 = time.perf_counter_ns()
        realised()
        t1 = time.perf_counter_ns()
        official()
        t2 = time.perf_counter_ns()
        t_real.append((t1 - t0) / 1e6)
        t_off.append((t2 - t1) / 1e6)
    p50_real, p50_off = statistics.median(t_real), statistics.median(t_off)
    hist = Counter(str(r) for row in decisions for r in row)
    benchmark.extra_info.update({
        "config": CONFIG, "batch": BATCH, "frames": arnet.card.frames, "threads": torch.get_num_threads(),
        "p50_ms_realised": p50_real, "p50_ms_official": p50_off, "speedup_official_over_realised": p50_off / p50_real,
        "gmacs_realised": g_real, "gmacs_official": g_off, "gmac_ratio_official_over_realised": g_off / g_real,
        "decision_histogram": dict(hist),
    })
    print(f"\nAR-Net {CONFIG} batch {BATCH}: realised p50 {p50_real:.1f} ms, official p50 {p50_off:.1f} ms, "
          f"speed-up {p50_off / p50_real:.2f}x (GMACs {g_off:.2f} / {g_real:.2f} = {g_off / g_real:.2f}x); "
          f"decisions {dict(hist)}")
    benchmark.pedantic(realised, rounds=ROUNDS, warmup_rounds=1)
    assert [d["resolutions"] for d in realised().decisions] == decisions
    assert g_off > g_real and p50_off > p50_real
