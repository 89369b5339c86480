"""Latency breakdown (harness/breakdown.py), the time budget (harness/budget.py) and the streaming uniform baseline.

Timing assertions here are relative (parts vs the hooked mean, overhead vs a
real method), so they hold on a loaded CPU; no absolute latency is asserted.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
import torch
from evbench.harness.api import CostEntry
from evbench.harness.breakdown import (
    OTHER,
    SUM_TOLERANCE,
    costed_modules,
    harness_overhead_ms,
    measure_breakdown,
)
from evbench.harness.budget import Budget
from evbench.harness.costs import cost_table, trace_gmacs
from evbench.harness.registry import create_method, list_methods, method_configs
from evbench.harness.settings import MeasureSettings, SettingsError
from torch import nn

pytestmark = pytest.mark.usefixtures("one_thread")

LITE = [n for n in list_methods() if "lite" in method_configs(n)]


def _clip(method: nn.Module, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = tuple(method.example_input(1).shape)
    return torch.randn(shape, generator=g)


# --------------------------------------------------------------------------- breakdown


@pytest.mark.parametrize("name", LITE)
def test_breakdown_parts_sum_to_hooked_mean(name: str) -> None:
    method = create_method(name, config="lite", num_classes=5).eval()
    xs = [_clip(method, 0), _clip(method, 1)]
    with torch.inference_mode():
        method(xs[0])  # warm
    bd = measure_breakdown(method, xs, queries=3)
    parts = bd["latency_breakdown_ms"]
    roles = {role for _, _, role in costed_modules(method)}
    assert set(parts) == roles | {OTHER}
    assert all(v >= 0 for v in parts.values())
    assert sum(v for k, v in parts.items() if k != OTHER) > 0  # some costed module ran (AR-Net may skip all)
    total = sum(parts.values())
    assert abs(total - bd["latency_breakdown_mean_ms"]) <= SUM_TOLERANCE * bd["latency_breakdown_mean_ms"]
    assert bd["sum_rel_error"] <= SUM_TOLERANCE
    assert bd["latency_breakdown_queries"] == 3


class _Sleepy(nn.Module):
    def __init__(self, seconds: float, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.inner(x) if self.inner is not None else x


class _Nested(nn.Module):
    """A toy method: a 'backbone' whose costed 'head' runs inside it, then 10 ms of Python outside both."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _Sleepy(0.02, inner=_Sleepy(0.02))
        self.policy = _Sleepy(0.01)

    def cost_entries(self) -> list[CostEntry]:
        return [CostEntry("backbone", (3,), role="backbone"), CostEntry("backbone.inner", (3,), role="head"),
                CostEntry("policy", (3,), role="policy"), CostEntry("declared_cnn", (3,), role="input",
                                                                     declared_gmacs=1.0, source="test")]

    def forward(self, x: torch.Tensor, *, knobs: dict | None = None) -> torch.Tensor:
        y = self.policy(x)
        time.sleep(0.01)  # control flow outside every costed module
        return self.backbone(y)


def test_nested_costed_modules_are_not_double_counted() -> None:
    method = _Nested()
    names = [n for n, _, _ in costed_modules(method)]
    assert names == ["backbone", "backbone.inner", "policy"]  # the declared entry is not a submodule
    bd = measure_breakdown(method, [torch.zeros(1, 3)], queries=3)
    parts = bd["latency_breakdown_ms"]
    assert parts["head"] == 0.0  # only the outermost costed module is counted
    assert parts["backbone"] >= 39.0  # 40 ms: outer + inner sleep
    assert parts["policy"] >= 9.5
    assert parts[OTHER] >= 9.5
    total = sum(parts.values())
    assert abs(total - bd["latency_breakdown_mean_ms"]) <= SUM_TOLERANCE * bd["latency_breakdown_mean_ms"]


def test_hooks_are_removed_after_the_breakdown() -> None:
    method = _Nested()
    measure_breakdown(method, [torch.zeros(1, 3)], queries=1)
    for _, mod, _ in costed_modules(method):
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_harness_overhead_positive_and_small_vs_a_real_method() -> None:
    method = create_method("uniform", config="lite", num_classes=5).eval()
    xs = [_clip(method)]
    overhead = harness_overhead_ms(xs, queries=64)
    bd = measure_breakdown(method, xs, queries=2)
    assert overhead > 0
    assert overhead < 0.01 * bd["latency_breakdown_mean_ms"]


