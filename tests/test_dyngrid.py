"""Dynamic-inference grid: routes, checkpoints, online shift, realised costs, threshold knob, training."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.api import KnobError
from evbench.harness.registry import create_method
from evbench.methods.dyngrid import ROUTES, grid_route
from evbench.methods.exits import online_shift
from method_helpers import run

pytestmark = pytest.mark.usefixtures("one_thread")


def small_grid(**over):
    torch.manual_seed(0)
    kw = {"resolution": 48, "frames": 5}
    kw.update(over)
    return create_method("dyngrid", config="lite", num_classes=5, **kw)


def clip(b=3, t=5, r=48, seed=1):
    return torch.randn(b, t, 3, r, r, generator=torch.Generator().manual_seed(seed))




@pytest.fixture(scope="module")
def method():
    m = small_grid()
    with torch.no_grad():
        for h in m.heads:
            h.fc.weight.mul_(8)
    return m


@pytest.mark.parametrize("route", ROUTES)
def test_routes_visit_every_cell_after_its_dependencies(route):
    cells = grid_route(route, 6, 3)
    assert sorted(cells) == [(i, d) for i in range(6) for d in range(3)]
    seen = set()
    for i, d in cells:
        if d > 0:
            assert (i, d - 1) in seen and (i == 0 or (i - 1, d - 1) in seen)
        assert all((j, d) in seen for j in range(i))  # frames at a depth in order (TSN average over a prefix)
        seen.add((i, d))
    assert cells[-1] == (5, 2)


def test_unknown_route():
    with pytest.raises(KnobError):
        grid_route("spiral", 3, 3)


def test_full_grid_is_route_independent_and_matches_training(method):
    x = clip()
    outs = [run(method, x, {"threshold": 1.01, "route": r}) for r in ROUTES]
    for out, per, _ in outs:
        assert torch.allclose(out.logits, outs[0][0].logits, atol=1e-4)
        assert per == pytest.approx(outs[0][1])
        assert all(d["cells"] == 15 and t[-1].exit == "last_frame" for d, t in zip(out.decisions, out.trace, strict=True))
    # the inference walk reproduces the training forward's last checkpoint (same online shift)
    sums = None
    with torch.inference_mode():
        prev = [None] * method.depth
        for f in method.order:
            h = x[:, f]
            for d in range(method.depth):
                if d > 0:
                    cur, h = h, online_shift(h, prev[d])
                    prev[d] = cur
                h = method.stages[d](h)
            head = method.heads[-1](h)
            sums = head if sums is None else sums + head
    assert torch.allclose(outs[0][0].logits, sums / 5, atol=1e-4)


def test_online_shift_only_reads_frames_already_processed(method):
    x = clip(b=1)
    out, _, _ = run(method, x, {"threshold": 1.01, "route": "depth_first"})
    # stop after the first two frames: later frames must not influence that checkpoint
    knobs = {"threshold": 0.0, "route": "frame_first"}
    early, _, _ = run(method, x, knobs)
    y = x.clone()
    y[:, method.order[-1]] += 5.0  # perturb the last frame in the order
    early2, _, _ = run(method, y, knobs)
    assert early.decisions[0]["cells"] == 1 and torch.equal(early.logits, early2.logits)
    out2, _, _ = run(method, y, {"threshold": 1.01, "route": "depth_first"})
    assert not torch.allclose(out.logits, out2.logits)


@pytest.mark.parametrize("route", ROUTES)
def test_threshold_sweep_is_monotone(method, route):
    x = clip(b=5, seed=6)
    means = []
    for thr in (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01):
        _, per, _ = run(method, x, {"threshold": thr, "route": route})
        means.append(sum(per) / len(per))
    assert all(b >= a - 1e-9 for a, b in zip(means[:-1], means[1:], strict=True))
    assert means[-1] > means[0]


def test_training_and_features_variant():
    m = small_grid().train()
    loss, logs = m.training_loss(clip(b=2), torch.tensor([0, 1]), stage="joint", epoch=0)
    loss.backward()
    assert torch.isfinite(loss) and m.heads[0].fc.weight.grad is not None
    torch.manual_seed(0)
    f = create_method("dyngrid", config="features", num_classes=4, feature_dim=24, frames=4, gmacs_per_frame=2.0,
                      hidden=16, depth=2, input_kind="features")
    x = torch.rand(2, 4, 24)
    out, per, executed = run(f, x, {"threshold": 1.01, "route": "frame_first"}, count=True)
    assert per[0] == pytest.approx(4 * 2.0 + executed / 2, rel=0.01)
    assert [s.module for s in out.trace[0][:3]] == ["frame_features", "stages.0", "heads.0"]
    loss, _ = f.training_loss(x, torch.tensor([0, 1]), stage="joint", epoch=0)
    assert torch.isfinite(loss)
