"""The evaluation memo: stored outputs of one cell serve the next cell of the same weights, on disk between."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evbench.harness.eval_memo import EvalMemoStore
from evbench.harness.frozen_memo import FrozenMemo, slot_modules, weights_digest
from evbench.harness.measure import evaluate, measure_cell
from evbench.harness.registry import create_method
from evbench.harness.settings import MeasureSettings
from evbench.methods.backbones import build_backbone


def _method(name: str = "tlee", seed: int = 0):
    torch.manual_seed(seed)
    return create_method(name, config="lite", num_classes=2, frames=4).eval()


def _test_split(root, cache, size: int = 112):
    from evbench.harness.data import open_dataset

    return open_dataset(f"generated:{root}", split="test", frames=4, size=size, train=False, cache_dir=str(cache))


@pytest.fixture()
def test_ds(tiny_generated, tmp_path):
    return _test_split(tiny_generated, tmp_path / "frames")


def test_weights_digest_follows_parameters_buffers_and_layer_settings():
    torch.manual_seed(0)
    a = build_backbone("resnet10")
    b = build_backbone("resnet10")
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        w = next(b.parameters())
        w[(0,) * w.dim()] += 1e-6
    assert weights_digest(a) != weights_digest(b)
    b.load_state_dict(a.state_dict())
    next(m for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean[0] += 1.0
    assert weights_digest(a) != weights_digest(b)
    c, d = torch.nn.Conv2d(3, 4, 3, stride=1), torch.nn.Conv2d(3, 4, 3, stride=2)
    d.load_state_dict(c.state_dict())
    assert weights_digest(c) != weights_digest(d)  # same weights, another function


@pytest.mark.parametrize("name", ["tlee", "arnet", "uniform"])
def test_a_second_operating_point_is_served_and_gives_the_same_results(name, tiny_generated, tmp_path, one_thread):
    """The later cell of the same weights reads the outputs the first one stored; its logits are what it computes
    without the memo (float rounding of other batch compositions only), its decisions and GMACs the same."""
    store = EvalMemoStore(tmp_path / "memo")
    knobs = {"tlee": ({}, {"threshold": 0.2}), "arnet": ({}, {"cheap_bias": 6.0}),
             "uniform": ({}, {"frames": 2})}[name]
    method = _method(name)
    test_ds = _test_split(tiny_generated, tmp_path / "frames", method.card.resolution)
    with store.serving(method) as first:
        evaluate(method, test_ds, knobs=knobs[0], batch_size=4, count_executed=False)
    assert first is not None and first.stats.misses > 0 and first.stats.hits == 0
    assert first.stored_bytes == 0  # freed on exit
    assert list((tmp_path / "memo").glob("*.pt"))
    again = _method(name)  # a fresh build of the same weights: the next cell
    with store.serving(again) as second:
        served = evaluate(again, test_ds, knobs=knobs[1], batch_size=3, count_executed=False)
    plain = evaluate(_method(name), test_ds, knobs=knobs[1], batch_size=3, count_executed=False)
    assert second.stats.hits > 0 and second.stats.hits >= second.stats.misses
    assert np.abs(served.logits - plain.logits).max() <= 1e-4
    assert served.samples["gmacs"].tolist() == plain.samples["gmacs"].tolist()
    assert served.samples["pred"].tolist() == plain.samples["pred"].tolist()
    store.close()
    assert not list((tmp_path / "memo").glob("*.pt"))


def test_other_weights_are_not_served(test_ds, tmp_path, one_thread):
    store = EvalMemoStore(tmp_path / "memo")
    m = _method(seed=0)
    with store.serving(m):
        evaluate(m, test_ds, batch_size=4, count_executed=False)
    other = _method(seed=1)
    with store.serving(other) as memo:
        evaluate(other, test_ds, batch_size=4, count_executed=False)
    assert memo.stats.hits == 0 and memo.stats.misses > 0


def test_counted_batches_compute_and_a_damaged_file_is_a_miss(test_ds, tmp_path, one_thread):
    store = EvalMemoStore(tmp_path / "memo")
    m = _method()
    with store.serving(m):
        evaluate(m, test_ds, batch_size=4, count_executed=False)
    with store.serving(m) as memo:
        ev = evaluate(m, test_ds, batch_size=4, count_executed=True)  # every batch counted
    assert memo.stats.hits == 0 and memo.stats.passthrough > 0 and ev.executed_gmacs_total > 0
    for f in (tmp_path / "memo").glob("*.pt"):
        f.write_bytes(b"not a torch file")
    with store.serving(m) as memo:
        evaluate(m, test_ds, batch_size=4, count_executed=False)
    assert memo.stats.hits == 0 and memo.stats.misses > 0


def test_a_method_without_backbone_slots_runs_as_usual(tmp_path):
    m = create_method("uniform", config="features", num_classes=3, feature_dim=8)
    assert slot_modules(m) == {}
    with EvalMemoStore(tmp_path).serving(m) as memo:
        assert memo is None


def test_preload_keeps_the_layout_and_the_cap(one_thread):
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last).eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        with FrozenMemo({"conv": conv}) as memo:
            conv(x)
            dump = memo.export()
        assert dump["conv"].channels_last and dump["conv"].added == 3
        with FrozenMemo({"conv": conv}) as memo:
            memo.preload(dump)
            served = conv(x)
            assert memo.export()["conv"].added == 0  # nothing new to write back
        assert memo.stats.hits == 3 and served.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(served, conv(x))
        with FrozenMemo({"conv": conv}, max_mib=0) as memo:
            memo.preload(dump)
            conv(x)
        assert memo.stats.hits == 0


def test_measure_cell_rows_say_what_the_memo_served_and_timing_does_not_hold_it(test_ds, tmp_path, monkeypatch,
                                                                               one_thread):
    settings = MeasureSettings(min_queries=2, min_duration_s=0.0, max_duration_s=2.0, warmup_runs=0,
                               latency_clips=1, offline=False, breakdown=False, energy=False, count_clips=1,
                               eval_batch_size=1)  # one batch of the split counted, the others served
    assert len(test_ds) >= 2
    from evbench.harness import measure

    timed, wrapped = measure._timed, []

    def unwrapped_timing(method, *args, **kwargs):  # the memo is off every module while the queries run
        wrapped.extend(n for n, m in slot_modules(method).items() if "forward" in m.__dict__)
        return timed(method, *args, **kwargs)

    monkeypatch.setattr(measure, "_timed", unwrapped_timing)
    store = EvalMemoStore(tmp_path / "memo")
    a = measure_cell(_method(), test_ds, settings, knobs={}, trained=True, eval_memo=store)
    b = measure_cell(_method(), test_ds, settings, knobs={"threshold": 0.2}, trained=True, eval_memo=store)
    plain = measure_cell(_method(), test_ds, settings, knobs={"threshold": 0.2}, trained=True)
    assert a.eval_memo["hits"] == 0 and b.eval_memo["hits"] > 0 and plain.eval_memo is None
    assert (b.top1, b.gmacs_per_video, b.executed_gmacs_per_video) == (
        plain.top1, plain.gmacs_per_video, plain.executed_gmacs_per_video)
    assert b.to_row()["eval_memo"]["hit_fraction"] > 0
    assert b.latency_queries and not wrapped
