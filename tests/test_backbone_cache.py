"""The content-addressed backbone cache: keys, reuse across runs, inspection, concurrency, method slots."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
import torch
from evbench.harness.backbone_cache import (
    BackboneCache,
    BackboneRecipe,
    BackboneSpec,
    TSNBackbone,
    copy_backbone,
    pretrain_backbones,
)
from evbench.harness.cli import main
from evbench.harness.data import data_fingerprint, open_dataset
from evbench.harness.registry import create_method

TINY_RECIPE = BackboneRecipe(epochs=1, finetune_epochs=1, batch_size=4, frames=2, input_size=32)
SPEC = BackboneSpec("resnet10", (32,))


def _train_ds(root: Path, cache_dir: Path):
    return lambda: open_dataset(f"generated:{root}", split="train", frames=2, size=32, train=True,
                                cache_dir=str(cache_dir))


def _get(cache: BackboneCache, root: Path, tmp_path: Path, spec: BackboneSpec = SPEC,
         recipe: BackboneRecipe = TINY_RECIPE):
    src = f"generated:{root}"
    classes = open_dataset(src, split="test", frames=1, size=32, cache_dir=str(tmp_path)).class_names
    return cache.get_or_train(spec, recipe, open_train=_train_ds(root, tmp_path), data=data_fingerprint(src),
                              data_source=src, split="train", class_names=classes)


def test_key_changes_with_recipe_data_arch_and_parent():
    data = {"kind": "generated", "params": {"size": 64}}
    base = BackboneCache.key(SPEC, TINY_RECIPE, data=data, split="train", class_names=["a", "b"])
    assert base == BackboneCache.key(SPEC, TINY_RECIPE, data=dict(data), split="train", class_names=["a", "b"])
    others = [
        BackboneCache.key(SPEC, BackboneRecipe(epochs=2, batch_size=4, frames=2, input_size=32), data=data,
                          split="train", class_names=["a", "b"]),
        BackboneCache.key(SPEC, TINY_RECIPE, data={"kind": "generated", "params": {"size": 32}}, split="train",
                          class_names=["a", "b"]),
        BackboneCache.key(BackboneSpec("resnet10", (28,)), TINY_RECIPE, data=data, split="train",
                          class_names=["a", "b"]),
        BackboneCache.key(BackboneSpec("resnet10", (28,), init_from=SPEC), TINY_RECIPE, data=data, split="train",
                          class_names=["a", "b"]),
        BackboneCache.key(SPEC, TINY_RECIPE, data=data, split="all", class_names=["a", "b"]),
        BackboneCache.key(SPEC, TINY_RECIPE, data=data, split="train", class_names=["b", "a"]),
    ]
    assert len({base, *others}) == len(others) + 1


def test_trained_once_then_reused_and_listed(tiny_generated, tmp_path, one_thread, capsys):
    cache = BackboneCache(tmp_path / "backbones")
    first = _get(cache, tiny_generated, tmp_path)
    assert not first.reused and first.train_s > 0
    second = _get(BackboneCache(tmp_path / "backbones"), tiny_generated, tmp_path)  # a new process would do this
    assert second.reused and second.key == first.key
    for a, b in zip(first.net.state_dict().values(), second.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    [entry] = cache.entries()
    assert entry["key"] == first.key and entry["name"] == "resnet10@32" and entry["size_bytes"] > 0
    assert entry["recipe"]["epochs"] == 1 and entry["dataset_fingerprint"]["kind"] == "generated"
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert first.key in out and "resnet10@32" in out and "generated" in out
    assert main(["cache", "list", "--json", "--cache-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"] == first.key
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert cache.entries() == []


def test_corrupt_entry_is_a_miss(tiny_generated, tmp_path, one_thread):
    cache = BackboneCache(tmp_path / "backbones")
    first = _get(cache, tiny_generated, tmp_path)
    cache.path(first.key).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        again = _get(cache, tiny_generated, tmp_path)
    assert not again.reused and cache.path(again.key).stat().st_size > 100


def _worker(args):
    root, tmp = map(Path, args)
    torch.set_num_threads(1)
    entry = _get(BackboneCache(tmp / "backbones"), root, tmp)
    return entry.key, entry.reused


def test_concurrent_processes_train_an_entry_once(tiny_generated, tmp_path):
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_worker, [(str(tiny_generated), str(tmp_path))] * 2)
    assert len({k for k, _ in results}) == 1
    assert sorted(r for _, r in results) == [False, True]  # one trained it, the other waited and loaded it
    assert not list((tmp_path / "backbones").glob("*.tmp"))


def test_multibn_entry_starts_from_its_parent():
    parent = TSNBackbone(BackboneSpec("resnet10", (32,)), 3, TINY_RECIPE)
    child = TSNBackbone(BackboneSpec("resnet10", (32, 16), kind="tsn_multibn", init_from=parent.spec), 3,
                        TINY_RECIPE)
    with torch.no_grad():
        for p in parent.parameters():
            p.normal_()
    child.init_from(parent)
    parent.eval()
    child.eval()
    x = torch.randn(2, 3, 32, 32)
    # bank 0 with the fc at the identity reproduces the parent's features exactly
    assert torch.allclose(parent.backbone(x), child.backbone(x, 0), atol=1e-5)
    assert torch.equal(child.head.weight, parent.head.weight)


@pytest.mark.parametrize("name", ["uniform", "uniform_stream", "uniform_lstm", "arnet", "liteeval", "rsee", "tlee",
                                  "frameexit", "dyngrid"])
def test_every_pixel_method_takes_its_cached_backbones(name, tmp_path, one_thread):
    """Each slot's loader puts the trained weights where the method's forward reads them."""
    method = create_method(name, config="lite", num_classes=3, frames=2)
    slots = method.backbone_slots()
    assert slots
    recipe = BackboneRecipe(frames=2, input_size=method.card.resolution)
    for slot in slots:
        net = TSNBackbone(slot.spec, 3, recipe)
        if slot.spec.init_from is not None:
            net.init_from(TSNBackbone(slot.spec.init_from, 3, recipe))
        with torch.no_grad():
            for p in net.backbone.parameters():
                p.fill_(0.01)
        slot.load(net.backbone, net.head)
        target = method.get_submodule(slot.name)
        first = next(iter(target.parameters()))
        assert torch.all(first == 0.01), slot.name
    x = torch.randn(1, 2, 3, method.card.resolution, method.card.resolution)
    method.eval()
    assert torch.isfinite(method(x).logits).all()


def test_features_configurations_take_no_backbone():
    for name in ("uniform", "arnet", "liteeval", "rsee", "tlee", "frameexit", "dyngrid"):
        method = create_method(name, config="features", num_classes=3, feature_dim=16)
        assert getattr(method, "backbone_slots", list)() == []


def test_pretrain_backbones_marks_the_method_and_reports_reuse(tiny_generated, tmp_path, one_thread):
    src = f"generated:{tiny_generated}"
    method = create_method("uniform", config="lite", num_classes=2, frames=2, resolution=32)
    kw = {"open_train": _train_ds(tiny_generated, tmp_path), "data": data_fingerprint(src), "data_source": src,
          "split": "train", "class_names": ["RedDisc", "BlueSquare"]}
    cache = BackboneCache(tmp_path / "backbones")
    info = pretrain_backbones(method, cache, TINY_RECIPE, **kw)
    assert not info.reused and info.covers == ("joint",) and method.backbone_pretrained == ("encoder.backbone",)
    again = pretrain_backbones(create_method("uniform", config="lite", num_classes=2, frames=2, resolution=32),
                               cache, TINY_RECIPE, **kw)
    assert again.reused and again.keys == info.keys and again.train_s == 0.0


def test_copy_backbone_refuses_another_architecture():
    from evbench.methods.backbones import build_backbone

    with pytest.raises(ValueError):
        copy_backbone(build_backbone("resnet10"), build_backbone("resnet18"))
