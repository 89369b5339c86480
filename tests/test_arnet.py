"""AR-Net: decision semantics, realised cost, knobs, training stages, converter, feature variant."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torchvision
from evbench.harness.api import KnobError
from evbench.harness.claims import claims_by_id
from evbench.harness.costs import cost_table, executed_gmacs, trace_gmacs
from evbench.harness.registry import create_method, list_methods, method_configs
from evbench.methods.arnet import ARNet, flat_to_torchvision_mobilenet_v2, load_official_arnet
from evbench.methods.checkpoints import CheckpointError
from evbench.methods.policy import gumbel_tau
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

T = 8
TINY = {"resolutions": [32, 24, 16], "policy_resolution": 12, "frames": T}


class ScriptedLinear(nn.Module):
    """Stands in for ``policy.linear``: call ``k`` returns logits choosing ``script[k]`` (one action per active row)."""

    def __init__(self, script: list[list[int]], num_actions: int) -> None:
        super().__init__()
        self.script = script
        self.num_actions = num_actions
        self.calls = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        acts = self.script[self.calls]
        self.calls += 1
        assert len(acts) == h.shape[0], f"call {self.calls - 1}: {h.shape[0]} active rows, script {acts}"
        return 10.0 * nn.functional.one_hot(torch.tensor(acts), self.num_actions).float()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny() -> ARNet:
    torch.manual_seed(0)
    m = create_method("arnet", config="lite", num_classes=3, **TINY)
    nn.init.normal_(m.policy.linear.weight, 0.0, 0.5)  # a decisive, varied random policy
    for head in [m.lite_fc, *m.heads]:
        nn.init.normal_(head.weight, 0.0, 0.1)
    return m


@pytest.fixture(scope="module")
def table(tiny: ARNet) -> dict:
    return cost_table(tiny)


def _clip(b: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, T, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _scripted(m: ARNet, script: list[list[int]]):
    orig = m.policy.linear
    m.policy.linear = ScriptedLinear(script, m.num_actions)
    return orig


# ----------------------------------------------------------------------------- registry and card


def test_registered_with_configs_and_card(tiny: ARNet) -> None:
    assert "arnet" in list_methods()
    cfgs = method_configs("arnet")
    assert {"paper", "lite", "features"} <= set(cfgs)
    assert cfgs["paper"]["resolutions"] == [224, 168, 112] and cfgs["paper"]["policy_resolution"] == 84
    card = tiny.card
    assert card.doi == "10.1007/978-3-030-58571-6_6" and "mengyuest/AR-Net" in card.code
    assert card.force_options == (32, 24, 16, 12)
    assert card.stages == ("warmup", "joint", "finetune")
    assert card.upper_bound_knobs == {"force": 32}
    sweeps = {k.name: k.sweep for k in card.knobs}
    assert len(sweeps["cheap_bias"]) + 1 >= 4  # ≥ 4 operating points with the default
    assert tiny.action_names() == ["r32", "r24", "r16", "r12", "skip1", "skip2", "skip4"]
    with pytest.raises(KnobError):
        tiny(_clip(), knobs={"nope": 1})
    with pytest.raises(KnobError):
        tiny(_clip(), knobs={"force": 999})


# ----------------------------------------------------------------------------- decision semantics


def test_skip_semantics_and_state_carry_over(tiny: ARNet) -> None:
    """Skip s on frame t: frames t..t+s-1 unpredicted, t+1..t+s-1 without a policy step; state carried."""
    x = _clip()
    skip2, skip4, head = tiny.n_pred + 1, tiny.n_pred + 2, tiny.n_branches
    script = [[0], [skip2], [skip4], [head]]  # policy runs on frames 0, 1, 3, 7 only
    orig = _scripted(tiny, script)
    try:
        with torch.inference_mode():
            out = tiny(x)
        assert tiny.policy.linear.calls == 4
    finally:
        tiny.policy.linear = orig
    dec = out.decisions[0]
    assert dec["resolutions"] == [32, "skip", "skip", "skip", "skip", "skip", "skip", 12]
    assert dec["actions"] == ["r32", "skip2", "skip4", "r12"]
    assert dec["frames"] == [0, 7]
    tr = out.trace[0]
    assert sorted({s.frame for s in tr if s.role == "policy"}) == [0, 1, 3, 7]
    assert [(s.frame, s.module) for s in tr if s.role in ("backbone", "head")] == [
        (0, "branches.0.backbone"), (0, "heads.0"), (7, "lite_fc")]
    assert tr[-1].exit == "last_frame" and all(s.exit is None for s in tr[:-1])
    # recompute by hand: the LSTM only steps on frames 0, 1, 3, 7
    with torch.inference_mode():
        h = c = torch.zeros(1, tiny.hidden)
        for t in (0, 1, 3, 7):
            h, c = tiny.policy.rnn(tiny.policy.encode(x[:, t]), (h, c))
        expected = (tiny.heads[0](tiny.branches[0](x[:, 0])) + tiny.lite_fc(h)) / 2
    torch.testing.assert_close(out.logits, expected)


def test_all_skipped_falls_back_to_policy_head(tiny: ARNet) -> None:
    x = _clip()
    skip4 = tiny.n_pred + 2
    orig = _scripted(tiny, [[skip4], [skip4]])  # frames 0 and 4 decide, nothing is predicted
    try:
        with torch.inference_mode():
            out = tiny(x)
    finally:
        tiny.policy.linear = orig
    assert out.decisions[0]["resolutions"] == ["skip"] * T and out.decisions[0]["frames"] == []
    last = out.trace[0][-1]
    assert (last.frame, last.module, last.exit) == (-1, "lite_fc", "all_skipped")
    assert not [s for s in out.trace[0] if s.role == "backbone"]
    with torch.inference_mode():
        h = c = torch.zeros(1, tiny.hidden)
        for t in (0, 4):
            h, c = tiny.policy.rnn(tiny.policy.encode(x[:, t]), (h, c))
        torch.testing.assert_close(out.logits, tiny.lite_fc(h))
    # the training combination uses the same fallback
    r = torch.zeros(1, T, tiny.num_actions)
    r[:, :, skip4] = 1
    fb = torch.randn(1, 3)
    torch.testing.assert_close(tiny._combine(r, torch.randn(1, T, tiny.n_pred, 3), fb), fb)


def test_batch_groups_frames_per_branch_and_matches_single_runs(tiny: ARNet) -> None:
    x = _clip(2, seed=1)
    s2, s4, head = tiny.n_pred + 1, tiny.n_pred + 2, tiny.n_branches
    a_script = {0: 0, 1: s2, 3: s4, 7: head}  # sample A decides on frames 0, 1, 3, 7
    batch_script = [[a_script[t], 1] if t in a_script else [1] for t in range(T)]  # sample B: always branch 1
    calls: dict[int, list[int]] = {0: [], 1: [], 2: []}
    hooks = [br.register_forward_hook(lambda _m, inp, _o, i=i: calls[i].append(inp[0].shape[0]))
             for i, br in enumerate(tiny.branches)]
    orig = _scripted(tiny, batch_script)
    try:
        with torch.inference_mode():
            out = tiny(x)
        tiny.policy.linear = ScriptedLinear([[a_script[t]] for t in sorted(a_script)], tiny.num_actions)
        with torch.inference_mode():
            out_a = tiny(x[:1])
        tiny.policy.linear = ScriptedLinear([[1]] * T, tiny.num_actions)
        with torch.inference_mode():
            out_b = tiny(x[1:])
    finally:
        tiny.policy.linear = orig
        for hk in hooks:
            hk.remove()
    # batched run: branch 0 once on 1 frame, branch 1 once on 8 frames, branch 2 never
    assert calls[0][:1] == [1] and calls[1][:1] == [8] and calls[2] == []
    torch.testing.assert_close(out.logits[:1], out_a.logits)
    torch.testing.assert_close(out.logits[1:], out_b.logits)
    assert out.decisions[0] == out_a.decisions[0] and out.decisions[1] == out_b.decisions[0]


# ----------------------------------------------------------------------------- realised cost


def test_one_backbone_per_predicted_frame(tiny: ARNet) -> None:
    x = _clip(3, seed=2)
    for knobs in (None, {"force": 32}, {"cheap_bias": 2.0}):
        with torch.inference_mode():
            out = tiny(x, knobs=knobs)
        _check_one_backbone_per_predicted_frame(out)


def _check_one_backbone_per_predicted_frame(out) -> None:
    for tr, dec in zip(out.trace, out.decisions, strict=True):
        # only predicted frames run a backbone, one backbone each
        bb = [s.frame for s in tr if s.role == "backbone"]
        assert sorted(bb) == [t for t, r in enumerate(dec["resolutions"]) if r in (32, 24, 16)]
        heads = [s.frame for s in tr if s.role == "head" and s.frame >= 0]
        assert sorted(heads) == dec["frames"]  # one prediction per predicted frame, none for skipped ones


def test_forced_modes_and_bias_extremes(tiny: ARNet, table: dict) -> None:
    x = _clip(2, seed=3)
    with torch.inference_mode():
        up = tiny(x, knobs={"force": 32})
        low = tiny(x, knobs={"force": 12})
        skip_all = tiny(x, knobs={"cheap_bias": 100.0})
        high_all = tiny(x, knobs={"cheap_bias": -100.0})
    assert all(d["resolutions"] == [32] * T for d in up.decisions)
    assert all(d["resolutions"] == [12] * T for d in low.decisions)
    assert not [s for s in low.trace[0] if s.role == "backbone"]
    # forced: the policy still runs on every frame
    assert sorted({s.frame for s in up.trace[0] if s.role == "policy"}) == list(range(T))
    g_up = trace_gmacs(up.trace[0], table)
    per_frame = (table[("branches.0.backbone", (3, 32, 32))] + table[("heads.0", (512,))]
                 + table[("policy.encoder.backbone", (3, 12, 12))] + table[("policy.rnn", (1280,))]
                 + table[("policy.linear", (512,))])
    assert g_up == pytest.approx(T * per_frame)
    assert all(d["actions"] == ["skip4", "skip4"] for d in skip_all.decisions)
    assert all(d["resolutions"] == [32] * T for d in high_all.decisions)
    assert trace_gmacs(skip_all.trace[0], table) < trace_gmacs(low.trace[0], table) < g_up
    with torch.inference_mode():
        mid = tiny(x, knobs={"force": 16})
    assert trace_gmacs(low.trace[0], table) < trace_gmacs(mid.trace[0], table) < g_up


# ----------------------------------------------------------------------------- training


def test_gumbel_gradients_reach_the_policy_in_joint_training() -> None:
    torch.manual_seed(0)
    m = create_method("arnet", config="lite", num_classes=3, joint_backbones=True, **TINY).train()
    x, y = _clip(2, seed=4), torch.tensor([0, 2])
    loss, logs = m.training_loss(x, y, stage="joint", epoch=3)
    loss.backward()
    for p in (m.policy.linear.weight, m.policy.rnn.weight_ih, next(m.policy.encoder.parameters()),
              m.branches[0].backbone.conv1.weight, m.heads[1].weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert logs["tau"] == pytest.approx(gumbel_tau(3)) == pytest.approx(5 * math.exp(-0.045 * 3))
    expected = (1 - m.alpha) * logs["ce"] + m.alpha * logs["eff_gmacs"] + m.beta * logs["uniformity"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_stages_parameters_and_epochs() -> None:
    torch.manual_seed(0)
    m = create_method("arnet", config="lite", num_classes=3, **TINY).train()
    x, y = _clip(2, seed=5), torch.tensor([1, 0])
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    warm, joint, fine = (ids(m.stage_parameters(s)) for s in ("warmup", "joint", "finetune"))
    assert id(m.policy.linear.weight) not in warm and id(m.policy.linear.weight) in joint
    assert id(m.policy.rnn.weight_ih) not in fine and id(m.lite_fc.weight) not in fine
    assert id(m.branches[0].backbone.conv1.weight) in fine
    assert id(m.branches[0].backbone.conv1.weight) not in joint  # lite: backbones fixed in joint (CPU budget)
    assert [m.stage_epochs(s, 8) for s in m.card.stages] == [2, 4, 2]
    assert sum(m.stage_epochs(s, 6) for s in m.card.stages) == 6
    for stage in ("warmup", "finetune"):
        m.zero_grad()
        loss, _ = m.training_loss(x, y, stage=stage, epoch=0)
        loss.backward()
        grads = {id(p) for p in m.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert grads <= ids(m.stage_parameters(stage)) and grads
    with pytest.raises(ValueError):
        m.training_loss(x, y, stage="bogus", epoch=0)


# ----------------------------------------------------------------------------- converter


def _official_state(num_classes: int, *, width: float = 0.35) -> dict[str, torch.Tensor]:
    """A state_dict with the official ``TSN_Ada`` names and shapes (``ops/models_ada.py``).

    ``lite_backbone`` = torchvision MobileNetV2 with ``classifier`` replaced by
    ``Dropout`` (no parameters); ``base_model_list.k`` = torchvision ResNets with
    ``fc`` replaced by ``Dropout``; ``rnn`` = ``LSTMCell(1280, 512)``; ``linear``
    = ``Linear(512, 7)``; ``lite_fc`` = ``Linear(512, C)``; ``new_fc_list.k`` =
    ``Linear(feat_dim, C)``; all under DataParallel's ``module.``.
    """
    torch.manual_seed(1)
    sd: dict[str, torch.Tensor] = {}
    mob = torchvision.models.mobilenet_v2(width_mult=width)
    sd.update({f"module.lite_backbone.{k}": v for k, v in mob.state_dict().items() if not k.startswith("classifier.")})
    rnn = nn.LSTMCell(1280, 512)
    sd.update({f"module.rnn.{k}": v for k, v in rnn.state_dict().items()})
    sd.update({f"module.linear.{k}": v for k, v in nn.Linear(512, 7).state_dict().items()})
    sd.update({f"module.lite_fc.{k}": v for k, v in nn.Linear(512, num_classes).state_dict().items()})
    for i in range(3):
        net = ResNet(BasicBlock, [1, 1, 1, 1])
        sd.update({f"module.base_model_list.{i}.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")})
        sd.update({f"module.new_fc_list.{i}.{k}": v for k, v in nn.Linear(512, num_classes).state_dict().items()})
    return sd


def _to_flat(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision nested MobileNetV2 keys → the older flat layout (conv.0..7 with ReLU gaps)."""
    nested1 = {"0.0": 0, "0.1": 1, "1": 3, "2": 4}
    nested = {"0.0": 0, "0.1": 1, "1.0": 3, "1.1": 4, "2": 6, "3": 7}
    out = {}
    for k, v in sd.items():
        m = re.match(r"^(module\.lite_backbone\.features\.)(\d+)\.conv\.(\d+(?:\.\d+)?)\.(weight|bias|running_mean|running_var|num_batches_tracked)$", k)
        if m and int(m[2]) >= 1:
            table = nested1 if int(m[2]) == 1 else nested
            k = f"{m[1]}{m[2]}.conv.{table[m[3]]}.{m[4]}"
        out[k] = v
    return out


