"""FrameExit: conditional early exiting over frames.

A. Ghodrati, B. Ehteshami Bejnordi, A. Habibian, "FrameExit: Conditional
Early Exiting for Efficient Video Recognition", CVPR 2021, arXiv:2104.13400.
Official (inference-only) code: https://github.com/Qualcomm-AI-research/FrameExit
(``model/adaptive_models.py`` ``ConditionalFrameExitInferenceModel``,
``ExitingGate``, ``MultiLayerPerceptron``, ``MaxPooling``; ``inference.py``;
``config/activitynet_inference_2d.yml``).  Reimplemented here, not copied.

Inference: frames in the coarse-to-fine order ``[5, 0, 9, 2, 7, 4, 6, 3, 8, 1]``
(:func:`evbench.methods.exits.coarse_to_fine_order`).  Each frame: ResNet-50 (pooled
2048-d) → MLP 2048 → 4096 (Linear, BatchNorm1d, ReLU) → element-wise max with
the accumulated feature (feature reuse) → ``z_t``.  Frame 0 exits when the
max softmax of ``classifiers.0`` > ``first_threshold`` (0.99); frame ``t`` in
1…T−2 asks gate ``exit_selector.{t−1}`` (:class:`evbench.methods.exits.ExitingGate`)
on [``z_t``, ``z_{t−1}``]; the last frame always exits.  The prediction at
exit ``t`` is ``classifiers.{t}(z_t)`` — one classifier and one gate per time
step; classifiers of frames that do not exit are not run (as officially).

**Forced schedules** (``knobs={"force": n}``, n = 1…T): every video exits after
the first ``n`` frames of the order (``classifiers.{n−1}``), the gates before it
still run — cost and latency at a paper's exit-step mix.  **Faithfulness**
(``python -m evbench.bench.faithfulness``): the official
``ConditionalFrameExitInferenceModel`` driven by ``inference.py``'s loop and
evbench agree to ≤ 1e-4 with identical exit steps, free and forced.  Departures:
per-sample decisions in a batch (official: sample 0 of a batch of 1); the
classifier of an exiting step runs only for the exiting samples.

The released gates output the probability of *continuing*
(``gate_selection`` exits when the thresholded sigmoid is 0), so the exit
probability is ``sigmoid(−logit)`` and the ``threshold`` knob (the gate
threshold, default 0.5) exits when it is ``> threshold`` — exactly the
official rule at 0.5; raising it can only postpone exits (monotone GMACs).
TLEE (:mod:`evbench.methods.tlee`) builds on this with layer exits, a single shared
classifier and a smaller gate.

Training (the repository releases no training code; the paper's loss is a
per-step classification loss plus a gate loss against pseudo-labels
``exit = CE_t ≤ β·exp(t/2)``): ``classifiers`` stage — backbone, MLP and the T
classifiers with CE at every step on the accumulated feature; ``gates``
stage — the gates only (rest frozen, eval), BCE against those pseudo-labels
(``gate_beta`` β).  Running the two terms as two stages (rather than one
joint loss) is this implementation's choice, the same split TLEE's official
code uses; the released checkpoints are the paper's.

Costs: ``backbone`` (3, R, R), ``mlp``, ``classifiers.{t}``, ``exit_selector.{t}``
(counted with fvcore); the official ``inference.py`` charges 4.12 GMACs per
processed frame and nothing for the MLP (8.4 MMACs), classifiers and gates
(≈ 0.53 MMACs each).

The ``features`` configuration runs the same gates, max reuse and
per-step classifiers on ``(B, T, D)`` features (MLP D → ``mlp_dim``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobSpec, Method, MethodCard, Output
from evbench.harness.registry import register_method
from evbench.methods.backbones import build_backbone
from evbench.methods.backbones import feature_dim as backbone_dim
from evbench.methods.checkpoints import (
    CheckpointError,
    load_converted,
    read_state_dict,
    strip_prefix,
)
from evbench.methods.common import FEATURE_CONFIG, make_encoder
from evbench.methods.exits import (
    ActiveSet,
    ExitingGate,
    MultiLayerPerceptron,
    TraceRecorder,
    check_clip,
    coarse_to_fine_order,
    confident,
    gate_exit,
    pair_entry,
    resize_frames,
    running_max,
    select_rows,
)
from torch import nn

__all__ = ["FrameExit", "build_frameexit", "convert_official_frameexit", "load_official_frameexit", "CONFIGS"]

PAPER = ('A. Ghodrati, B. Ehteshami Bejnordi, A. Habibian, "FrameExit: Conditional Early Exiting for Efficient '
         'Video Recognition", CVPR 2021')
DOI = "arXiv:2104.13400"
CODE = "https://github.com/Qualcomm-AI-research/FrameExit"

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"input_kind": "pixels", "backbone": "resnet50", "resolution": 224, "frames": 10, "mlp_dim": 4096,
              "gate_beta": 0.01},
    "lite": {"input_kind": "pixels", "backbone": "resnet10", "resolution": 112, "frames": 8, "mlp_dim": 512,
             "gate_beta": 0.05},
    # gate_beta 0.001: on the 1,153-clip UCF101 feature set the training CE is near 0 and larger b labels
    # (almost) every exit point "exit" (label rate 0.99 at b = 0.02), which leaves the gate knob without a range
    "features": {**FEATURE_CONFIG, "mlp_dim": 1024, "gate_beta": 0.001},
}

GATE_SWEEP = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.01)


class FrameExit(Method):
    """FrameExit (see the module docstring).

    Input ``x``: ``(B, T, 3, R, R)`` normalised frames or ``(B, T, D)``
    features; output logits ``(B, num_classes)`` of the exit step.

    Args:
        num_classes: Classes C.
        config: Configuration name.
        input_kind: ``"pixels"`` or ``"features"``.
        frames: T (one classifier per step, one gate per step after the first).
        backbone: Frame CNN (``resnet50`` paper, ``resnet10`` lite).
        resolution: Frame side R in px.
        mlp_dim: MLP output width (4096).
        gate_beta: β of the gate pseudo-label ``CE_t ≤ β·exp(t/2)``.
        feature_dim: D (features).
        gmacs_per_frame: Declared cost of one input feature (features).

    Raises:
        ValueError: Unknown ``input_kind``.
    """

    def __init__(self, *, num_classes: int, config: str, input_kind: str, frames: int, backbone: str = "resnet50",
                 resolution: int = 224, mlp_dim: int = 4096, gate_beta: float = 0.01, feature_dim: int = 0,
                 gmacs_per_frame: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.input_kind = input_kind
        self.frames = frames
        self.gate_beta = gate_beta
        self.order = coarse_to_fine_order(frames)
        if input_kind == "pixels":
            self.resolution = resolution
            net = build_backbone(backbone)
            # official: torchvision children()[:-1] (keys backbone.0 … backbone.8), then flatten
            self.backbone = nn.Sequential(*list(net.children())[:-1], nn.Flatten(1))
            self.backbone_arch = backbone  # its cached-backbone architecture (backbone_slots)
            dim = backbone_dim(backbone)
        elif input_kind == "features":
            self.resolution = 0
            self.encoder = make_encoder("features", feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame)
            dim = feature_dim
        else:
            raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")
        self.dim = dim
        self.mlp_dim = mlp_dim
        self.mlp = MultiLayerPerceptron(dim, mlp_dim)
        self.classifiers = nn.ModuleList([nn.Linear(mlp_dim, num_classes) for _ in range(frames)])
        self.exit_selector = nn.ModuleList([ExitingGate(mlp_dim) for _ in range(frames - 1)])
    @property
    def inference_settings(self) -> dict[str, Any]:
        """Input handling a result row records: ImageNet statistics (as the official configurations), downscaling."""
        pixels = self.input_kind == "pixels"
        return {"input_norm": "imagenet" if pixels else None, "downscale": "antialias" if pixels else None}

    # -- inference -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Run FrameExit with realised savings.

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``; T must equal the card's frames.
            knobs: ``threshold`` (gate), ``first_threshold``; ``force``: ``n`` of
                ``card.force_options`` (1…T) — every video exits after the first
                ``n`` frames of the order (``classifiers.{n−1}``); the first-frame
                classifier and the gates before step ``n`` still run, so forced
                costs include them.

        Returns:
            :class:`Output`; decisions per sample: ``frames`` (processed, in
            order), ``exit_frame``, ``exit_step``, ``frames_processed``,
            ``frames_covered``, ``frames_total``.

        Raises:
            KnobError: Unknown knob or forced value.
            ValueError: Wrong input layout or T.
        """
        kn = self.resolve_knobs(knobs)
        b, t_total = check_clip(x, "frameexit", self.input_kind, self.dim, self.frames)
        thr, fthr = float(kn["threshold"]), float(kn["first_threshold"])
        forced = None if kn["force"] is None else int(kn["force"])
        active = ActiveSet(b, x.device)
        rec = TraceRecorder(b)
        logits = x.new_zeros(b, self.num_classes)
        dec: list[dict[str, Any]] = [{"frames": [], "exit_frame": None, "exit_step": None, "frames_covered": t_total,
                                      "frames_total": t_total} for _ in range(b)]
        zacc: torch.Tensor | None = None
        last = len(self.order) - 1
        for p, f in enumerate(self.order):
            ids = active.tolist()
            h = active.take(x[:, f])
            if self.input_kind == "pixels":
                h = self.backbone(resize_frames(h, self.resolution))
                rec.add(ids, f, "backbone", (3, self.resolution, self.resolution), "backbone")
            else:
                rec.add(ids, f, self.encoder.module_name, (self.dim,), "input")
            e = self.mlp(h)
            rec.add(ids, f, "mlp", (self.dim,), "head")
            z = running_max(zacc, e)
            for i in ids:
                dec[i]["frames"].append(f)
            # exit decisions on the host: one sync per step (the control flow needs it), none when forced
            n = len(ids)
            if p == 0:
                out = self.classifiers[0](z)
                rec.add(ids, f, "classifiers.0", (self.mlp_dim,), "head")
                texit = [forced == 1] * n if forced is not None else confident(out, fthr, strict=True).tolist()
            elif p == last:
                out = self.classifiers[p](z)
                rec.add(ids, f, f"classifiers.{p}", (self.mlp_dim,), "head")
                texit = [True] * n
            else:
                g = self.exit_selector[p - 1](z, zacc)
                rec.add(ids, f, f"exit_selector.{p - 1}", (self.mlp_dim,), "policy")
                texit = ([p == forced - 1] * n if forced is not None
                         else gate_exit(g, thr, invert=True, strict=True).tolist())
                out = None
                if all(texit):  # every sample exits (a batch-1 exit): no gather/scatter
                    out = self.classifiers[p](z)
                    rec.add(ids, f, f"classifiers.{p}", (self.mlp_dim,), "head")
                elif any(texit):
                    rows = [j for j, u in enumerate(texit) if u]
                    sel = torch.tensor(rows, dtype=torch.long, device=x.device)
                    out = z.new_zeros(z.shape[0], self.num_classes)
                    out.index_copy_(0, sel, self.classifiers[p](z.index_select(0, sel)))
                    rec.add([ids[j] for j in rows], f, f"classifiers.{p}", (self.mlp_dim,), "head")
            gone = [j for j, u in enumerate(texit) if u]
            for j in gone:
                i = ids[j]
                logits[i] = out[j]
                dec[i].update(exit_frame=f, exit_step=p, frames_processed=p + 1)
                rec.mark_exit([i], "forced" if forced is not None else "confidence" if p == 0
                              else "last_frame" if p == last else "gate")
            zacc = z
            keep = active.retire_at(gone)
            if not active:
                break
            (zacc,) = select_rows(keep, zacc)
        return Output(logits, rec.steps, dec)

    # -- cost ----------------------------------------------------------------------------
    def cost_entries(self) -> list[CostEntry]:
        """Backbone or feature input, MLP, per-step classifiers (head) and gates (policy)."""
        if self.input_kind == "pixels":
            entries = [CostEntry("backbone", (3, self.resolution, self.resolution), role="backbone")]
        else:
            entries = [self.encoder.cost_entry()]
        entries.append(CostEntry("mlp", (self.dim,), role="head"))
        entries += [CostEntry(f"classifiers.{t}", (self.mlp_dim,), role="head") for t in range(self.frames)]
        entries += [pair_entry(f"exit_selector.{t}", self.mlp_dim, role="policy") for t in range(self.frames - 1)]
        return entries

    # -- training ---------------------------------------------------------------------------
    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``classifiers``: backbone, MLP, classifiers; ``gates``: the gates.

        Raises:
            ValueError: Unknown stage.
        """
        if stage == "gates":
            return list(self.exit_selector.parameters())
        if stage == "classifiers":
            frozen = bool(getattr(self, "backbone_pretrained", None))
            mods = [self.mlp, self.classifiers] + ([self.backbone] if self.input_kind == "pixels" and not frozen
                                                   else [])
            return [p for m in mods for p in m.parameters()]
        raise ValueError(f"frameexit has no stage {stage!r}; stages: {self.card.stages}")

    def backbone_slots(self) -> list[Any]:
        """The cached TSN ResNet at the frame resolution (:mod:`evbench.harness.backbone_cache`, pixels).

        The paper starts from a trained ResNet (§4.1); started from the cached
        TSN ResNet, the ``classifiers`` stage keeps it frozen (eval mode) and
        trains the MLP and the per-step classifiers (CPU budget), then the gates.
        """
        if self.input_kind != "pixels":
            return []
        from evbench.harness.backbone_cache import positional_slot

        return [positional_slot("backbone", self.backbone_arch, self.resolution, self.backbone)]

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """About 3/4 of the budget for the classifiers, the rest for the gates."""
        first = max(1, round(epochs * 3 / 4))
        return first if stage == "classifiers" else max(1, epochs - first)

    def _embed(self, x: torch.Tensor, f: int) -> torch.Tensor:
        h = x[:, f]
        if self.input_kind == "pixels":
            h = self.backbone(resize_frames(h, self.resolution))
        return self.mlp(h)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """``classifiers``: mean_t CE(classifiers.t(z_t)); ``gates``: mean_t BCE(gate_t, CE_t ≤ β·exp(t/2)).

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``.
            y: ``(B,)`` labels.
            stage: ``classifiers`` or ``gates``.
            epoch: Unused.

        Returns:
            ``(loss, logs)``.

        Raises:
            ValueError: Unknown stage.
        """
        if stage == "classifiers":
            zacc = None
            loss = x.new_zeros(())
            frozen = bool(getattr(self, "backbone_pretrained", None)) and self.input_kind == "pixels"
            if frozen:  # the cached TSN ResNet stays as loaded (backbone_slots)
                self.backbone.eval()
            for p, f in enumerate(self.order):
                if frozen:
                    with torch.no_grad():
                        h = self.backbone(resize_frames(x[:, f], self.resolution))
                    e = self.mlp(h)
                else:
                    e = self._embed(x, f)
                zacc = running_max(zacc, e)
                out = self.classifiers[p](zacc)
                loss = loss + nn.functional.cross_entropy(out, y)
            loss = loss / len(self.order)
            return loss, {"ce": loss.item(), "train_top1": (out.argmax(1) == y).float().mean().item()}
        if stage == "gates":
            was = self.training
            self.eval()
            self.exit_selector.train(was)
            loss = x.new_zeros(())
            rate = 0.0
            zacc = None
            for p, f in enumerate(self.order):
                with torch.no_grad():
                    z = running_max(zacc, self._embed(x, f))
                    ce = nn.functional.cross_entropy(self.classifiers[p](z), y, reduction="none")
                    target = (ce <= self.gate_beta * math.exp(p / 2)).float().unsqueeze(1)
                if 0 < p < len(self.order) - 1:
                    # released gates score continuing: logit of "continue" = −logit of "exit"
                    logit = self.exit_selector[p - 1](z, zacc)
                    loss = loss + nn.functional.binary_cross_entropy_with_logits(-logit, target)
                    rate += target.mean().item()
                zacc = z
            self.train(was)
            n = max(1, len(self.order) - 2)
            loss = loss / n
            return loss, {"bce": loss.item(), "exit_label_rate": rate / n}
        raise ValueError(f"frameexit has no stage {stage!r}; stages: {self.card.stages}")


def convert_official_frameexit(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official FrameExit checkpoint keys → this implementation's.

    The released ``activitynet_checkpoint_25gmac.pth`` / ``minikinetics_checkpoint_19.7gmac.pth``
    were saved from ``nn.DataParallel(ConditionalFrameExitInferenceModel)``:
    ``module.backbone.{0..7}.*`` (torchvision ResNet-50 children), ``module.mlp.layers.{0,1}.*``,
    ``module.classifiers.{t}.*``, ``module.exit_selector.{t}.{conv1,conv2,bn1,bn2,linear}.*`` —
    the same names here once the ``module.`` prefix is stripped.
    """
    return strip_prefix(state, "module.")


