"""LiteEval: gate semantics, state synchronisation, realised cost, training, converter, feature variant."""

from __future__ import annotations

import pytest
import torch
import torchvision
from evbench.harness.api import KnobError
from evbench.harness.costs import cost_table, executed_gmacs, trace_gmacs
from evbench.harness.registry import create_method, list_methods, method_configs
from evbench.methods.checkpoints import CheckpointError
from evbench.methods.liteeval import FINE, SKIP, LiteEval, load_official_liteeval
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

T = 6
TINY = {"coarse_resolution": 16, "fine_resolution": 32, "frames": T}


pytestmark = pytest.mark.usefixtures("one_thread")


class ScriptedGate(nn.Module):
    """Stands in for ``core.linear``: step ``k`` opens the gate for the rows in ``script[k]`` (per-row bools)."""

    def __init__(self, script: list[list[bool]]) -> None:
        super().__init__()
        self.script = script
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        opened = torch.tensor(self.script[self.calls])
        self.calls += 1
        assert len(opened) == z.shape[0]
        out = torch.zeros(z.shape[0], 2)
        out[opened, FINE] = 5.0
        out[~opened, SKIP] = 5.0
        return out


@pytest.fixture(scope="module")
def tiny() -> LiteEval:
    torch.manual_seed(0)
    m = create_method("liteeval", config="lite", num_classes=3, **TINY)
    nn.init.normal_(m.core.linear.weight, 0.0, 0.3)
    return m


@pytest.fixture(scope="module")
def table(tiny: LiteEval) -> dict:
    return cost_table(tiny)


