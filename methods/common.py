"""Pieces shared by several methods: frame encoders, frame selection, cost entries."""

from __future__ import annotations

from typing import Any

import torch
from evbench.harness.api import CostEntry, TraceStep
from evbench.methods.backbones import build_backbone, feature_dim
from torch import nn

VGG16_FIVE_CROP_GMACS = 5 * 15.47
VGG16_SOURCE = "VGG16 @224 = 15.47 GMACs, five crops averaged (../shared/data/README.md)"
#: Builder kwargs of every method's ``features`` configuration (the shared UCF101 VGG16 features).
FEATURE_CONFIG = {"input_kind": "features", "feature_dim": 4096, "frames": 25, "gmacs_per_frame": VGG16_FIVE_CROP_GMACS}

__all__ = [
    "FEATURE_CONFIG", "VGG16_FIVE_CROP_GMACS", "DOWNSCALE_MODES", "NORMALISATIONS", "downscale", "check_downscale",
    "InputNorm", "evenly_spaced", "PixelEncoder", "FeatureEncoder", "lstm_cell_entry", "make_encoder",
]

#: How lower resolutions are derived from the card's input crop (a per-method, per-configuration setting):
#: ``"antialias"`` — bilinear with antialiasing (``F.interpolate(mode="bilinear", antialias=True)``), what
#: evbench uses where it trains its own weights; ``"nearest"`` — nearest neighbour
#: (``F.interpolate(mode="nearest")``), what the official AR-Net and RSEE data pipelines do to the
#: normalised 224 px crop (``ops/dataset.py`` ``TSNDataSet.rescale_proc``), so official weights expect it.
DOWNSCALE_MODES = ("antialias", "nearest")

#: Input normalisations (per-channel RGB mean and std of pixels in [0, 1]) a method's weights may expect.
#: The harness always delivers ImageNet-normalised frames; a method built with another one re-normalises
#: inside (:class:`InputNorm`).  ``"kinetics"`` is the Kinetics statistics of the official TLEE
#: configurations (``config/cloud_ucf101_resnet50_branch.yml``: mean [0.43216, 0.394666, 0.37645], std
#: [0.22803, 0.22145, 0.216989]).
NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "kinetics": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
}


