"""FrameExit: gated temporal exit, released-gate semantics, realised costs, converter, training."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.costs import cost_table
from evbench.harness.registry import create_method
from evbench.methods.checkpoints import CheckpointError
from evbench.methods.frameexit import convert_official_frameexit, load_official_frameexit
from method_helpers import run

pytestmark = pytest.mark.usefixtures("one_thread")


def small_fe(**over):
    torch.manual_seed(0)
    kw = {"resolution": 48, "frames": 6, "mlp_dim": 32}
    kw.update(over)
    return create_method("frameexit", config="lite", num_classes=5, **kw)


def clip(b=3, t=6, r=48, seed=1):
    return torch.randn(b, t, 3, r, r, generator=torch.Generator().manual_seed(seed))




@pytest.fixture(scope="module")
def method():
    m = small_fe()
    with torch.no_grad():
        for g in m.exit_selector:
            g.linear.weight.mul_(30)
    return m


def test_per_step_classifiers_and_gates(method):
    assert len(method.classifiers) == 6 and len(method.exit_selector) == 5
    keys = {k for k, _ in cost_table(method)}
    assert {"backbone", "mlp", "classifiers.5", "exit_selector.4"} <= keys


def test_exit_semantics(method):
    x = clip()
    full, per, _ = run(method, x, {"threshold": 1.01, "first_threshold": 1.01})
    for d, t in zip(full.decisions, full.trace, strict=True):
        assert d["frames"] == method.order and d["exit_step"] == 5 and t[-1].exit == "last_frame"
        # classifiers of frames that did not exit never ran
        assert [s.module for s in t if s.module.startswith("classifiers")] == ["classifiers.0", "classifiers.5"]
    first, _, _ = run(method, x, {"first_threshold": 0.0})
    assert all(d["frames"] == [method.order[0]] and t[-1].exit == "confidence"
               for d, t in zip(first.decisions, first.trace, strict=True))
    gate, _, _ = run(method, x, {"threshold": 0.0, "first_threshold": 1.01})
    assert all(d["exit_step"] == 1 and t[-1].exit == "gate" for d, t in zip(gate.decisions, gate.trace, strict=True))


def test_released_gates_score_continuing(method):
    """Official ``gate_selection``: exit iff the thresholded sigmoid is 0, i.e. sigmoid(logit) < 0.5."""
    x = clip(b=6, seed=2)
    out, _, _ = run(method, x, {"threshold": 0.5, "first_threshold": 1.01})
    with torch.inference_mode():
        zacc = None
        for i in range(6):
            expected = None
            for p, f in enumerate(method.order):
                e = method.mlp(method.backbone(x[i:i + 1, f]))
                z = e if zacc is None else torch.maximum(e, zacc)
                if 0 < p < 5 and torch.sigmoid(method.exit_selector[p - 1](z, zacc)).item() < 0.5:
                    expected = p
                    break
                zacc = z
            zacc = None
            assert out.decisions[i]["exit_step"] == (5 if expected is None else expected)


def test_threshold_sweep_is_monotone(method):
    x = clip(b=6, seed=5)
    means = []
    for thr in (0.0, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.01):
        _, per, _ = run(method, x, {"threshold": thr})
        means.append(sum(per) / len(per))
    assert all(b >= a - 1e-9 for a, b in zip(means[:-1], means[1:], strict=True))
    assert means[-1] > means[0]


def test_converter_loads_released_keys_and_lists_mismatches():
    src = small_fe()
    with torch.no_grad():
        for p in src.parameters():
            p.uniform_(-1, 1)
    released = {"module." + k: v.clone() for k, v in src.state_dict().items()}  # nn.DataParallel names
    for name in ("module.backbone.0.weight", "module.backbone.1.running_mean", "module.backbone.7.0.conv2.weight",
                 "module.mlp.layers.0.weight", "module.mlp.layers.1.running_var", "module.classifiers.5.bias",
                 "module.exit_selector.4.conv1.weight", "module.exit_selector.0.bn2.running_mean",
                 "module.exit_selector.3.linear.weight"):
        assert name in released, name
    assert set(convert_official_frameexit(released)) == set(src.state_dict())
    dst = small_fe()
    load_official_frameexit(dst, released)
    assert all(torch.equal(dst.state_dict()[k], v) for k, v in src.state_dict().items())
    short = {k: v for k, v in released.items() if ".exit_selector.4." not in k}
    with pytest.raises(CheckpointError) as err:
        load_official_frameexit(small_fe(), short)
    assert "exit_selector.4.conv1.weight" in str(err.value)


def test_training_stages():
    m = small_fe().train()
    x, y = clip(b=2), torch.tensor([0, 1])
    loss, _ = m.training_loss(x, y, stage="classifiers", epoch=0)
    loss.backward()
    assert m.backbone[0].weight.grad is not None and m.classifiers[5].weight.grad is not None
    m.zero_grad(set_to_none=True)
    loss, logs = m.training_loss(x, y, stage="gates", epoch=0)
    loss.backward()
    assert m.exit_selector[0].conv1.weight.grad is not None and m.backbone[0].weight.grad is None
    assert torch.isfinite(loss) and 0 <= logs["exit_label_rate"] <= 1


def test_features_variant():
    torch.manual_seed(0)
    m = create_method("frameexit", config="features", num_classes=5, feature_dim=32, frames=5, gmacs_per_frame=1.5,
                      mlp_dim=16, input_kind="features")
    x = torch.rand(2, 5, 32)
    out, per, executed = run(m, x, {"threshold": 1.01, "first_threshold": 1.01}, count=True)
    assert all(d["frames_processed"] == 5 for d in out.decisions)
    assert per[0] == pytest.approx(5 * 1.5 + executed / 2, rel=0.01)
    assert out.trace[0][0].role == "input"
