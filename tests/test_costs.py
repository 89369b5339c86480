"""GMAC conventions: paper numbers, trace sums vs executed MACs, LSTM formulas, ptflops cross-check."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.api import TraceStep
from evbench.harness.costs import (
    CostTableError,
    count_gmacs_fvcore,
    executed_gmacs,
    lstm_macs,
    ptflops_gmacs,
    trace_gmacs,
)
from evbench.harness.registry import create_method
from torch import nn


@pytest.fixture(scope="module")
def r50_uniform():
    return create_method("uniform", config="paper", num_classes=200)


def test_resnet50_matches_arnet_table1(r50_uniform):
    """AR-Net Table 1: uniform ResNet-50 @224 = 4.11 GMACs/frame, 65.76 GMACs per 16-frame video (±1 %)."""
    table = r50_uniform.cost_table()
    per_frame = table[("encoder.backbone", (3, 224, 224))] + table[("head", (2048,))]
    assert per_frame == pytest.approx(4.11, rel=0.01)
    x = torch.randn(1, 16, 3, 224, 224)
    with torch.inference_mode():
        out = r50_uniform(x)
    video = trace_gmacs(out.trace[0], table)
    assert video == pytest.approx(65.76, rel=0.01)
    assert len({s.frame for s in out.trace[0]}) == 16


def test_executed_count_agrees_with_trace_sum_and_does_not_double_count():
    m = create_method("uniform_lstm", config="lite", num_classes=6)
    x = torch.randn(3, 4, 3, 112, 112)
    holder = []
    with torch.inference_mode():
        executed = executed_gmacs(lambda: holder.append(m(x)))
    table = m.cost_table()
    traced = sum(trace_gmacs(t, table) for t in holder[0].trace)
    assert executed == pytest.approx(traced, rel=0.01)


def test_frames_knob_scales_cost_linearly():
    m = create_method("uniform", config="lite", num_classes=6)
    x = torch.randn(1, 4, 3, 112, 112)
    table = m.cost_table()
    with torch.inference_mode():
        full = trace_gmacs(m(x).trace[0], table)
        one = trace_gmacs(m(x, knobs={"frames": 1}).trace[0], table)
    assert full == pytest.approx(4 * one, rel=1e-9)


def test_lstm_formula_matches_both_counters():
    cell = nn.LSTMCell(1280, 512)
    inputs = (torch.zeros(1, 1280), (torch.zeros(1, 512), torch.zeros(1, 512)))
    assert count_gmacs_fvcore(cell, inputs) * 1e9 == pytest.approx(lstm_macs(1280, 512))
    lstm = nn.LSTM(64, 32, batch_first=True)
    x = torch.zeros(1, 5, 64)
    # FlopCounterMode alone sees 0 for the fused CPU kernel; the added formula must count it.
    assert executed_gmacs(lambda: lstm(x)) * 1e9 == pytest.approx(lstm_macs(64, 32, steps=5))
    assert count_gmacs_fvcore(lstm, (x,)) * 1e9 == pytest.approx(lstm_macs(64, 32, steps=5))


@pytest.mark.parametrize("make", [
    lambda: nn.LSTMCell(48, 24), lambda: nn.LSTM(48, 24, num_layers=2, bidirectional=True),
    lambda: nn.LSTM(48, 24, proj_size=8), lambda: nn.GRU(48, 24), lambda: nn.GRUCell(48, 24),
], ids=["lstm_cell", "lstm_2layer_bidir", "lstm_proj", "gru", "gru_cell"])
def test_one_recurrent_formula_behind_every_counter(make):
    """fvcore, FlopCounterMode + fused-kernel formulas and the modeled device count one formula."""
    from evbench.harness.costs import module_rnn_macs
    from evbench.harness.devices.modeled import layer_profile

    torch.manual_seed(0)
    module = make().eval()
    cell = isinstance(module, nn.RNNCellBase)
    x = torch.randn(3, 48) if cell else torch.randn(5, 3, 48)  # batch 3 (cell) / 5 steps x batch 3
    rows = 3 if cell else 15
    expected = module_rnn_macs(module, rows)
    gates = 4 if "LSTM" in type(module).__name__ else 3
    if not cell and gates == 4 and module.proj_size == 0 and module.num_layers == 1:
        assert expected == lstm_macs(48, 24, steps=5, batch=3)
    if cell or module.proj_size == 0:  # torch's non-fused fallback for projected LSTMs escapes FlopCounterMode
        with torch.no_grad():
            assert executed_gmacs(lambda: module(x)) * 1e9 == pytest.approx(expected)
    assert sum(layer.macs for layer in layer_profile(module, (x,))) == expected
    if gates == 4 and not cell:
        assert count_gmacs_fvcore(module, (x,)) * 1e9 == pytest.approx(expected)


def test_ptflops_agrees_on_static_backbones_within_one_percent():
    m = create_method("uniform", config="lite", num_classes=6, backbone="resnet18")
    fv = m.cost_table()[("encoder.backbone", (3, 112, 112))]
    for backend in ("pytorch", "aten"):
        assert ptflops_gmacs(m.encoder.backbone, (3, 112, 112), backend=backend) == pytest.approx(fv, rel=0.01)


def test_undeclared_trace_step_is_an_error():
    with pytest.raises(CostTableError, match="ghost"):
        trace_gmacs([TraceStep(0, "ghost", (3,))], {})


def test_feature_input_cost_is_declared_per_frame():
    m = create_method("uniform", config="features", num_classes=15, frames=4)
    table = m.cost_table()
    assert table[("frame_features", (4096,))] == pytest.approx(5 * 15.47)
    with torch.inference_mode():
        out = m(torch.randn(2, 25, 4096))
    assert trace_gmacs(out.trace[0], table) == pytest.approx(4 * (5 * 15.47 + table[("head", (4096,))]))
    assert [s.frame for s in out.trace[0] if s.role == "input"] == [3, 9, 15, 21]
