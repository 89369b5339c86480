"""TLEE: layer and temporal exits, feature reuse, realised costs, gate knob, converter, honest FPS, training."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.costs import cost_table, trace_gmacs_by_role
from evbench.harness.measure import frames_used
from evbench.harness.registry import create_method
from evbench.methods.checkpoints import CheckpointError
from evbench.methods.exits import honest_fps
from evbench.methods.tlee import convert_official_tlee, load_official_tlee
from method_helpers import run

pytestmark = pytest.mark.usefixtures("one_thread")


NO_EXIT = {"threshold": 1.01, "layer_threshold": 1.01, "first_threshold": 1.01}


def small_tlee(**over):
    torch.manual_seed(0)
    kw = {"resolution": 64, "frames": 6, "mlp_dim": 64}
    kw.update(over)
    return create_method("tlee", config="lite", num_classes=5, **kw)


def clip(b=3, t=6, r=64, seed=1):
    return torch.randn(b, t, 3, r, r, generator=torch.Generator().manual_seed(seed))




@pytest.fixture(scope="module")
def method():
    m = small_tlee()
    with torch.no_grad():
        m.classifier.weight.mul_(20)
        m.gate.fc2.weight.mul_(20)
    return m


def test_stage_costs_are_separate(method):
    table = cost_table(method)
    assert [k for k in table if k[0].startswith("stages.")] == [
        ("stages.0", (3, 64, 64)), ("stages.1", (128, 8, 8)), ("stages.2", (256, 4, 4))]
    cum = method.cumulative_exit_gmacs()
    assert cum["layer2"] < cum["layer3"] < cum["layer4"]
    assert cum["layer4"] == pytest.approx(sum(table[k] for k in table if k[0].startswith("stages.")))
    assert cum["layer2_with_heads"] > cum["layer2"]


def test_no_exit_runs_every_layer_but_the_last_frame_stops_at_its_first_exit(method):
    out, per, _ = run(method, clip(), NO_EXIT)
    order = method.order
    for d, t in zip(out.decisions, out.trace, strict=True):
        assert d["frames"] == order and d["frames_processed"] == 6 and d["frames_covered"] == 6
        assert d["frame_exit_layers"] == ["layer4"] * 5 + ["layer2"]  # official: exited = True at t = T-1
        assert t[-1].exit == "last_frame" and sum(s.exit is not None for s in t) == 1
    cum = method.cumulative_exit_gmacs()
    backbone = trace_gmacs_by_role(out.trace[0], cost_table(method))["backbone"]
    assert backbone == pytest.approx(5 * cum["layer4"] + cum["layer2"], rel=1e-9)
    assert per[0] > backbone  # branches, MLP, classifier and gates are charged too


def test_layer_exit_stops_the_frame_not_the_video(method):
    out, _, _ = run(method, clip(), {"threshold": 1.01, "first_threshold": 1.01, "layer_threshold": 0.0})
    for d, t in zip(out.decisions, out.trace, strict=True):
        assert d["frame_exit_layers"] == ["layer2"] * 6
        assert not any(s.module in ("stages.1", "stages.2") for s in t)  # nothing deeper ran
        assert d["frames_processed"] == 6


def test_first_frame_confidence_exit(method):
    out, per, _ = run(method, clip(), {"threshold": 1.01, "first_threshold": 0.0, "layer_threshold": 1.01})
    for d, t in zip(out.decisions, out.trace, strict=True):
        assert d["frames"] == [method.order[0]] and d["exit_layer"] == "layer2"
        assert t[-1].exit == "confidence" and frames_used(t) == 1
        assert d["frames_processed"] == 1 and d["frames_covered"] == 6


def test_gate_threshold_sweep_is_monotone(method):
    x = clip(b=6, seed=4)
    means = []
    for thr in (0.0, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.01):
        _, per, _ = run(method, x, {"threshold": thr, "layer_threshold": 0.9})
        means.append(sum(per) / len(per))
    assert all(b >= a - 1e-9 for a, b in zip(means[:-1], means[1:], strict=True))
    assert means[-1] > means[0]
    assert method.card.knobs[0].name == "threshold" and len(method.card.knobs[0].sweep) >= 4


def test_honest_fps_fields(method):
    out, _, _ = run(method, clip(), {"threshold": 1.01, "first_threshold": 0.0})
    d = out.decisions[0]
    fps = honest_fps(0.1, d["frames_processed"], d["frames_covered"])
    assert fps["fps_processed"] == pytest.approx(10.0) and fps["fps_covered"] == pytest.approx(60.0)
    assert "time_test.py" in method.card.notes


def _official_state(method):
    """An official ``TLEEModel`` state_dict: names from fangvv/TLEE, shapes from the model."""
    inv = {"stages.1.0.": "backbone.baseModel.6.", "stages.2.0.": "backbone.baseModel.7.",
           "branches.": "backbone.branches.", "classifier.": "classifiers.0.", "gate.": "exit_selector.0."}
    out = {}
    for key, value in method.state_dict().items():
        new = key
        if key.startswith("stages.0."):
            new = "backbone.baseModel." + key[len("stages.0."):]
        for a, b in inv.items():
            if key.startswith(a):
                new = b + key[len(a):]
        out[new] = value.clone()
    return out


def test_converter_loads_official_names_and_lists_mismatches():
    src = small_tlee()
    with torch.no_grad():
        for p in src.parameters():
            p.uniform_(-1, 1)
    state = _official_state(src)
    for name in ("backbone.baseModel.0.weight", "backbone.baseModel.1.running_mean", "backbone.baseModel.4.0.conv1.weight",
                 "backbone.baseModel.5.0.downsample.0.weight", "backbone.baseModel.6.0.bn2.bias",
                 "backbone.baseModel.7.0.conv2.weight", "backbone.branches.0.alpha", "backbone.branches.1.crm.conv0.weight",
                 "backbone.branches.0.fc1.weight", "mlp.layers.0.weight", "mlp.layers.1.running_var",
                 "classifiers.0.weight", "exit_selector.0.fc1.weight", "exit_selector.0.fc2.bias"):
        assert name in state, name
    assert set(convert_official_tlee({"module." + k: v for k, v in state.items()})) == set(src.state_dict())
    dst = small_tlee()
    load_official_tlee(dst, state)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    stage1 = {k: v for k, v in state.items() if not k.startswith("exit_selector")}  # a stage-1 checkpoint
    with pytest.raises(CheckpointError) as err:
        load_official_tlee(small_tlee(), stage1)
    assert "gate.fc1.weight" in str(err.value)
    wrong = dict(state)
    wrong["backbone.branches.0.fc1.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_official_tlee(small_tlee(), wrong)


def test_training_stages_train_what_the_official_code_trains():
    m = small_tlee().train()
    x, y = clip(b=2), torch.tensor([0, 1])
    assert m.card.stages == ("backbone", "branches", "gate")
    for stage, trained, frozen in (("backbone", m.stages[0][0].weight, m.branches[0].fc1.weight),
                                   ("branches", m.branches[0].fc1.weight, m.stages[0][0].weight),
                                   ("gate", m.gate.fc1.weight, m.classifier.weight)):
        m.zero_grad(set_to_none=True)
        loss, logs = m.training_loss(x, y, stage=stage, epoch=0)
        loss.backward()
        assert torch.isfinite(loss)
        assert trained.grad is not None
        ids = {id(p) for p in m.stage_parameters(stage)}
        assert id(trained) in ids and id(frozen) not in ids
    assert 0.0 <= logs["exit_label_rate"] <= 1.0
    assert sum(m.stage_epochs(s, 8) for s in m.card.stages) == 8


def test_features_variant():
    torch.manual_seed(0)
    m = create_method("tlee", config="features", num_classes=5, feature_dim=32, frames=7, gmacs_per_frame=3.0,
                      mlp_dim=16, input_kind="features")
    x = torch.rand(3, 7, 32)
    out, per, executed = run(m, x, NO_EXIT, count=True)
    assert all(d["frames_processed"] == 7 for d in out.decisions)
    assert per[0] == pytest.approx(7 * 3.0 + executed / 3, rel=0.01)
    assert out.trace[0][0].role == "input"
    loss, _ = m.training_loss(x, torch.tensor([0, 1, 2]), stage="gate", epoch=0)
    assert torch.isfinite(loss) and m.card.stages == ("backbone", "gate")


@pytest.mark.slow
def test_paper_cumulative_exits_match_fvcore():
    m = create_method("tlee", config="paper", num_classes=101)
    cum = m.cumulative_exit_gmacs()
    # backbone only: the official table's single_frame_mac [1.83, 3.29, 4.1]
    assert [cum["layer2"], cum["layer3"], cum["layer4"]] == pytest.approx([1.83, 3.30, 4.11], abs=0.01)
    # with the branches, MLP, classifier and gate the official table leaves out
    assert [cum["layer2_with_heads"], cum["layer3_with_heads"], cum["layer4_with_heads"]] == pytest.approx(
        [1.84, 3.32, 4.14], abs=0.01)
