"""Feature track (real UCF101 VGG16 features, blocked carve-out): AR-Net's frontier vs uniform's.

Reads ``../shared/data/ucf101_vgg16/train.npz`` (skipped, naming the path, when
absent).  Trains with the features suite's own recipe (``bench/suites/features.toml``
``[train]``, so the 10 % validation hold-out too) on the file's train split only and
measures on the blocked 20 % carve-out (clips of one UCF101 group stay on one side):
no number is measured on a training clip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evbench.harness.data.features import FeatureDataset
from evbench.harness.measure import evaluate
from evbench.harness.metrics import bootstrap_ci, topk_accuracy
from evbench.harness.registry import create_method
from evbench.harness.suites import load_suite
from evbench.harness.training import TrainSpec, seed_everything, train_method
from torch import nn

from tests.shared_data import shared_path


def _tiny_arnet(**kw):
    torch.manual_seed(0)
    m = create_method("arnet", config="features", num_classes=4, feature_dim=32, gmacs_per_frame=10.0, **kw)
    nn.init.normal_(m.policy.linear.weight, 0.0, 0.5)
    return m.eval()


def test_feature_config_samples_decisions_reproducibly_per_clip():
    m = _tiny_arnet()
    assert m.inference_settings["decisions"] == "sample" and m.fallback_stages == ("joint", "finetune")
    x = torch.rand(6, 25, 32)
    with torch.inference_mode():
        whole = m(x).decisions
        again = m(x).decisions
        alone = [m(x[i:i + 1]).decisions[0] for i in range(6)]
        m.sample_seed = 1
        other = m(x).decisions
        m.sample_seed, m.decisions = 0, "argmax"
        argmax = m(x).decisions
    assert whole == again == alone  # the same clip gets the same decisions in any batch
    assert other != whole and argmax != whole
    with pytest.raises(ValueError, match="decisions"):
        _tiny_arnet(decisions="random")


def test_finetune_stage_trains_the_all_skipped_fallback():
    m = _tiny_arnet()
    assert {id(p) for p in m.lite_fc.parameters()} <= {id(p) for p in m.stage_parameters("finetune")}
    m.train()
    loss, logs = m.training_loss(torch.rand(4, 25, 32), torch.tensor([0, 1, 2, 3]), stage="finetune", epoch=0)
    loss.backward()
    assert "ce_fallback" in logs and m.lite_fc.weight.grad.abs().sum() > 0
    assert m.policy.linear.weight.grad is None or m.policy.linear.weight.grad.abs().sum() == 0
    plain = _tiny_arnet(fallback_stages=())
    assert {id(p) for p in plain.stage_parameters("finetune")} == {id(p) for p in plain.head.parameters()}


def _point(method, test, knobs=None):
    ev = evaluate(method, test, knobs=knobs, batch_size=128, count_executed=False)
    top1 = topk_accuracy(ev.logits, ev.labels, 1)
    lo, hi = bootstrap_ci(ev.logits, ev.labels, lambda s, y: topk_accuracy(s, y, 1), n_boot=500)
    used = np.array([len(d.get("frames", [])) for d in ev.decisions])
    return {"top1": top1, "half": (hi - lo) / 2, "gmacs": float(ev.samples.gmacs.mean()),
            "frames": float(used.mean()), "all_skipped": float((used == 0).mean())}


def _suite_entry(suite, name):
    return next(m for m in suite.methods if m["name"] == name)


@pytest.fixture(scope="module")
def trained():
    """uniform (the suite's 1/2/4/8 frames) and AR-Net (features configuration), the suite's recipe."""
    path = shared_path("ucf101_vgg16", "train.npz")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    suite = load_suite("features")
    spec = TrainSpec(**suite.train)
    train = FeatureDataset(path, split="train")
    test = FeatureDataset(path, split="test")
    assert not {e.id for e in train.entries} & {e.id for e in test.entries}
    gm = train.gmacs_per_frame or 15.47 * 5
    uniform = {}
    for ov in _suite_entry(suite, "uniform")["overrides"]:
        if ov["frames"] <= 8:
            seed_everything(spec.seed)
            uni = create_method("uniform", config="features", num_classes=15, gmacs_per_frame=gm, **ov)
            train_method(uni, train, spec)
            uniform[ov["frames"]] = _point(uni, test)
    seed_everything(spec.seed)
    arnet = create_method("arnet", config="features", num_classes=15, gmacs_per_frame=gm)
    train_method(arnet, train, spec)
    points = [{**_point(arnet, test, kn), "knobs": kn} for kn in _suite_entry(suite, "arnet")["knobs"]]
    return uniform, points


def _best_at(points, gmacs):
    """The most accurate point costing at most ``gmacs`` GMACs/video (the frontier's value there), or None."""
    within = [p for p in points if p["gmacs"] <= gmacs]
    return max(within, key=lambda p: p["top1"]) if within else None


@pytest.mark.slow
def test_arnet_frontier_not_below_uniform_by_more_than_its_interval(trained):
    """Issue 14 done-when, over the GMACs range AR-Net's sweep spans: at every cost where either frontier
    steps, AR-Net's frontier (its best point costing no more) is at most that point's 95 % half-width below
    uniform's (the best uniform cell costing no more).  Below uniform-1's cost uniform has no cell."""
    uniform, points = trained
    table = "; ".join(f"uniform-{f} {100 * u['top1']:.1f} % @{u['gmacs']:.0f}" for f, u in sorted(uniform.items()))
    lo, hi = min(p["gmacs"] for p in points), max(p["gmacs"] for p in points)
    assert hi >= 3 * lo, f"the knobs span no GMACs range: {lo:.0f}-{hi:.0f}"
    steps = sorted({p["gmacs"] for p in points} | {u["gmacs"] for u in uniform.values() if lo <= u["gmacs"] <= hi})
    for g in steps:
        a, u = _best_at(points, g), _best_at(list(uniform.values()), g)
        msg = (f"at {g:.0f} GMACs: AR-Net {a['knobs']} {100 * a['top1']:.1f} % ±{100 * a['half']:.1f} "
               f"({a['gmacs']:.0f} GMACs, {a['frames']:.2f} frames used, {100 * a['all_skipped']:.0f} % of clips "
               f"all skipped); {table}")
        assert a["top1"] >= (u["top1"] if u else 0.5) - a["half"], msg  # no uniform cell: far above chance (6.7 %)
