"""Nightly: evaluating cells of one backbone with and without the evaluation memo (pytest-benchmark).

A run's cells of one trained backbone evaluate the same test clips; the
runner's :class:`evbench.harness.eval_memo.EvalMemoStore` serves a later
cell the frozen-backbone outputs an earlier one computed (on disk between
cells).  This measures, side by side in one run and with the same thread
count, the evaluation of the default suite's first six cells — uniform with
8, 1, 2 and 4 of 8 TSN frames, uniform_stream and uniform_lstm, all on one
ResNet-10 — over the test split of the default SYNTHETIC generated dataset
(156 clips, every batch uncounted), with the store and without it, as the
ratio memo / plain.  One untimed pass runs first, so neither side pays
oneDNN's first-call costs.  Measured on a 2-core AMD EPYC (2026-12-03,
torch 2.14, 2 threads): 0.44–0.54.  The whole default suite, checkpoints
reused: 294 s with the memo against 327 s without (same top-1 and GMACs in
all 29 cells; the memo pass ran first, cold, so the saving is if anything
understated).  Not every method gains as much: TLEE's slots are its four
ResNet stages, whose feature-map inputs cost about as much to hash and
store as to compute (0.9–1.14 on a 12-clip split, warm).  The check fails
when the store stops paying for its hashing and files (ratio ≥ 0.9).
"""

from __future__ import annotations

import time

import pytest
import torch
from evbench.harness.data import generate_dataset, open_dataset
from evbench.harness.eval_memo import EvalMemoStore
from evbench.harness.measure import evaluate
from evbench.harness.registry import create_method

#: The default suite's cells on the uniform lite backbone: (method, knobs).
CELLS = (("uniform", {}), ("uniform", {"frames": 1}), ("uniform", {"frames": 2}), ("uniform", {"frames": 4}),
         ("uniform_stream", {}), ("uniform_lstm", {}))


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("evmemo") / "gen"
    generate_dataset(root, seed=0)  # the default run's dataset: 156 test clips
    ds = open_dataset(f"generated:{root}", split="test", frames=8, size=112, train=False,
                      cache_dir=str(root.parent / "cache"))
    for i in range(len(ds)):
        ds[i]  # decoded into the frame cache outside both timings
    return ds


def _cells_s(ds, store: EvalMemoStore | None) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    hits = []
    for name, knobs in CELLS:
        torch.manual_seed(0)
        method = create_method(name, config="lite", num_classes=6, frames=8).eval()  # each cell builds anew
        if store is None:
            evaluate(method, ds, knobs=knobs, batch_size=16, count_executed=False)
            continue
        with store.serving(method) as memo:
            evaluate(method, ds, knobs=knobs, batch_size=16, count_executed=False)
        hits.append(memo.stats.to_dict()["hit_fraction"])
    return time.perf_counter() - t0, hits


def test_bench_eval_memo_vs_plain(benchmark, test_split, tmp_path):
    """Wall-time ratio memo / plain of the six cells' evaluations (s each and hit fractions in ``extra_info``)."""
    _cells_s(test_split, None)  # untimed: oneDNN's primitives created for both sides
    plain, _ = _cells_s(test_split, None)
    store = EvalMemoStore(tmp_path / "store")
    memo, hits = benchmark.pedantic(lambda: _cells_s(test_split, store), rounds=1)
    store.close()
    ratio = memo / plain
    benchmark.extra_info.update({"s_memo": memo, "s_plain": plain, "ratio_memo_vs_plain": ratio,
                                 "hit_fraction_per_cell": hits, "threads": torch.get_num_threads()})
    assert hits[0] == 0.0 and min(hits[1:]) > 0.5
    assert ratio < 0.9
