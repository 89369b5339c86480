"""Nightly: a method's own training stages with and without the memo of frozen backbones (pytest-benchmark).

Started from a cached backbone, the methods' own stages run it frozen; the
training loop serves repeated frames from :class:`evbench.harness.frozen_memo.FrozenMemo`.
This measures, side by side in one run and with the same thread count, the
wall time of TLEE's three stages (5 epochs: every stage reads the frozen
ResNet) on a small SYNTHETIC generated dataset (6 classes × 8 videos, 16
frames, 8 TSN segments), with the memo and without it, as the ratio
memo / plain.  The whole default suite measured the same way on a 2-core
AMD EPYC (2026-12-03, torch 2.14, 2 threads): own stages 184 s with the memo
against 275 s without (ratio 0.50 for TLEE, 0.57 uniform LSTM, 0.67 LiteEval,
0.68 RSEE, 0.70 FrameExit, 0.77 AR-Net, 0.79 DynGrid).  The check fails when
the memo stops paying for its hashing (ratio ≥ 0.95): e.g. the training loop
no longer finds the frozen modules, or a change made the backbone's inputs
differ from epoch to epoch.
"""

from __future__ import annotations

import time

import pytest
import torch
from evbench.harness import frozen_memo
from evbench.harness.data import generate_dataset, open_dataset
from evbench.harness.registry import create_method
from evbench.harness.training import TrainSpec, train_method


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("memo") / "gen"
    generate_dataset(root, seed=0, num_classes=6, videos_per_class=8, num_frames=16, size=128)
    return open_dataset(f"generated:{root}", split="train", frames=8, size=112, train=True,
                        cache_dir=str(root.parent / "cache"))


def _own_stages_s(ds, memo: bool, monkeypatch) -> tuple[float, dict]:
    torch.manual_seed(0)
    method = create_method("tlee", config="lite", num_classes=6, frames=8)
    method.backbone_pretrained = tuple(s.name for s in method.backbone_slots())  # as loaded from the cache
    if not memo:
        monkeypatch.setattr(frozen_memo, "frozen_in", lambda modules, params: {})
    t0 = time.perf_counter()
    report = train_method(method, ds, TrainSpec(epochs=4, batch_size=8, seed=0))
    seconds = time.perf_counter() - t0
    monkeypatch.undo()
    return seconds, report.frozen_memo


def test_bench_frozen_memo_vs_plain(benchmark, train_split, monkeypatch):
    """Wall-time ratio memo / plain of TLEE's own stages (s each and the hit fraction in ``extra_info``)."""
    ds = train_split
    ds.frame_memo = {}  # decode once, outside both timings
    for i in range(len(ds)):
        ds[i]
    # the memo first: it pays oneDNN's first-call costs, so the ratio errs against it
    (memo, stats) = benchmark.pedantic(lambda: _own_stages_s(ds, True, monkeypatch), rounds=1)
    plain, _ = _own_stages_s(ds, False, monkeypatch)
    ratio = memo / plain
    benchmark.extra_info.update({"s_memo": memo, "s_plain": plain, "ratio_memo_vs_plain": ratio,
                                 "hit_fraction": stats["hit_fraction"], "threads": torch.get_num_threads()})
    assert stats["hits"] > 0
    assert ratio < 0.95