def test_converter_loads_official_names_and_flat_layout(tmp_path) -> None:
    m = create_method("arnet", config="lite", num_classes=5)
    sd = _official_state(5)
    load_official_arnet(m, sd)
    torch.testing.assert_close(m.policy.rnn.weight_hh, sd["module.rnn.weight_hh"])
    torch.testing.assert_close(m.heads[2].weight, sd["module.new_fc_list.2.weight"])
    torch.testing.assert_close(m.branches[1].backbone.layer3[0].conv1.weight,
                               sd["module.base_model_list.1.layer3.0.conv1.weight"])
    key = "module.lite_backbone.features.3.conv.1.0.weight"  # depthwise conv of block 3
    torch.testing.assert_close(m.policy.encoder.backbone.features[3].conv[1][0].weight, sd[key])
    # older flat layout, read from a file holding {"state_dict": ...}
    flat = _to_flat(sd)
    assert "module.lite_backbone.features.1.conv.4.weight" in flat and key not in flat
    path = tmp_path / "ckpt.best.pth.tar"
    torch.save({"state_dict": flat, "epoch": 3}, path)
    m2 = create_method("arnet", config="lite", num_classes=5)
    load_official_arnet(m2, path)
    torch.testing.assert_close(m2.policy.encoder.backbone.features[3].conv[1][0].weight, sd[key])
    torch.testing.assert_close(m2.policy.encoder.backbone.features[1].conv[2].running_var,
                               sd["module.lite_backbone.features.1.conv.2.running_var"])
    assert flat_to_torchvision_mobilenet_v2({"x.y": torch.zeros(1)}) == {"x.y": torch.zeros(1)}