def test_breakdown_sees_onnxruntime_modules() -> None:
    pytest.importorskip("onnxruntime")
    from evbench.harness.onnx_backend import OrtModule, to_onnxruntime

    method = create_method("uniform", config="lite", num_classes=5).eval()
    ort = to_onnxruntime(method)
    mods = costed_modules(ort)
    assert mods and all(isinstance(m, OrtModule) for _, m, _ in mods)
    bd = measure_breakdown(ort, [_clip(method)], queries=2)
    parts = bd["latency_breakdown_ms"]
    assert parts["backbone"] > 0
    assert abs(sum(parts.values()) - bd["latency_breakdown_mean_ms"]) <= SUM_TOLERANCE * bd["latency_breakdown_mean_ms"]


def test_measure_cell_stores_breakdown_and_overhead() -> None:
    from evbench.harness.data import RandomClips
    from evbench.harness.measure import measure_cell
    from evbench.harness.row import CellResult, column_meta

    method = create_method("uniform", config="lite", num_classes=5).eval()
    ds = RandomClips(tuple(method.example_input(1).shape[1:]), 2, num_classes=5)
    st = MeasureSettings(min_queries=4, min_duration_s=0.0, warmup_runs=1, latency_clips=2, max_clips=2,
                         offline=False, breakdown_queries=3, count_executed=False, max_seconds=None)
    res = measure_cell(method, ds, st)
    parts = res.latency_breakdown_ms
    assert set(parts) == {"backbone", "head", OTHER}
    assert abs(sum(parts.values()) - res.latency_breakdown_mean_ms) <= SUM_TOLERANCE * res.latency_breakdown_mean_ms
    assert res.latency_breakdown_queries == 3
    assert 0 < res.harness_overhead_ms < 0.01 * res.latency_ms_p50
    assert res.latency_budget_limited is False
    assert "ms" in column_meta("harness_overhead_ms")["unit"]
    back = CellResult.from_row(res.to_row())
    assert back.latency_breakdown_ms == parts
    off = measure_cell(method, ds, st.replace(breakdown=False))
    assert off.latency_breakdown_ms is None and off.harness_overhead_ms is None


# --------------------------------------------------------------------------- budget


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_budget_plans_with_a_fake_clock() -> None:
    clock = _Clock()
    b = Budget(100.0, clock=clock)
    clock.t = 50.0  # 50 s left
    assert b.warmup_runs(3, callables=10, query_s=1.0) == 1  # 3 x 10 x 1 s > 20 % of 50 s
    assert b.warmup_runs(3, callables=2, query_s=1.0) == 3
    min_d, max_d, capped = b.latency_window(1.0, 120.0, reserve_s=10.0)
    assert capped and math.isclose(max_d, 0.6 * 40.0) and min_d == 1.0
    assert b.latency_window(1.0, 5.0) == (1.0, 5.0, False)
    kept, skipped = b.offline_batches([16, 1, 4], query_s=1.0, min_duration_s=1.0)
    assert kept == [1, 4] and skipped == [16]  # 1: 3 s, 4: 12 s (15 of 50), 16: 48 s does not fit
    assert b.notes["offline_skipped"] == [16]
    assert b.breakdown_queries(32, query_s=1.0) == 20
    assert b.breakdown_queries(32, query_s=10.0) == 3  # 3 fit in the 50 s left (reserved by the latency window)
    assert b.breakdown_queries(32, query_s=60.0) == 0
    assert b.warmup_clips(4, fixed_paths=2, query_s=1.0) == 4  # 6 s <= 20 % of 50 s
    assert b.warmup_clips(4, fixed_paths=8, query_s=1.0) == 1 and b.notes["warmup_clips"] == 1
    unlimited = Budget(None)
    assert unlimited.remaining() == math.inf
    assert unlimited.offline_batches([4, 1], 100.0, 1.0) == ([1, 4], [])
    assert unlimited.latency_window(1.0, 120.0) == (1.0, 120.0, False)


def test_tiny_budget_row_says_it_was_limited() -> None:
    from evbench.harness.data import RandomClips
    from evbench.harness.measure import measure_cell

    method = create_method("uniform", config="lite", num_classes=5).eval()
    ds = RandomClips(tuple(method.example_input(1).shape[1:]), 2, num_classes=5)
    st = MeasureSettings(max_seconds=0.01, latency_clips=2, max_clips=2, count_executed=False)
    res = measure_cell(method, ds, st)
    assert res.latency_budget_limited is True
    assert 1 <= res.latency_queries < st.min_queries
    assert res.latency_stopped_by == "max_duration"
    assert res.fps_offline_skipped_batches == list(st.offline_batches)
    assert res.fps_offline is None
    assert res.budget_notes["offline_skipped"] == list(st.offline_batches)
    assert res.measure_settings["max_seconds"] == 0.01