def _clip(b: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, T, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_registered_with_configs_and_card(tiny: LiteEval) -> None:
    assert "liteeval" in list_methods()
    cfgs = method_configs("liteeval")
    assert {"paper", "lite", "features"} <= set(cfgs)
    assert (cfgs["paper"]["coarse_backbone"], cfgs["paper"]["coarse_resolution"]) == ("mobilenet_v2", 112)
    assert (cfgs["paper"]["fine_backbone"], cfgs["paper"]["fine_resolution"]) == ("resnet101", 224)
    card = tiny.card
    assert card.doi == "arXiv:1912.01601" and "zxwu/lite_eval" in card.code
    assert card.force_options == ("fine", "coarse") and card.upper_bound_knobs == {"force": "fine"}
    assert len(card.knobs[0].sweep) + 1 >= 4
    with pytest.raises(KnobError):
        tiny(_clip(), knobs={"force": "medium"})


def test_state_synchronisation_and_realised_fine_path(tiny: LiteEval) -> None:
    """Skipped steps copy the coarse state into the fine state's first D_c dims; fine CNN runs only when open."""
    x = _clip(2, seed=1)
    script = [[True, False], [False, False], [True, True], [False, True], [False, False], [True, False]]
    fine_calls: list[int] = []
    hook = tiny.fine.register_forward_hook(lambda _m, inp, _o: fine_calls.append(inp[0].shape[0]))
    orig = tiny.core.linear
    tiny.core.linear = ScriptedGate(script)
    try:
        with torch.inference_mode():
            out = tiny(x)
    finally:
        tiny.core.linear = orig
        hook.remove()
    assert fine_calls == [1, 2, 1, 1]  # grouped per step: only the open rows
    assert out.decisions[0]["actions"] == ["fine", "coarse", "fine", "coarse", "coarse", "fine"]
    assert out.decisions[1]["fine_frames"] == [2, 3]
    assert out.decisions[0]["resolutions"] == [32, 16, 32, 16, 16, 32]
    for i in range(2):
        fine_frames = [s.frame for s in out.trace[i] if s.module == "fine.backbone"]
        assert fine_frames == out.decisions[i]["fine_frames"]
        assert [s.frame for s in out.trace[i] if s.module == "core.large_rnn"] == fine_frames
        assert len([s for s in out.trace[i] if s.module == "coarse.backbone"]) == T
        assert out.trace[i][-1].module == "core.classifier" and out.trace[i][-1].exit == "last_frame"
    # reference computation, sample by sample, written out step by step
    c = tiny.core
    with torch.inference_mode():
        for i in range(2):
            h_s = c_s = torch.zeros(1, c.small_cell)
            h_l = c_l = torch.zeros(1, c.large_cell)
            for t in range(T):
                s_t = c.small_proj_mlp(tiny.coarse(x[i:i + 1, t]))
                h_s, c_s = c.small_rnn(s_t, (h_s, c_s))
                if script[t][i]:
                    f = c.proj_mlp(tiny.fine(x[i:i + 1, t]))
                    h_l, c_l = c.large_rnn(torch.cat([f, s_t], 1), (h_l, c_l))
                else:  # Eq. 5: first D_c dims from the coarse state, the rest unchanged
                    ds = c.small_cell
                    h_l = torch.cat([h_s[:, :ds], h_l[:, ds:]], 1)
                    c_l = torch.cat([c_s[:, :ds], c_l[:, ds:]], 1)
            torch.testing.assert_close(out.logits[i:i + 1], c.classifier(h_l), rtol=1e-4, atol=1e-5)


def test_synchronise_copies_exactly_the_first_dc_dims(tiny: LiteEval) -> None:
    h_l = torch.arange(tiny.core.large_cell, dtype=torch.float32)[None]
    h_s = -torch.ones(1, tiny.core.small_cell)
    out = tiny.core.synchronise(h_l, h_s)
    ds = tiny.core.small_cell
    assert torch.equal(out[:, :ds], h_s) and torch.equal(out[:, ds:], h_l[:, ds:])


def test_forced_modes_and_gate_bias_extremes(tiny: LiteEval, table: dict) -> None:
    x = _clip(3, seed=2)
    per = {}
    for knobs in (None, {"force": "fine"}, {"force": "coarse"}, {"gate_bias": 20.0}, {"gate_bias": -20.0}):
        with torch.inference_mode():
            out = tiny(x, knobs=knobs)
        traced = sum(trace_gmacs(tr, table) for tr in out.trace)
        per[str(knobs)] = (traced, [d["actions"] for d in out.decisions])
    fine_up, coarse_only = per[str({"force": "fine"})], per[str({"force": "coarse"})]
    assert all(a == ["fine"] * T for a in fine_up[1]) and all(a == ["coarse"] * T for a in coarse_only[1])
    assert per[str({"gate_bias": 20.0})] == fine_up and per[str({"gate_bias": -20.0})] == coarse_only
    assert coarse_only[0] < per["None"][0] <= fine_up[0]
    fine_step = (table[("fine.backbone", (3, 32, 32))] + table[("core.proj_mlp", (512,))]
                 + table[("core.large_rnn", (384,))])
    assert fine_up[0] - coarse_only[0] == pytest.approx(3 * T * fine_step, rel=1e-6)


def test_gumbel_gradients_reach_the_gate_and_loss() -> None:
    torch.manual_seed(0)
    m = create_method("liteeval", config="lite", num_classes=3, **TINY).train()
    x, y = _clip(3, seed=3), torch.tensor([0, 1, 2])
    loss, logs = m.training_loss(x, y, stage="joint", epoch=0)
    loss.backward()
    for p in (m.core.linear.weight, m.core.small_rnn.weight_ih, m.core.large_rnn.weight_ih,
              m.core.proj_mlp[1].weight, m.core.classifier.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert m.fine.backbone.conv1.weight.grad is None  # frozen extractor in the joint stage
    assert loss.item() == pytest.approx(logs["ce"] + 2.0 * (logs["fine_usage"] - m.gamma) ** 2, rel=1e-5)
    assert logs["tau"] == pytest.approx(1.0)
    m.zero_grad()
    loss, logs = m.training_loss(x, y, stage="warmup", epoch=0)
    loss.backward()
    assert m.fine.backbone.conv1.weight.grad.abs().sum() > 0 and m.core.linear.weight.grad is None
    assert [m.stage_epochs(s, 6) for s in m.card.stages] == [2, 4]
    with pytest.raises(ValueError):
        m.training_loss(x, y, stage="finetune", epoch=0)


def _official_core_state(*, fine_in: int, coarse_in: int, fine_embed: int, coarse_embed: int, large: int,
                         small: int, classes: int) -> dict[str, torch.Tensor]:
    """Official ``models/lite_eval.py`` names: ``build_mlp`` = Sequential(BN, Linear, BN, ReLU), two LSTMCells,
    the gate ``linear`` on ``[small_features, h_l, c_l]`` and the ``classifier`` on ``h_l``."""
    def mlp(d_in: int, d_out: int) -> nn.Module:
        return nn.Sequential(nn.BatchNorm1d(d_in), nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU())

    official = nn.Module()
    official.proj_mlp = mlp(fine_in, fine_embed)
    official.small_proj_mlp = mlp(coarse_in, coarse_embed)
    official.large_rnn = nn.LSTMCell(fine_embed + coarse_embed, large)
    official.small_rnn = nn.LSTMCell(coarse_embed, small)
    official.linear = nn.Linear(coarse_embed + 2 * large, 2)
    official.classifier = nn.Linear(large, classes)
    return {f"module.{k}": v for k, v in official.state_dict().items()}


def test_converter_loads_the_official_paper_core_and_backbones(tmp_path) -> None:
    m = create_method("liteeval", config="paper", num_classes=239)
    sd = _official_core_state(fine_in=2048, coarse_in=1280, fine_embed=2048, coarse_embed=512, large=2048,
                              small=512, classes=239)
    path = tmp_path / "liteeval.pth"
    torch.save(sd, path)
    load_official_liteeval(m, path)
    torch.testing.assert_close(m.core.large_rnn.weight_ih, sd["module.large_rnn.weight_ih"])
    torch.testing.assert_close(m.core.proj_mlp[0].running_var, sd["module.proj_mlp.0.running_var"])
    # mismatches are listed, not half-loaded
    bad = dict(sd)
    del bad["module.small_rnn.bias_ih"]
    bad["module.attention.weight"] = torch.zeros(1)
    bad["module.classifier.weight"] = torch.zeros(10, 2048)
    with pytest.raises(CheckpointError) as err:
        load_official_liteeval(m, bad)
    msg = str(err.value)
    assert "small_rnn.bias_ih" in msg and "attention.weight" in msg and "classifier.weight" in msg


def test_converter_loads_torchvision_backbones() -> None:
    m = create_method("liteeval", config="lite", num_classes=3)
    c = m.core
    sd = _official_core_state(fine_in=512, coarse_in=1280, fine_embed=c.fine_embed, coarse_embed=c.coarse_embed,
                              large=c.large_cell, small=c.small_cell, classes=3)
    fine = ResNet(BasicBlock, [1, 1, 1, 1]).state_dict()  # with its fc.* keys, dropped by the loader
    coarse = torchvision.models.mobilenet_v2(width_mult=0.35).state_dict()
    load_official_liteeval(m, sd, fine_backbone=fine, coarse_backbone=coarse)
    torch.testing.assert_close(m.fine.backbone.layer4[0].conv2.weight, fine["layer4.0.conv2.weight"])
    torch.testing.assert_close(m.coarse.backbone.features[5].conv[1][0].weight, coarse["features.5.conv.1.0.weight"])


@pytest.mark.parametrize("coarse_input", ["cheap", "full"])
def test_feature_variant_runs_and_costs(coarse_input: str) -> None:
    torch.manual_seed(0)
    m = create_method("liteeval", config="features", num_classes=4, coarse_input=coarse_input)
    assert m.card.input_kind == "features" and m.card.frames == 25 and m.card.stages == ("joint",)
    nn.init.normal_(m.core.linear.weight, 0.0, 0.3)
    x = torch.rand(2, 25, 4096)
    table = cost_table(m)
    for knobs in (None, {"force": "fine"}, {"force": "coarse"}):
        holder = []
        with torch.inference_mode():
            executed = executed_gmacs(lambda k=knobs, h=holder: h.append(m(x, knobs=k)))
        out = holder[0]
        assert out.logits.shape == (2, 4)
        traced = sum(trace_gmacs(tr, table) for tr in out.trace)
        declared = sum(table[s.key] for tr in out.trace for s in tr if s.role == "input")
        assert executed + declared == pytest.approx(traced, rel=0.01)
        for tr, dec in zip(out.trace, out.decisions, strict=True):
            full = [s.frame for s in tr if s.module == "frame_features"]
            assert full == (dec["fine_frames"] if coarse_input == "cheap" else list(range(25)))
    with torch.inference_mode():
        lo = trace_gmacs(m(x, knobs={"force": "coarse"}).trace[0], table)
        hi = trace_gmacs(m(x, knobs={"force": "fine"}).trace[0], table)
    if coarse_input == "cheap":
        assert lo == pytest.approx(25 * table[("coarse_features", (4096,))], rel=0.01)
        assert hi == pytest.approx(25 * (77.35 + table[("coarse_features", (4096,))]), rel=0.01)
    else:
        assert lo == pytest.approx(25 * 77.35, rel=0.01) and hi - lo < 0.2
    m.train()
    loss, logs = m.training_loss(x, torch.tensor([1, 3]), stage="joint", epoch=0)
    loss.backward()
    assert m.core.linear.weight.grad.abs().sum() > 0 and m.coarse_proj[0].weight.grad.abs().sum() > 0