def test_converter_lists_missing_unexpected_and_shape_mismatches() -> None:
    m = create_method("arnet", config="lite", num_classes=5)
    sd = _official_state(5)
    del sd["module.rnn.bias_hh"]
    sd["module.extra_head.weight"] = torch.zeros(2)
    sd["module.linear.weight"] = torch.zeros(9, 512)
    with pytest.raises(CheckpointError) as err:
        load_official_arnet(m, sd)
    msg = str(err.value)
    assert "policy.rnn.bias_hh" in msg and "extra_head.weight" in msg and "policy.linear.weight" in msg
    assert "missing" in msg and "unexpected" in msg and "shape" in msg


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("policy_input", ["cheap", "full"])
def test_feature_variant_runs_and_costs(policy_input: str) -> None:
    torch.manual_seed(0)
    m = create_method("arnet", config="features", num_classes=4, policy_input=policy_input)
    assert m.card.input_kind == "features" and m.card.frames == 25 and m.card.feature_dim == 4096
    nn.init.normal_(m.policy.linear.weight, 0.0, 0.5)
    x = torch.rand(2, 25, 4096)
    table = cost_table(m)
    for knobs in (None, {"force": "use"}, {"cheap_bias": 3.0}):
        holder = []
        with torch.inference_mode():
            executed = executed_gmacs(lambda k=knobs, h=holder: h.append(m(x, knobs=k)))
        out = holder[0]
        assert out.logits.shape == (2, 4)
        traced = sum(trace_gmacs(tr, table) for tr in out.trace)
        declared = sum(table[s.key] for tr in out.trace for s in tr if s.role == "input")
        assert executed + declared == pytest.approx(traced, rel=0.01)
        for tr, dec in zip(out.trace, out.decisions, strict=True):
            full_reads = [s.frame for s in tr if s.module == "frame_features"]
            assert len(full_reads) == len(set(full_reads))  # never charged twice
            if policy_input == "cheap":
                assert sorted(full_reads) == dec["frames"]
    with torch.inference_mode():
        up = m(x, knobs={"force": "use"})
    assert up.decisions[0]["frames"] == list(range(25))
    assert trace_gmacs(up.trace[0], table) == pytest.approx(
        25 * (77.35 + (table[("policy_features", (4096,))] if policy_input == "cheap" else 0.0)), rel=1e-3)
    m.train()
    for stage in m.card.stages:
        m.zero_grad()
        loss, _ = m.training_loss(x, torch.tensor([0, 3]), stage=stage, epoch=0)
        loss.backward()
    m.zero_grad()
    loss, _ = m.training_loss(x, torch.tensor([0, 3]), stage="joint", epoch=0)
    loss.backward()
    assert m.policy.linear.weight.grad.abs().sum() > 0 and m.policy.proj.weight.grad.abs().sum() > 0


def test_paper_cost_table_matches_the_paper() -> None:
    m = create_method("arnet", config="paper", num_classes=200)
    t = cost_table(m)
    assert t[("branches.0.backbone", (3, 224, 224))] == pytest.approx(4.11, abs=0.01)
    assert t[("branches.1.backbone", (3, 168, 168))] == pytest.approx(2.25, abs=0.01)
    assert t[("branches.2.backbone", (3, 112, 112))] == pytest.approx(0.49, abs=0.01)
    assert t[("policy.encoder.backbone", (3, 84, 84))] == pytest.approx(0.053, abs=0.002)
    claims = claims_by_id(m.card.claims)  # published numbers live in the claims registry only
    assert claims["arnet-activitynet-gmacs-per-video"].claimed == 33.47
    assert claims["arnet-activitynet-map"].claimed == 73.8
