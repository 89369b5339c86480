"""Dynamic-inference grid: frames × depth with prediction checkpoints.

W. Wu, D. He, X. Tan, S. Chen, Y. Yang, S. Wen, "Dynamic Inference: A New
Approach Toward Efficient Video Action Recognition", CVPR Workshops 2020
(Joint Workshop on Efficient Deep Learning in Computer Vision), arXiv:2002.03342.
No public code: everything below is built from the paper's description —
input frames and network depth form a 2-D grid, checkpoints with a prediction
module sit on the grid, inference walks a predefined route and stops at the
first checkpoint whose early-stop criterion holds; a frame permutation keeps
the temporal coverage of early predictions, and an online temporal shift
lets progressive computation model temporal relations.

Design decisions the paper leaves open, and what is chosen here:

1. **Depth axis.** The paper instantiates MSDNet and a ResNet with temporal
   shift; here a torchvision ResNet (ResNet-50 ``paper``, ResNet-10 ``lite``)
   split into three depth levels — after layer2, layer3 and layer4
   (:func:`evbench.methods.exits.resnet_stages`, the same split as TLEE's exits) — each
   a separately costed module ``stages.{d}``.  On ``(B, T, D)`` features the
   depth axis is ``depth`` blocks of Linear + ReLU (``hidden`` wide).
2. **Frame axis / permutation.** Frames are visited in the coarse-to-fine
   order of :func:`evbench.methods.exits.coarse_to_fine_order` (middle, ends, then
   bisection — every prefix spans the clip; FrameExit's order for 10 frames);
   the paper's exact permutation is not given.
3. **Checkpoints.** Every grid cell ``(i, d)`` is a checkpoint.  Its prediction
   module is a per-depth head (global average pooling + linear, shared by all
   frames, ``heads.{d}``); the checkpoint's prediction is the mean of the
   depth-``d`` head logits over the frames processed so far at that depth
   (TSN average consensus).
4. **Stop criterion.** Max softmax of the checkpoint prediction ≥
   ``threshold`` (the ``threshold`` knob, default 0.9); the last cell of the
   route always stops.  For a fixed input the visited cells do not depend on
   the threshold, so GMACs/video is monotone in it.
5. **Routes** (``route`` knob): ``depth_first`` (each frame through all depths
   before the next frame), ``frame_first`` (all frames at depth 1, then depth 2,
   …) and ``diagonal`` (anti-diagonals ``i + d = s``, shallow cells first) —
   the default, as the joint input- and depth-wise variant.  Every route visits
   ``(i, d)`` after ``(i, d−1)`` and ``(i−1, d−1)``, so the shift below always
   has its input.
6. **Online temporal shift.** Before stage ``d ≥ 1`` (not the raw frame),
   the first 1/``shift_div`` (1/8) channels of a frame's stage input are
   replaced by those of the frame processed just before it in the order (zeros
   for the first) — one-directional, from frames already processed.  TSM puts
   the shift in every residual block; here it sits at the stage boundaries so
   the torchvision blocks stay unmodified.  A copy, not costed.
7. **Training.** One joint stage: the full grid on every clip, loss = mean
   over all checkpoints of CE (deep supervision of every cell).
8. **Costs.** A cell charges its stage and its head; a feature frame also
   charges the declared feature-extractor cost when first touched.  Samples
   that stop run nothing more (batches shrink with ``index_select``).
9. **Frames.** ``frames`` = 8 (the TSN/TSM setting); the input clip must have
   exactly that many frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobError, KnobSpec, Method, MethodCard, Output
from evbench.harness.registry import register_method
from evbench.methods.backbones import build_backbone
from evbench.methods.common import FEATURE_CONFIG, make_encoder
from evbench.methods.exits import (
    ActiveSet,
    TraceRecorder,
    check_clip,
    coarse_to_fine_order,
    max_softmax,
    online_shift,
    resize_frames,
    resnet_stages,
    select_rows,
    stage_shapes,
)
from torch import nn

__all__ = ["DynGrid", "CheckpointHead", "grid_route", "ROUTES", "build_dyngrid", "CONFIGS"]

PAPER = ('W. Wu, D. He, X. Tan, S. Chen, Y. Yang, S. Wen, "Dynamic Inference: A New Approach Toward Efficient '
         'Video Action Recognition", CVPR Workshops 2020')
DOI = "arXiv:2002.03342"
ROUTES = ("diagonal", "depth_first", "frame_first")

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"input_kind": "pixels", "backbone": "resnet50", "resolution": 224, "frames": 8},
    "lite": {"input_kind": "pixels", "backbone": "resnet10", "resolution": 112, "frames": 8},
    "features": {**FEATURE_CONFIG, "hidden": 512, "depth": 3},
}

THRESHOLD_SWEEP = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)
LAYER_NAMES = ("layer2", "layer3", "layer4")


def grid_route(route: str, frames: int, depth: int) -> list[tuple[int, int]]:
    """Cells ``(i, d)`` (i = position in the frame order, d = depth level) in visiting order.

    Raises:
        KnobError: Unknown route.
    """
    if route == "depth_first":
        return [(i, d) for i in range(frames) for d in range(depth)]
    if route == "frame_first":
        return [(i, d) for d in range(depth) for i in range(frames)]
    if route == "diagonal":
        return [(s - d, d) for s in range(frames + depth - 1) for d in range(depth) if 0 <= s - d < frames]
    raise KnobError(f"dyngrid: unknown route {route!r}; routes: {', '.join(ROUTES)}")


class CheckpointHead(nn.Module):
    """Prediction module of a depth level: global average pooling (feature maps) + linear.

    Shapes:
        ``(N, C, H, W)`` or ``(N, C)`` → ``(N, num_classes)``.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of a stage output."""
        if x.dim() == 4:
            x = self.pool(x).flatten(1)
        return self.fc(x)


class DynGrid(Method):
    """Dynamic-inference grid (see the module docstring for every design decision).

    Input ``x``: ``(B, T, 3, R, R)`` normalised frames or ``(B, T, D)``
    features; output logits ``(B, num_classes)`` of the stopping checkpoint.

    Args:
        num_classes: Classes C.
        config: Configuration name.
        input_kind: ``"pixels"`` or ``"features"``.
        frames: T.
        backbone: ResNet for pixels (``resnet50`` paper, ``resnet10`` lite).
        resolution: Frame side R in px.
        hidden: MLP width of the features variant.
        depth: Depth levels of the features variant (pixels: 3).
        shift_div: 1/fraction of channels shifted online (8).
        feature_dim: D (features).
        gmacs_per_frame: Declared cost of one input feature (features).

    Raises:
        ValueError: Unknown ``input_kind``.
    """

    def __init__(self, *, num_classes: int, config: str, input_kind: str, frames: int, backbone: str = "resnet50",
                 resolution: int = 224, hidden: int = 512, depth: int = 3, shift_div: int = 8, feature_dim: int = 0,
                 gmacs_per_frame: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.input_kind = input_kind
        self.frames = frames
        self.shift_div = shift_div
        self.order = coarse_to_fine_order(frames)
        if input_kind == "pixels":
            self.resolution = resolution
            self.stages = resnet_stages(build_backbone(backbone), ("layer2", "layer3"), pool_last=False)
            self.backbone_arch = backbone  # its cached-backbone architecture (backbone_slots)
            self.stage_inputs = stage_shapes(self.stages, (3, resolution, resolution))
        elif input_kind == "features":
            self.resolution = 0
            self.encoder = make_encoder("features", feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame)
            dims = [feature_dim] + [hidden] * depth
            self.stages = nn.ModuleList([nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(dims[:-1], dims[1:], strict=True)])
            self.stage_inputs = [(d,) for d in dims]
        else:
            raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")
        self.depth = len(self.stages)
        self.feature_dim = feature_dim
        self.heads = nn.ModuleList([CheckpointHead(self.stage_inputs[d + 1][0], num_classes) for d in range(self.depth)])

    # -- inference -------------------------------------------------------------------
    def _frame_input(self, frames: torch.Tensor) -> torch.Tensor:
        return resize_frames(frames, self.resolution) if self.input_kind == "pixels" else frames

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Walk the route; each sample stops at its first confident checkpoint.

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``; T must equal the card's frames.
            knobs: ``threshold`` (float), ``route`` (str).

        Returns:
            :class:`Output`; decisions per sample: ``frames`` (frames touched, in
            order), ``exit_frame``, ``exit_depth``, ``exit_layer``, ``cells``,
            ``route``, ``exit_confidence``.

        Raises:
            KnobError: Unknown knob or route.
            ValueError: Wrong input layout or T.
        """
        kn = self.resolve_knobs(knobs)
        b, t_total = check_clip(x, "dyngrid", self.input_kind, self.feature_dim, self.frames)
        route = grid_route(str(kn["route"]), t_total, self.depth)
        threshold = float(kn["threshold"])
        active = ActiveSet(b, x.device)
        rec = TraceRecorder(b)
        logits = x.new_zeros(b, self.num_classes)
        dec: list[dict[str, Any]] = [{"frames": [], "exit_frame": None, "exit_depth": None, "exit_layer": None,
                                      "cells": 0, "route": str(kn["route"]), "frames_total": t_total} for _ in range(b)]
        outs: dict[tuple[int, int], torch.Tensor] = {}  # (i, d) -> stage d output of frame order[i] (compact rows)
        uses: dict[tuple[int, int], int] = {}
        sums: list[torch.Tensor | None] = [None] * self.depth
        for n_cell, (i, d) in enumerate(route):
            f = self.order[i]
            ids = active.tolist()
            if d == 0:
                h = self._frame_input(active.take(x[:, f]))
                if self.input_kind == "features":
                    rec.add(ids, f, self.encoder.module_name, (self.feature_dim,), "input")
                for s in ids:
                    dec[s]["frames"].append(f)
            else:
                h = online_shift(outs[(i, d - 1)], outs.get((i - 1, d - 1)), self.shift_div)
                for key in ((i, d - 1), (i - 1, d - 1)):
                    if key in uses:
                        uses[key] -= 1
                        if uses[key] == 0:
                            del outs[key], uses[key]
            out = self.stages[d](h)
            rec.add(ids, f, f"stages.{d}", self.stage_inputs[d], "backbone")
            if d < self.depth - 1:
                outs[(i, d)] = out
                uses[(i, d)] = 1 + (1 if i + 1 < t_total else 0)
            head = self.heads[d](out)
            rec.add(ids, f, f"heads.{d}", self.stage_inputs[d + 1], "head")
            sums[d] = head if sums[d] is None else sums[d] + head
            pred = sums[d] / (i + 1)
            for s in ids:
                dec[s]["cells"] += 1
            # the stop test (confident(pred, threshold, strict=False)) with one host sync per cell
            conf = max_softmax(pred)
            conf_mask = (conf >= threshold).tolist()
            last_cell = n_cell == len(route) - 1
            gone = [j for j, c in enumerate(conf_mask) if c or last_cell]
            if gone:
                conf_val = conf.tolist()
                for j in gone:
                    s = ids[j]
                    logits[s] = pred[j]
                    dec[s].update(exit_frame=f, exit_depth=d, exit_confidence=conf_val[j],
                                  exit_layer=LAYER_NAMES[d] if self.input_kind == "pixels" else f"block{d + 1}")
                    rec.mark_exit([s], "confidence" if conf_mask[j] else "last_frame")
            keep = active.retire_at(gone)
            if not active:
                break
            if keep is not None:
                for key in list(outs):
                    (outs[key],) = select_rows(keep, outs[key])
                sums = [None if v is None else v.index_select(0, keep) for v in sums]
        for d_ in dec:
            d_["frames_processed"] = len(d_["frames"])
        return Output(logits, rec.steps, dec)

    # -- cost ----------------------------------------------------------------------------
    def cost_entries(self) -> list[CostEntry]:
        """Stages (backbone) and heads (head) per depth, plus the feature input (features)."""
        entries = [self.encoder.cost_entry()] if self.input_kind == "features" else []
        entries += [CostEntry(f"stages.{d}", self.stage_inputs[d], role="backbone") for d in range(self.depth)]
        entries += [CostEntry(f"heads.{d}", self.stage_inputs[d + 1], role="head") for d in range(self.depth)]
        return entries

    # -- training ---------------------------------------------------------------------------
    def backbone_slots(self) -> list[Any]:
        """The cached TSN ResNet at the frame resolution (:mod:`evbench.harness.backbone_cache`, pixels).

        Started from it, the ``joint`` stage keeps the ResNet frozen (eval mode;
        the online shift still mixes the previous frame's channels into its stage
        inputs) and trains the checkpoint heads (CPU budget).
        """
        if self.input_kind != "pixels":
            return []
        from evbench.harness.backbone_cache import positional_slot

        return [positional_slot("stages", self.backbone_arch, self.resolution, self.stages)]

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """Every parameter; the checkpoint heads only when started from the cached backbone."""
        if getattr(self, "backbone_pretrained", None) and self.input_kind == "pixels":
            return list(self.heads.parameters())
        return [p for p in self.parameters() if p.requires_grad]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean CE over every checkpoint of the full grid (design decision 7).

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``.
            y: ``(B,)`` labels.
            stage: ``joint``.
            epoch: Unused.

        Returns:
            ``(loss, logs)``.

        Raises:
            ValueError: Unknown stage.
        """
        if stage != "joint":
            raise ValueError(f"dyngrid has no stage {stage!r}; stages: {self.card.stages}")
        prev: list[torch.Tensor | None] = [None] * self.depth
        sums: list[torch.Tensor | None] = [None] * self.depth
        loss = x.new_zeros(())
        n = 0
        frozen = bool(getattr(self, "backbone_pretrained", None)) and self.input_kind == "pixels"
        if frozen:  # the cached TSN ResNet stays as loaded (backbone_slots)
            self.stages.eval()
        for i, f in enumerate(self.order):
            h = self._frame_input(x[:, f])
            for d in range(self.depth):
                if d > 0:
                    cur = h
                    h = online_shift(cur, prev[d], self.shift_div)
                    prev[d] = cur
                with torch.no_grad() if frozen else contextlib.nullcontext():
                    h = self.stages[d](h)
                head = self.heads[d](h)
                sums[d] = head if sums[d] is None else sums[d] + head
                loss = loss + nn.functional.cross_entropy(sums[d] / (i + 1), y)
                n += 1
        loss = loss / n
        final = sums[-1]
        return loss, {"ce": loss.item(), "train_top1": (final.argmax(1) == y).float().mean().item()}


def dyngrid_card(*, config: str, input_kind: str = "pixels", frames: int = 8, backbone: str = "resnet50",
                 resolution: int = 224, depth: int = 3, feature_dim: int = 0, **_: Any) -> MethodCard:
    """The dyngrid card of a configuration (no network is built); arguments as for :class:`DynGrid`."""
    pixels = input_kind == "pixels"
    depth = len(LAYER_NAMES) if pixels else depth
    resolution = resolution if pixels else 0
    return MethodCard(
        action_space="grid-routes",
        name="dyngrid",
        title=(f"Dynamic-inference grid ({backbone} @{resolution}, {frames} frames × {depth} depths)"
               if pixels else f"Dynamic-inference grid (features, MLP × {depth})"),
        paper=PAPER, doi=DOI, code="", input_kind=input_kind, frames=frames,
        resolution=resolution, resolutions=(resolution,) if pixels else (),
        feature_dim=0 if pixels else feature_dim,
        knobs=(
            KnobSpec("threshold", 0.9, "stop at the first checkpoint whose max softmax >= threshold "
                     "(> 1 walks the whole grid)", THRESHOLD_SWEEP, low=0.0),
            KnobSpec("route", "diagonal", "grid route: diagonal, depth_first or frame_first", ROUTES, choices=ROUTES),
        ),
        stages=("joint",),
        upper_bound_knobs={"threshold": 1.01},
        config=config,
        notes=("No public code; every open design decision is listed in methods/dyngrid.py's docstring "
               "(ResNet split after layer2/3/4, checkpoint at every cell with TSN-averaged per-depth heads, "
               "max-softmax stop, coarse-to-fine frame order, online shift of 1/8 channels at stage inputs "
               "from the previously processed frame, joint deep-supervision training). Random initialisation."),
    )


@register_method("dyngrid", configs=CONFIGS, card=dyngrid_card,
                 summary="Dynamic inference: frames x depth grid with checkpoints (CVPR-W 2020)")
def build_dyngrid(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 8,
                  backbone: str = "resnet50", resolution: int = 224, hidden: int = 512, depth: int = 3,
                  shift_div: int = 8, feature_dim: int = 0, gmacs_per_frame: float = 0.0) -> DynGrid:
    """Dynamic-inference grid on pixels ``(B, T, 3, R, R)`` or features ``(B, T, D)``; see :class:`DynGrid`."""
    return DynGrid(num_classes=num_classes, config=config, input_kind=input_kind, frames=frames, backbone=backbone,
                   resolution=resolution, hidden=hidden, depth=depth, shift_div=shift_div, feature_dim=feature_dim,
                   gmacs_per_frame=gmacs_per_frame)