def load_official_frameexit(method: FrameExit, source: str | Mapping[str, torch.Tensor]) -> None:
    """Load a released FrameExit checkpoint (path or state_dict).

    Raises:
        CheckpointError: Listing missing/unexpected keys and shape mismatches.
    """
    if method.input_kind != "pixels":
        raise CheckpointError("released FrameExit checkpoints are pixel models; build config 'paper'")
    state = read_state_dict(source) if isinstance(source, str) else dict(source)
    load_converted(method, convert_official_frameexit(state),
                   source=source if isinstance(source, str) else "FrameExit state_dict")


def frameexit_card(*, config: str, input_kind: str = "pixels", frames: int = 10, backbone: str = "resnet50",
                   resolution: int = 224, feature_dim: int = 0, **_: Any) -> MethodCard:
    """The FrameExit card of a configuration (no network is built); arguments as for :class:`FrameExit`."""
    pixels = input_kind == "pixels"
    resolution = resolution if pixels else 0
    return MethodCard(
        action_space="forced-exits",
        name="frameexit",
        title=f"FrameExit ({backbone} @{resolution})" if pixels else "FrameExit gates (features)",
        paper=PAPER, doi=DOI, code=CODE, input_kind=input_kind, frames=frames,
        resolution=resolution, resolutions=(resolution,) if pixels else (),
        feature_dim=0 if pixels else feature_dim,
        knobs=(
            KnobSpec("threshold", 0.5, "gate: exit when sigmoid(−gate logit) > threshold (released gates score "
                     "continuing; official 0.5; > 1 never exits)", GATE_SWEEP, low=0.0),
            KnobSpec("first_threshold", 0.99, "first frame exits when max softmax > first_threshold (official 0.99)",
                     (0.9, 0.99, 1.01), low=0.0),
        ),
        stages=("classifiers", "gates"),
        force_options=tuple(range(1, frames + 1)),
        upper_bound_knobs={"threshold": 1.01, "first_threshold": 1.01},
        config=config,
        notes=("force=n exits every video after n frames (forced exit-step schedule). Per-sample decisions "
               "(official: sample 0 of a batch of 1); the exiting step's classifier runs only on the exiting "
               "samples. "
               "Gate threshold knob (monotone). Gates and classifiers are per time step, as released. Costs "
               "include MLP, classifiers and gates, which the official inference.py (4.12 GMACs/frame) omits. "
               "No official training code: two stages (classifiers, then gates with pseudo-labels "
               "CE <= beta*exp(t/2)). Random initialisation unless an official checkpoint is loaded."),
    )


@register_method("frameexit", configs=CONFIGS, card=frameexit_card,
                 summary="FrameExit: gated temporal early exit (CVPR 2021)")
def build_frameexit(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 10,
                    backbone: str = "resnet50", resolution: int = 224, mlp_dim: int = 4096, gate_beta: float = 0.01,
                    feature_dim: int = 0, gmacs_per_frame: float = 0.0) -> FrameExit:
    """FrameExit on pixels ``(B, T, 3, R, R)`` or features ``(B, T, D)``; see :class:`FrameExit`."""
    return FrameExit(num_classes=num_classes, config=config, input_kind=input_kind, frames=frames, backbone=backbone,
                     resolution=resolution, mlp_dim=mlp_dim, gate_beta=gate_beta, feature_dim=feature_dim,
                     gmacs_per_frame=gmacs_per_frame)
