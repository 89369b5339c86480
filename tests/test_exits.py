"""Shared early-exit pieces: frame orders, criteria, reuse, gates, branches, stages, active sets, honest FPS."""

from __future__ import annotations

import pytest
import torch
from evbench.methods.backbones import build_backbone
from evbench.methods.exits import (
    FRAMEEXIT_ORDER_10,
    ActiveSet,
    ExitingGate,
    GateModule,
    MixedPoolBranch,
    TraceRecorder,
    coarse_to_fine_order,
    confident,
    gate_exit,
    honest_fps,
    online_shift,
    resnet_stages,
    running_max,
    stage_shapes,
)
from torch import nn

pytestmark = pytest.mark.usefixtures("one_thread")



def test_official_frameexit_order_for_10_frames():
    assert coarse_to_fine_order(10) == [5, 0, 9, 2, 7, 4, 6, 3, 8, 1] == list(FRAMEEXIT_ORDER_10)


@pytest.mark.parametrize("total", list(range(1, 33)))
def test_coarse_to_fine_is_a_permutation_whose_prefixes_cover_the_clip(total):
    order = coarse_to_fine_order(total)
    assert sorted(order) == list(range(total))
    if total >= 3:
        first = order[:3]
        assert 0 in first and total - 1 in first  # both ends within the first three frames
        # largest gap between taken frames shrinks (weakly) as the prefix grows
        gaps = []
        for k in range(3, total + 1):
            taken = sorted(order[:k])
            gaps.append(max(b - a for a, b in zip(taken[:-1], taken[1:], strict=True)))
        assert all(g2 <= g1 for g1, g2 in zip(gaps[:-1], gaps[1:], strict=True))


def test_coarse_to_fine_rejects_empty():
    with pytest.raises(ValueError):
        coarse_to_fine_order(0)


def test_confidence_criteria_strict_and_not():
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.5, 0.5]]))
    assert confident(logits, 0.9, strict=False).tolist() == [True, False]
    assert confident(logits, 0.9, strict=True).tolist() == [False, False]
    assert not confident(logits, 1.01, strict=False).any()


def test_running_max_is_feature_reuse():
    a, b = torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])
    assert torch.equal(running_max(None, a), a)
    assert running_max(a, b).tolist() == [[3.0, 5.0]]


def test_gate_exit_semantics():
    logit = torch.tensor([[2.0], [-2.0], [0.0]])
    # TLEE: exit when sigmoid >= threshold
    assert gate_exit(logit, 0.5).tolist() == [True, False, True]
    # FrameExit released gates score continuing: exit when sigmoid(l) < 0.5
    assert gate_exit(logit, 0.5, invert=True, strict=True).tolist() == [False, True, False]
    assert (gate_exit(logit, 0.5, invert=True, strict=True) == (torch.sigmoid(logit) < 0.5).reshape(-1)).all()
    assert not gate_exit(logit, 1.01).any() and not gate_exit(logit, 1.01, invert=True).any()


def test_gates_shapes():
    cur, prev = torch.randn(3, 64), torch.randn(3, 64)
    assert GateModule(64)(cur, prev).shape == (3, 1)
    g = ExitingGate(64).eval()
    assert g(cur, prev).shape == (3, 1)
    assert GateModule(4096).fc1.out_features == 32 and GateModule(4096).fc2.in_features == 64


def test_branch_shapes_match_official_resnet50_layout():
    b2 = MixedPoolBranch(512, 28, 2048)  # layer2 at 224 px
    b3 = MixedPoolBranch(1024, 14, 2048)  # layer3 at 224 px
    assert [m.out_channels for m in b2.crm if isinstance(m, nn.Conv2d)] == [64, 32, 16]
    assert [m.out_channels for m in b3.crm if isinstance(m, nn.Conv2d)] == [128, 64, 32]
    assert b2.fc1.in_features == 7 * 7 * 16 and b3.fc1.in_features == 3 * 3 * 32
    assert b2(torch.randn(2, 512, 28, 28)).shape == (2, 2048)
    assert b2.alpha.shape == (1,)


def test_resnet_stages_compose_to_the_backbone():
    torch.manual_seed(0)
    net = build_backbone("resnet10").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = net(x)
        stages = resnet_stages(net, ("layer2", "layer3"), pool_last=True).eval()
        h = x
        for s in stages:
            h = s(h)
    assert torch.allclose(full, h, atol=1e-5)
    assert stages[0][0] is net.conv1 and stages[0][5] is net.layer2 and stages[1][0] is net.layer3
    assert stage_shapes(stages, (3, 64, 64)) == [(3, 64, 64), (128, 8, 8), (256, 4, 4), (512,)]


def test_active_set_and_trace_recorder():
    act = ActiveSet(4)
    state = torch.arange(4.0)
    exited, keep = act.retire(torch.tensor([False, True, False, True]))
    assert exited == [1, 3] and act.tolist() == [0, 2]
    assert state.index_select(0, keep).tolist() == [0.0, 2.0]
    assert act.retire(torch.tensor([False, False])) == ([], None)
    rec = TraceRecorder(2)
    rec.add([0, 1], 3, "m", (5,), "head")
    rec.mark_exit([1], "gate")
    assert rec.steps[0][-1].exit is None and rec.steps[1][-1].exit == "gate"
    assert rec.steps[1][-1].key == ("m", (5,))


def test_online_shift_only_uses_the_previous_frame():
    x = torch.ones(1, 16, 2, 2)
    out = online_shift(x, None)
    assert out[:, :2].abs().sum() == 0 and torch.equal(out[:, 2:], x[:, 2:]) and x.sum() == 64
    cache = torch.full((1, 16, 2, 2), 7.0)
    out = online_shift(x, cache)
    assert (out[:, :2] == 7).all() and (out[:, 2:] == 1).all()


def test_honest_fps_separates_processed_from_covered():
    r = honest_fps(0.5, frames_processed=2, frames_total=10)
    assert r["fps_processed"] == pytest.approx(4.0) and r["fps_covered"] == pytest.approx(20.0)
    assert r["inflation"] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        honest_fps(0.0, 1, 10)
