"""RSEE: per-resolution BN, resolution choice, exit semantics, realised costs, knobs, converter, training."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.costs import cost_table
from evbench.harness.registry import create_method
from evbench.methods.checkpoints import CheckpointError
from evbench.methods.resnet_multibn import MultiBNResNet
from evbench.methods.rsee import convert_official_rsee, load_official_rsee
from method_helpers import run

RES = (48, 32, 24)


pytestmark = pytest.mark.usefixtures("one_thread")



def small_rsee(**over):
    torch.manual_seed(0)
    kw = {"resolutions": RES, "frames": 4, "hidden": 32, "agg_hidden": 32}
    kw.update(over)
    return create_method("rsee", config="lite", num_classes=5, **kw)


def clip(b=3, t=4, r=48, seed=1):
    return torch.randn(b, t, 3, r, r, generator=torch.Generator().manual_seed(seed))




@pytest.fixture(scope="module")
def method():
    m = small_rsee()
    with torch.no_grad():
        m.new_fc.weight.normal_(0, 1.0)  # spread the confidences of the random model
    return m


def test_per_resolution_batchnorm_shares_convolutions():
    torch.manual_seed(0)
    net = MultiBNResNet("resnet10", (64, 32), fc_dim=0)
    assert hasattr(net.bn1, "bn0") and hasattr(net.bn1, "bn1")
    assert net.conv1.weight.shape == (64, 3, 7, 7)  # one shared convolution
    keys = set(net.state_dict())
    assert "layer1.0.bn1.bn1.running_mean" in keys and "layer2.0.downsample.1.bn0.weight" in keys
    net.train()
    before0 = net.bn1.bn0.running_mean.clone()
    before1 = net.bn1.bn1.running_mean.clone()
    net(torch.randn(2, 3, 32, 32))  # side 32 -> bank 1
    assert torch.equal(net.bn1.bn0.running_mean, before0)
    assert not torch.equal(net.bn1.bn1.running_mean, before1)
    net.eval()
    with torch.no_grad():
        net.bn1.bn1.running_mean.fill_(3.0)
        x = torch.randn(1, 3, 32, 32)
        assert not torch.allclose(net(x), net(x, bank=0))
    with pytest.raises(ValueError, match="not one of the resolutions"):
        net(torch.randn(1, 3, 40, 40))


def test_only_the_chosen_resolution_runs(method):
    x = clip()
    for r in RES:
        out, per, executed = run(method, x, {"force": r, "threshold": 1.01}, count=r == RES[1])
        assert all(d["resolutions"] == [r] * 4 for d in out.decisions)
        backbone_steps = [s for s in out.trace[0] if s.module == "backbone"]
        assert len(backbone_steps) == 4 and {s.input_shape for s in backbone_steps} == {(3, r, r)}
        if executed is not None:
            assert executed == pytest.approx(sum(per), rel=0.01)


def test_policy_bias_moves_the_choice(method):
    x = clip()
    low, _, _ = run(method, x, {"policy_bias": 1000.0, "threshold": 1.01})
    high, _, _ = run(method, x, {"policy_bias": -1000.0, "threshold": 1.01})
    assert all(set(d["resolutions"]) == {min(RES)} for d in low.decisions)
    assert all(set(d["resolutions"]) == {max(RES)} for d in high.decisions)


def test_exit_semantics(method):
    x = clip()
    first, _, _ = run(method, x, {"threshold": 0.0})
    assert all(d["exit_frame"] == 0 and d["frames"] == [0] for d in first.decisions)
    assert all(t[-1].exit == "confidence" for t in first.trace)
    full, _, _ = run(method, x, {"threshold": 1.01})
    assert all(d["frames"] == [0, 1, 2, 3] for d in full.decisions)
    assert all(t[-1].exit == "last_frame" and sum(s.exit is not None for s in t) == 1 for t in full.trace)
    # an exited sample runs nothing more: its trace stops at its exit frame
    assert all(max(s.frame for s in t) == 0 for t in first.trace)


def test_threshold_sweep_is_monotone(method):
    x = clip(b=6, seed=3)
    means = []
    for thr in (0.0, 0.3, 0.5, 0.7, 0.9, 0.99, 1.01):
        _, per, _ = run(method, x, {"threshold": thr})
        means.append(sum(per) / len(per))
    assert all(b >= a - 1e-9 for a, b in zip(means[:-1], means[1:], strict=True))
    assert means[-1] > means[0]
    card = method.card
    assert len(card.knobs[0].sweep) >= 4 and card.upper_bound_knobs["threshold"] > 1


def test_cost_entries_cover_trace_roles(method):
    table = cost_table(method)
    out, _, _ = run(method, clip(b=1), {"threshold": 1.01})
    roles = {s.role for s in out.trace[0]}
    assert roles == {"policy", "backbone", "head"}
    assert all(s.key in table for s in out.trace[0])
    assert [table[("backbone", (3, r, r))] for r in RES] == sorted((table[("backbone", (3, r, r))] for r in RES), reverse=True)


def _official_state(method):
    """An official-layout state_dict (names from fangvv/RSEE, shapes from the model)."""
    out = {}
    for key, value in method.state_dict().items():
        if key.startswith("backbone."):
            rest = key[len("backbone."):]
            parts = rest.split(".")
            # ModuleParallel wraps every conv and the fc: conv1.weight -> conv1.module.weight
            if parts[-2].startswith("conv") or parts[-2] == "fc" or (len(parts) >= 3 and parts[-3] == "downsample" and parts[-2] == "0"):
                rest = ".".join(parts[:-1] + ["module", parts[-1]])
            out[f"module.base_model_list.0.{rest}"] = value.clone()
        elif key.startswith("new_fc."):
            out["module.new_fc_list.0.module." + key[len("new_fc."):]] = value.clone()
        elif key.startswith("policy.encoder.backbone."):
            out["module.lite_backbone." + key[len("policy.encoder.backbone."):]] = value.clone()
        elif key.startswith("policy."):
            out["module." + key[len("policy."):]] = value.clone()
        elif key.startswith("aggregator."):
            sub = {"rnn": "blstm", "fc1": "fc1", "fc2": "fc2"}[key.split(".")[1]]
            out["module.blstm." + sub + "." + ".".join(key.split(".")[2:])] = value.clone()
        else:
            out["module." + key] = value.clone()
    return out


def test_converter_loads_official_names_and_lists_mismatches():
    src = small_rsee()
    with torch.no_grad():
        for p in src.parameters():
            p.uniform_(-1, 1)
    state = _official_state(src)
    for name in ("module.base_model_list.0.conv1.module.weight", "module.base_model_list.0.bn1.bn0.weight",
                 "module.base_model_list.0.bn1.bn2.running_var", "module.base_model_list.0.layer1.0.conv2.module.weight",
                 "module.base_model_list.0.layer2.0.downsample.0.module.weight",
                 "module.base_model_list.0.layer2.0.downsample.1.bn1.bias", "module.base_model_list.0.fc.module.weight",
                 "module.new_fc_list.0.module.weight", "module.lite_backbone.features.0.0.weight",
                 "module.rnn.weight_ih", "module.linear.bias", "module.lite_fc.weight", "module.blstm.blstm.weight_hh",
                 "module.blstm.fc1.weight", "module.blstm.fc2.bias"):
        assert name in state, name
    assert set(convert_official_rsee(state)) == set(src.state_dict())
    dst = small_rsee()
    load_official_rsee(dst, state)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    bad = dict(state)
    del bad["module.blstm.fc1.weight"]
    bad["module.exit_head.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_official_rsee(small_rsee(), bad)
    assert "aggregator.fc1.weight" in str(err.value) and "exit_head.weight" in str(err.value)


def test_training_stages():
    m = small_rsee().train()
    x, y = clip(b=2), torch.tensor([0, 1])
    assert m.card.stages == ("backbone", "policy")
    loss, logs = m.training_loss(x, y, stage="backbone", epoch=0)
    loss.backward()
    assert torch.isfinite(loss) and {f"ce_{r}" for r in RES} <= set(logs)
    assert m.backbone.conv1.weight.grad is not None
    m.zero_grad(set_to_none=True)
    loss, logs = m.training_loss(x, y, stage="policy", epoch=2)
    loss.backward()
    assert logs["tau"] == pytest.approx(5.0 * torch.exp(torch.tensor(-0.09)).item(), rel=1e-5)
    assert m.policy.linear.weight.grad is not None and m.aggregator.rnn.weight_ih.grad is not None
    assert m.backbone.conv1.weight.grad is None  # frozen backbone
    params = {id(p) for p in m.stage_parameters("policy")}
    assert id(m.backbone.conv1.weight) not in params and id(m.policy.rnn.weight_ih) in params
    with pytest.raises(ValueError):
        m.training_loss(x, y, stage="nope", epoch=0)


def test_features_variant():
    torch.manual_seed(0)
    m = create_method("rsee", config="features", num_classes=5, feature_dim=32, frames=6, gmacs_per_frame=2.0,
                      agg_hidden=16, input_kind="features")
    assert m.card.input_kind == "features" and m.card.force_options == ()
    x = torch.rand(2, 6, 32)
    out, per, executed = run(m, x, {"threshold": 1.01}, count=True)
    assert [s.role for s in out.trace[0]][0] == "input"
    assert per[0] == pytest.approx(6 * 2.0 + (executed / 2), rel=0.01)
    first, _, _ = run(m, x, {"threshold": 0.0})
    assert all(d["frames"] == [0] for d in first.decisions)
    loss, _ = m.training_loss(x, torch.tensor([0, 1]), stage="aggregator", epoch=0)
    assert torch.isfinite(loss)


@pytest.mark.slow
def test_paper_cost_table_matches_fvcore_resnet50():
    m = create_method("rsee", config="paper", num_classes=101)
    table = cost_table(m)
    got = [table[("backbone", (3, r, r))] for r in (224, 168, 112, 84)]
    # ResNet-50 (fvcore) + the official 2048 -> 2048 fc (0.0042 GMACs)
    assert got == pytest.approx([4.1137, 2.5182, 1.0857, 0.6899], abs=2e-3)
