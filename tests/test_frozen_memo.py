"""The memo of frozen backbones in training: exact outputs, invalidation, pass-through, and the training loop."""

from __future__ import annotations

import pytest
import torch
from evbench.harness import frozen_memo as fm
from evbench.harness.frozen_memo import FrozenMemo, frozen_in, slot_modules
from evbench.harness.registry import create_method
from evbench.harness.training import TrainSpec, train_method
from evbench.methods.backbones import build_backbone
from torch import nn


@pytest.fixture()
def net() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("resnet10").eval()  # channels-last, as every backbone


def test_outputs_equal_the_module_and_repeats_are_served(net, one_thread):
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        with FrozenMemo({"net": net}) as memo:
            first = net(x)
            again = net(x)
            mixed = net(torch.cat([x[4:], torch.randn(2, 3, 32, 32), x[:1]]))
    assert torch.equal(first, ref)
    assert torch.equal(again, ref)
    assert torch.allclose(mixed[:2], ref[4:], atol=1e-5) and torch.allclose(mixed[4], ref[0], atol=1e-5)
    assert memo.stats.hits == 6 + 3 and memo.stats.misses == 6 + 2
    assert memo.stats.modules == {"net": {"hits": 9, "misses": 8}}
    assert "forward" not in net.__dict__  # the class's forward again


def test_layout_of_the_computed_output_is_kept(one_thread):
    conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), FrozenMemo({"conv": conv}):
        fresh = conv(x)
        served = conv(x)
    assert fresh.is_contiguous(memory_format=torch.channels_last)
    assert served.is_contiguous(memory_format=torch.channels_last) and torch.equal(served, fresh)


def test_served_output_is_a_copy(net, one_thread):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), FrozenMemo({"net": net}):
        net(x).zero_()  # the caller writes into what it got
        assert net(x).abs().sum() > 0


def test_changed_weights_or_buffers_drop_the_entries(net, one_thread):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), FrozenMemo({"net": net}) as memo:
        before = net(x)
        next(net.parameters()).mul_(1.5)  # an optimiser step, in place
        after = net(x)
        assert memo.stats.invalidated == 1 and memo.stats.hits == 0
        assert not torch.equal(before, after)
        assert torch.equal(after, type(net).forward(net, x))


def test_training_mode_gradients_tensor_arguments_and_inactive_modules_pass_through(net, one_thread):
    x = torch.randn(2, 3, 32, 32)
    with FrozenMemo({"net": net}) as memo:
        net(x)  # gradients on
        with torch.no_grad():
            net.train()
            net(x)  # BatchNorm statistics would move
            net.eval()
            memo.activate({})
            net(x)
            memo.activate({"net": net})
            net(x)
            net(x)
    assert memo.stats.passthrough == 3 and memo.stats.hits == 2 and memo.stats.misses == 2


def test_cap_stops_storing_but_outputs_stay_right(net, one_thread):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), FrozenMemo({"net": net}, max_mib=0) as memo:
        assert torch.equal(net(x), net(x))
    assert memo.stats.hits == 0 and memo.stats.stored_mib == 0


def test_slot_modules_and_frozen_in():
    tlee = create_method("tlee", config="lite", num_classes=3, frames=2)
    mods = slot_modules(tlee)
    assert set(mods) == {f"stages.{k}" for k in range(len(tlee.stages))}  # a ModuleList slot gives its children
    arnet = create_method("arnet", config="lite", num_classes=3, frames=2)
    names = set(slot_modules(arnet))
    assert "policy.encoder.backbone" in names and "branches.0.backbone" in names
    arnet.backbone_pretrained = tuple(names)
    assert set(frozen_in(slot_modules(arnet), arnet.stage_parameters("warmup"))) == names
    assert set(frozen_in(slot_modules(arnet), list(arnet.parameters()))) == set()
    assert slot_modules(create_method("uniform", config="features", num_classes=3, feature_dim=8)) == {}


@pytest.mark.parametrize("name", ["uniform_lstm", "liteeval", "rsee", "tlee", "frameexit", "dyngrid", "arnet"])
def test_training_on_a_frozen_backbone_is_served_what_the_backbone_computes(name, tiny_generated, tmp_path,
                                                                             monkeypatch, one_thread):
    """With the cached backbones loaded (here: the freshly built ones, marked loaded), the methods' own stages
    read the frozen backbones through the memo; every served call equals the backbone's own output."""
    from evbench.harness.data import open_dataset

    size = create_method(name, config="lite", num_classes=2, frames=4).card.resolution
    ds = open_dataset(f"generated:{tiny_generated}", split="train", frames=4, size=size, train=True,
                      cache_dir=str(tmp_path))
    served = FrozenMemo._call
    diffs: list[float] = []

    def checked(self, entry, forward, x, args, kwargs, extra):
        got = served(self, entry, forward, x, args, kwargs, extra)
        diffs.append((got - forward(x, *args, **kwargs)).abs().max().item())
        return got

    monkeypatch.setattr(FrozenMemo, "_call", checked)
    torch.manual_seed(0)
    method = create_method(name, config="lite", num_classes=2, frames=4)
    method.backbone_pretrained = tuple(s.name for s in method.backbone_slots())
    covered = tuple(c for s in method.backbone_slots() for c in s.covers)
    stats = train_method(method, ds, TrainSpec(epochs=3, batch_size=4, seed=0), skip_stages=covered).frozen_memo
    assert stats["hits"] > 0 and set(stats["modules"]) <= set(slot_modules(method)), stats
    assert diffs and max(diffs) <= 1e-5  # other batch compositions: float rounding only


def test_training_with_the_memo_gives_the_losses_without_it(tiny_generated, tmp_path, monkeypatch, one_thread):
    """End to end on the LSTM over a frozen backbone.  (Not asserted for every method: Adam's first steps move
    each weight by ±lr whatever the gradient's size, so where a gradient is ~0 the last float bits of a feature
    pick the direction; FrameExit's gate loss then differs by 0.4 % on this tiny set.)"""
    from evbench.harness.data import open_dataset

    ds = open_dataset(f"generated:{tiny_generated}", split="train", frames=4, size=112, train=True,
                      cache_dir=str(tmp_path))

    def trained(memo: bool) -> tuple[nn.Module, dict, list]:
        torch.manual_seed(0)
        method = create_method("uniform_lstm", config="lite", num_classes=2, frames=4)
        method.backbone_pretrained = ("encoder.backbone",)
        if not memo:
            monkeypatch.setattr(fm, "frozen_in", lambda modules, params: {})
        report = train_method(method, ds, TrainSpec(epochs=3, batch_size=4, seed=0))
        monkeypatch.undo()
        return method, report.frozen_memo, report.logs

    with_memo, stats, logs = trained(True)
    without, plain, plain_logs = trained(False)
    assert stats["hits"] > 0 and stats["modules"] == {"encoder.backbone": {"hits": stats["hits"],
                                                                            "misses": stats["misses"]}}
    assert plain["hits"] == plain["misses"] == 0
    for a, b in zip(logs, plain_logs, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["epoch"]
    x = torch.stack([ds[i].x for i in range(len(ds))])
    with torch.no_grad():
        assert torch.allclose(with_memo(x).logits, without(x).logits, atol=1e-4)