def check_downscale(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`DOWNSCALE_MODES`.

    Raises:
        ValueError: Unknown mode (the message lists the known ones).
    """
    if mode not in DOWNSCALE_MODES:
        raise ValueError(f"downscale must be one of {', '.join(DOWNSCALE_MODES)}; got {mode!r}")
    return mode


def downscale(frames: torch.Tensor, size: int, mode: str = "antialias") -> torch.Tensor:
    """``(N, 3, H, W)`` → ``(N, 3, size, size)`` with :data:`DOWNSCALE_MODES` ``mode`` (pre-processing, not counted).

    Frames already at ``size`` are returned unchanged.  ``"nearest"`` reproduces the
    official AR-Net/RSEE ``rescale_proc`` exactly (nearest neighbour commutes with the
    per-channel normalisation, so resizing normalised or raw frames is the same).

    Raises:
        ValueError: Unknown ``mode``.
    """
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    if check_downscale(mode) == "nearest":
        return nn.functional.interpolate(frames, size=(size, size), mode="nearest")
    return nn.functional.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class InputNorm(nn.Module):
    """Re-normalise ImageNet-normalised frames to the statistics a method's weights expect.

    ``x_own = (x·s_in + m_in − m) / s`` per channel — exact (an affine map of the
    harness's ImageNet-normalised input, ``harness/data/transforms.py``), not counted
    in GMACs (pre-processing).  Identity for ``"imagenet"``.

    Args:
        name: A key of :data:`NORMALISATIONS`.

    Shapes:
        ``(..., 3, H, W)`` → same.

    Raises:
        ValueError: Unknown ``name``.
    """

    def __init__(self, name: str = "imagenet") -> None:
        super().__init__()
        if name not in NORMALISATIONS:
            raise ValueError(f"input_norm must be one of {', '.join(NORMALISATIONS)}; got {name!r}")
        self.name = name
        (m_in, s_in), (m, s) = NORMALISATIONS["imagenet"], NORMALISATIONS[name]
        scale = torch.tensor([a / b for a, b in zip(s_in, s, strict=True)]).view(3, 1, 1)
        shift = torch.tensor([(a - c) / b for a, c, b in zip(m_in, m, s, strict=True)]).view(3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    @property
    def mean(self) -> tuple[float, float, float]:
        """Channel mean the method's weights expect (pixels in [0, 1])."""
        return NORMALISATIONS[self.name][0]

    @property
    def std(self) -> tuple[float, float, float]:
        """Channel std the method's weights expect."""
        return NORMALISATIONS[self.name][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised ``(..., 3, H, W)`` → normalised with :attr:`mean` / :attr:`std`."""
        if self.name == "imagenet":
            return x
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def evenly_spaced(total: int, k: int) -> list[int]:
    """``k`` evenly spaced frame indices out of ``total`` (segment centres, TSN test sampling).

    ``k <= 0`` or ``k >= total`` selects every frame.
    """
    if k <= 0 or k >= total:
        return list(range(total))
    return [int((i + 0.5) * total / k) for i in range(k)]


class PixelEncoder(nn.Module):
    """A CNN backbone on one resolution: ``(N, 3, R, R) -> (N, D)``.

    Frames arrive at the card's input resolution (224 px crops); when
    ``resolution`` is lower the crop is resized with :func:`downscale` ``mode``
    (antialiased bilinear by default, ``"nearest"`` for official AR-Net/RSEE
    weights) — "lower resolutions derived from the 224 crop" (DESIGN §6).
    Resizing is pre-processing and is not counted in GMACs.

    Args:
        backbone: A name in :data:`evbench.methods.backbones.BACKBONES`.
        resolution: Side in px the backbone runs at.
        module_name: Attribute path of the backbone in the owning method (cost key).
        downscale: One of :data:`DOWNSCALE_MODES`.

    Raises:
        ValueError: Unknown ``downscale``.
    """

    def __init__(self, backbone: str, resolution: int, module_name: str = "encoder.backbone",
                 downscale: str = "antialias") -> None:
        super().__init__()
        self.downscale = check_downscale(downscale)
        self.backbone = build_backbone(backbone)
        self.backbone_name = backbone
        self.dim = feature_dim(backbone)
        self.resolution = resolution
        self.module_name = module_name

    def resize(self, frames: torch.Tensor) -> torch.Tensor:
        """Resize ``(N, 3, H, W)`` frames to ``(N, 3, R, R)`` if needed (:func:`downscale`)."""
        return downscale(frames, self.resolution, self.downscale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` normalised frames -> ``(N, D)`` pooled features."""
        return self.backbone(self.resize(frames))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-frame input shape of the backbone."""
        return (3, self.resolution, self.resolution)

    def cost_entry(self) -> CostEntry:
        """Counted cost entry of one frame through the backbone."""
        return CostEntry(self.module_name, self.input_shape, role="backbone")

    def step(self, frame: int, exit: str | None = None) -> TraceStep:
        """The trace step of encoding frame ``frame``."""
        return TraceStep(frame, self.module_name, self.input_shape, exit=exit, role="backbone")


class FeatureEncoder(nn.Module):
    """Pre-extracted per-frame features: identity on ``(N, D)``, with a declared cost.

    The CNN that produced the features ran outside evbench; its per-frame cost
    (e.g. 5 × 15.47 GMACs for five-crop VGG16 on the shared UCF101 features) is
    declared, not counted, and attributed to role ``"input"``.

    Args:
        dim: Feature width D.
        gmacs_per_frame: Declared GMACs to produce one frame's feature.
        source: Where that cost comes from (default: the VGG16 five-crop cost for
            D = 4096, else "declared per-frame feature cost").
    """

    module_name = "frame_features"

    def __init__(self, dim: int, gmacs_per_frame: float, source: str = "") -> None:
        super().__init__()
        self.dim = dim
        self.gmacs_per_frame = float(gmacs_per_frame)
        # 4096-d features are the shared five-crop VGG16 relu6 dump; anything else names no source
        self.source = source or (VGG16_SOURCE if dim == 4096 else "declared per-frame feature cost")

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` -> ``(N, D)`` unchanged."""
        return frames

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-frame feature shape."""
        return (self.dim,)

    def cost_entry(self) -> CostEntry:
        """Declared cost entry of producing one frame's feature."""
        return CostEntry(self.module_name, self.input_shape, role="input",
                         declared_gmacs=self.gmacs_per_frame, source=self.source)

    def step(self, frame: int, exit: str | None = None) -> TraceStep:
        """The trace step of reading frame ``frame``'s feature."""
        return TraceStep(frame, self.module_name, self.input_shape, exit=exit, role="input")


def make_encoder(
    input_kind: str, *, backbone: str = "", resolution: int = 0, feature_dim: int = 0,
    gmacs_per_frame: float = 0.0, gmacs_source: str = "", module_name: str = "encoder.backbone",
) -> PixelEncoder | FeatureEncoder:
    """A :class:`PixelEncoder` or :class:`FeatureEncoder` for ``input_kind``.

    Raises:
        ValueError: Unknown ``input_kind`` or a feature encoder without ``feature_dim``.
    """
    if input_kind == "pixels":
        return PixelEncoder(backbone, resolution, module_name)
    if input_kind == "features":
        if feature_dim <= 0:
            raise ValueError("feature methods need feature_dim > 0")
        return FeatureEncoder(feature_dim, gmacs_per_frame, gmacs_source)
    raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")


def lstm_cell_entry(module: str, input_size: int, hidden: int, role: str = "head") -> CostEntry:
    """Counted cost entry of one ``nn.LSTMCell(input_size, hidden)`` step."""

    def inputs() -> tuple[Any, ...]:
        return (torch.zeros(1, input_size), (torch.zeros(1, hidden), torch.zeros(1, hidden)))

    return CostEntry(module, (input_size,), role=role, make_inputs=inputs)