def test_max_seconds_setting_validated() -> None:
    assert MeasureSettings().max_seconds == 150.0
    assert MeasureSettings(max_seconds=None).max_seconds is None
    with pytest.raises(SettingsError, match="max_seconds"):
        MeasureSettings.from_mapping({"max_seconds": -1})
    with pytest.raises(SettingsError, match="--max-seconds"):
        MeasureSettings.from_mapping({"max_seconds": "x"}, key_names={"max_seconds": "--max-seconds"})


def test_profile_cli_max_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from evbench.harness.cli import main

    rc = main(["profile", "--method", "uniform", "--config", "lite", "--clips", "1", "--max-seconds", "0.01",
               "--no-crosscheck", "--quiet", "--json"])
    assert rc == 0
    row = json.loads(capsys.readouterr().out)
    assert row["latency_budget_limited"] is True
    assert row["latency_queries"] < 64
    assert row["fps_offline_skipped_batches"]


# --------------------------------------------------------------------------- streaming baseline


@pytest.mark.parametrize("config", ["lite", "features"])
def test_streaming_uniform_same_logits_and_gmacs(config: str) -> None:
    batched = create_method("uniform", config=config, num_classes=5).eval()
    stream = create_method("uniform_stream", config=config, num_classes=5).eval()
    stream.load_state_dict(batched.state_dict())
    assert stream.streaming and not batched.streaming
    x = torch.cat([_clip(batched, 0), _clip(batched, 1)])
    for knobs in ({}, {"frames": 2}):
        with torch.inference_mode():
            a, b = batched(x, knobs=knobs), stream(x, knobs=knobs)
        torch.testing.assert_close(b.logits, a.logits, rtol=1e-4, atol=1e-5)
        ta, tb = cost_table(batched), cost_table(stream)
        assert [trace_gmacs(t, tb) for t in b.trace] == pytest.approx([trace_gmacs(t, ta) for t in a.trace])
        assert b.decisions == a.decisions
    assert "streaming" in stream.card.title and "streaming" not in batched.card.title


def test_streaming_calls_the_backbone_once_per_frame() -> None:
    stream = create_method("uniform_stream", config="lite", num_classes=5).eval()
    batched = create_method("uniform", config="lite", num_classes=5).eval()
    x = _clip(stream)
    for method, calls_expected, rows in ((stream, stream.card.frames, 1), (batched, 1, batched.card.frames)):
        seen: list[int] = []
        h = method.encoder.backbone.register_forward_pre_hook(lambda _m, a, s=seen: s.append(a[0].shape[0]))
        with torch.inference_mode():
            method(x)
        h.remove()
        assert len(seen) == calls_expected and set(seen) == {rows}


def test_streaming_lstm_consensus_matches_batched() -> None:
    import copy

    a = create_method("uniform_lstm", config="lite", num_classes=5).eval()
    b = copy.deepcopy(a)
    b.streaming = True  # the streaming option of methods/uniform.Uniform on the LSTM consensus
    x = torch.cat([_clip(a, 0), _clip(a, 1)])
    with torch.inference_mode():
        torch.testing.assert_close(b(x).logits, a(x).logits, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- report


def test_report_draws_breakdown_bars(tmp_path) -> None:
    from evbench.reports.html import write_report
    from evbench.reports.plots import plot_breakdown

    df = pd.DataFrame([
        {"method": "a", "status": "ok", "dataset": "d", "latency_ms_p50": 10.0, "top1": 0.5,
         "gmacs_per_video": 1.0, "latency_breakdown_ms": {"backbone": 7.0, "policy": 1.0, "other": 2.5}},
        {"method": "b", "status": "ok", "dataset": "d", "latency_ms_p50": 5.0, "top1": 0.4, "gmacs_per_video": 2.0,
         "latency_breakdown_ms": '{"backbone": 4.0, "head": 0.2, "other": 0.5}'},
        {"method": "c", "status": "failed", "dataset": "d", "latency_breakdown_ms": {"backbone": 1.0}},
    ])
    paths = plot_breakdown(df, out_stem=tmp_path / "bd", title="t")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
    assert plot_breakdown(df.drop(columns=["latency_breakdown_ms"]), out_stem=tmp_path / "none", title="t") == []
    index = write_report(df, tmp_path / "report")
    html = index.read_text()
    assert "Latency breakdown per cell" in html
    assert (tmp_path / "report" / "ds0_latency_breakdown.png").is_file() or "latency_breakdown.png" in html


def test_profile_max_seconds_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from evbench.harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["profile", "--method", "uniform", "--config", "lite", "--max-seconds", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-seconds" in err[0]
