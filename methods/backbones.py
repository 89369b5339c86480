"""Frame backbones: torchvision architectures as ``(N, 3, H, W) -> (N, D)`` feature extractors.

Weights are randomly initialised (no hub downloads); official checkpoints are
loaded through the converters of each method.  The classifier of every
torchvision model is replaced by ``nn.Identity`` so the method owns its heads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

__all__ = ["BackboneSpec", "BACKBONES", "build_backbone", "feature_dim"]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        build: Returns the torchvision model (random init) with its classifier.
        dim: Width D of the pooled feature.
        source: Where the architecture comes from.
    """

    build: Callable[[], nn.Module]
    dim: int
    source: str


def _resnet10() -> nn.Module:
    return ResNet(BasicBlock, [1, 1, 1, 1])


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec(torchvision.models.resnet18, 512, "He et al. 2016; torchvision.models.resnet18"),
    "resnet34": BackboneSpec(torchvision.models.resnet34, 512, "He et al. 2016; torchvision.models.resnet34"),
    "resnet50": BackboneSpec(torchvision.models.resnet50, 2048, "He et al. 2016; torchvision.models.resnet50"),
    "resnet101": BackboneSpec(torchvision.models.resnet101, 2048, "He et al. 2016; torchvision.models.resnet101"),
    "mobilenet_v2": BackboneSpec(torchvision.models.mobilenet_v2, 1280, "Sandler et al. 2018; torchvision.models.mobilenet_v2"),
    "efficientnet_b0": BackboneSpec(torchvision.models.efficientnet_b0, 1280, "Tan & Le 2019; torchvision.models.efficientnet_b0"),
    # lite backbones for CPU training in minutes (same torchvision building blocks)
    "resnet10": BackboneSpec(_resnet10, 512, "torchvision ResNet(BasicBlock, [1, 1, 1, 1]) — a 10-layer ResNet for lite configurations"),
    "mobilenet_v2_035": BackboneSpec(
        lambda: torchvision.models.mobilenet_v2(width_mult=0.35), 1280,
        "torchvision.models.mobilenet_v2(width_mult=0.35) — lite configurations",
    ),
}


def feature_dim(name: str) -> int:
    """Pooled feature width D of backbone ``name``.

    Raises:
        KeyError: Unknown backbone (the message lists the known ones).
    """
    return _spec(name).dim


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def build_backbone(name: str) -> nn.Module:
    """Build backbone ``name`` as a module mapping ``(N, 3, H, W)`` to ``(N, D)``.

    Raises:
        KeyError: Unknown backbone.
    """
    model = _spec(name).build()
    if hasattr(model, "fc"):
        model.fc = nn.Identity()
    elif hasattr(model, "classifier"):
        model.classifier = nn.Identity()
    return model
