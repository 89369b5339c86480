"""TLEE: temporal-wise and layer-wise early exiting.

Q. Wang, W. Fang, N. N. Xiong, "TLEE: Temporal-wise and Layer-wise Early
Exiting Network for Efficient Video Recognition on Edge Devices", IEEE
Internet of Things Journal, 2023, doi 10.1109/JIOT.2023.3293506.  Official
code: https://github.com/fangvv/TLEE (a fork of Qualcomm's FrameExit;
``model/tlee.py`` ``TLEEModel``/``GateModule``/``get_policies``,
``model/branch_model.py`` ``Branch``/``ResNet_with_Branches``, ``main.py``
``train_policy_1``/``train_policy_2``/``train_gate``/``test_fine``,
``time_test.py``, ``config/cloud_ucf101_resnet50_branch.yml``).  Reimplemented
here, not copied.

Inference (``test_fine`` / ``time_test.py``, batch 1 there, any batch here):
frames are visited in the FrameExit order ``[5, 0, 9, 2, 7, 4, 6, 3, 8, 1]``
(:func:`evbench.methods.exits.coarse_to_fine_order`).  Each frame runs ResNet-50 stage
by stage; after layer2 and layer3 an exit branch
(:class:`evbench.methods.exits.MixedPoolBranch`) and after layer4 the pooled feature
give a 2048-d vector → the shared MLP (2048 → 4096) → element-wise max with
the accumulated feature of the previous exit (feature reuse; none on the first
frame) → ``z``.  At every exit point, in this order:

1. **temporal exit** of the whole video — first frame: max softmax of the
   shared classifier on ``z`` > ``first_threshold`` (0.99); last frame: always
   (at its *first* exit point, after layer2, as the official code does);
   otherwise the gate (:class:`evbench.methods.exits.GateModule`) on [``z``, previous
   accumulated feature] exits when ``sigmoid ≥ threshold`` (0.5);
2. **layer exit** of this frame (exits after layer2/layer3 only): max softmax
   of the classifier on ``z`` > ``layer_threshold`` (0.8) stops this frame and
   goes to the next one.

The ``threshold`` knob is the **gate** threshold: for a fixed input the
visited exit points do not depend on it, so raising it can only postpone the
temporal exit — GMACs/video is monotone in it.  ``layer_threshold`` and
``first_threshold`` are further knobs (not monotone in general: a deeper frame
changes the accumulated feature the gate sees).

**Forced schedules** (``knobs={"force": "<n>@<layer>"}``, ``card.force_options``):
the first ``n`` frames of the order each stop at ``layer`` and the video exits
at the ``n``-th — so cost and latency can be measured at a paper's exit-frame /
exit-layer mix (a weighted sum of schedules).  Gates and classifiers still run
where the free path evaluates them.

**Input normalisation** (build key ``input_norm``): the official UCF101
configuration normalises with its own Kinetics statistics (mean [0.43216,
0.394666, 0.37645], std [0.22803, 0.22145, 0.216989]); configuration
``official`` re-normalises the harness's ImageNet-normalised frames to them
(:class:`evbench.methods.common.InputNorm`, exact, uncounted), the other
configurations keep ImageNet statistics.  ``inference_settings`` reports it.

**Faithfulness** (``python -m evbench.bench.faithfulness``): the official
``TLEEModel`` driven by ``main.py``'s ``test_fine`` loop and evbench agree to
≤ 1e-4 in the logits with identical decisions, free and under every forced
schedule, on seeded weights loaded through :func:`load_official_tlee`.

Departures from the official code (each documented where it happens):

* The classifier runs only where its output is used (the official code
  evaluates it twice at an exiting point and also after layer4, where the
  layer-exit test is moot).
* Per-sample decisions in a batch; the official code decides on sample 0 of a
  batch (``exit_door[0]``) and is run with batch 1.
* Gate training: the pseudo-label is per sample (official: one label for the
  whole batch from the batch-mean CE) and every exit point contributes to the
  BCE (official: only the last exit of each frame, the loss variable being
  overwritten in the loop).

Training stages (``card.stages``; official ``train_mode`` 1.1 → 1.2 → 2):

* ``backbone`` (1.1, ``train_policy_1``): backbone + MLP + classifier on the
  full path with feature reuse, loss = mean over frames of CE;
* ``branches`` (1.2, ``train_policy_2``): only the two branches, backbone in
  eval mode, loss = mean over frames of the mean CE of the two branch exits;
* ``gate`` (2, ``train_gate``): only the gate, BCE against the pseudo-label
  ``CE ≤ b·exp(t / (3 + k))`` (t = frame step, k = exit index, b = ``gate_beta``,
  0.005 for UCF101 in the official config).

Costs: ResNet-50 is split into separately costed stages — ``stages.0``
(stem + layer1 + layer2), ``stages.1`` (layer3), ``stages.2`` (layer4 + pool)
— so a frame that leaves at layer2 is charged only what ran.  Cumulative
backbone cost at 224 px (fvcore): 1.83 / 3.30 / 4.11 GMACs after layer2 /
layer3 / layer4, matching the official table (``single_frame_mac: [0.79,
1.83, 3.29, 4.1]``, last three used by ``compute_mac_fine``), which counts the
backbone only.  The branches (3.3 and 1.9 MMACs), the 2048 → 4096 MLP (8.4
MMACs per exit point), the classifier (0.4 MMACs) and the gate (0.26 MMACs)
also run at every exit point a frame passes: with them the cumulative costs
are 1.84 / 3.32 / 4.14 GMACs (:meth:`TLEE.cumulative_exit_gmacs`); the cost
table here has every piece.

Honest FPS: the official ``time_test.py`` prints ``FPS = 10 / mean seconds per
video`` — the 10 frames of a clip count as processed even when the video
exits after one — and times CUDA with ``time.time()`` and no
synchronisation.  Here each sample's decisions carry ``frames_processed`` (frames
on which a stage ran) and ``frames_covered`` (T), and
:func:`evbench.methods.exits.honest_fps` turns a latency into both rates; the
harness's ``frames_used`` is the processed count.

The ``features`` configuration runs TLEE's temporal part on ``(B, T, D)``
features: MLP, max reuse, shared classifier, first-frame threshold and the
gate; there are no layers to exit from.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobError, KnobSpec, Method, MethodCard, Output
from evbench.harness.registry import register_method
from evbench.methods.backbones import build_backbone
from evbench.methods.checkpoints import (
    CheckpointError,
    load_converted,
    read_state_dict,
    rename_keys,
    strip_prefix,
)
from evbench.methods.common import FEATURE_CONFIG, InputNorm, make_encoder
from evbench.methods.exits import (
    ActiveSet,
    GateModule,
    MixedPoolBranch,
    MultiLayerPerceptron,
    TraceRecorder,
    check_clip,
    coarse_to_fine_order,
    confident,
    gate_exit,
    pair_entry,
    resize_frames,
    resnet_stages,
    running_max,
    select_rows,
    stage_shapes,
)
from torch import nn

__all__ = ["TLEE", "build_tlee", "convert_official_tlee", "load_official_tlee", "CONFIGS", "LAYER_NAMES"]

PAPER = ('Q. Wang, W. Fang, N. N. Xiong, "TLEE: Temporal-wise and Layer-wise Early Exiting Network for Efficient '
         'Video Recognition on Edge Devices", IEEE Internet of Things Journal, 2023')
DOI = "10.1109/JIOT.2023.3293506"
CODE = "https://github.com/fangvv/TLEE"

#: Names of the exit points of the pixel model, in depth order.
LAYER_NAMES = ("layer2", "layer3", "layer4")

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"input_kind": "pixels", "backbone": "resnet50", "resolution": 224, "frames": 10, "mlp_dim": 4096,
              "crm_num": 3, "branch_scale": 3, "gate_beta": 0.005},
    "lite": {"input_kind": "pixels", "backbone": "resnet10", "resolution": 112, "frames": 8, "mlp_dim": 512,
             "crm_num": 2, "branch_scale": 2, "gate_beta": 0.1},
    # gate_beta 0.001: on the 1,153-clip UCF101 feature set the training CE is near 0 and larger b labels
    # (almost) every exit point "exit" (label rate 0.99 at b = 0.02), which leaves the gate knob without a range
    "features": {**FEATURE_CONFIG, "mlp_dim": 1024, "gate_beta": 0.001},
    # official weights (load_official_tlee): the official UCF101 configuration normalises with its own (Kinetics)
    # statistics (config/cloud_ucf101_resnet50_branch.yml); frames are re-normalised inside (InputNorm)
    "official": {"input_kind": "pixels", "backbone": "resnet50", "resolution": 224, "frames": 10, "mlp_dim": 4096,
                 "crm_num": 3, "branch_scale": 3, "gate_beta": 0.005, "input_norm": "kinetics"},
}

GATE_SWEEP = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.01)


def force_schedules(frames: int, input_kind: str = "pixels") -> tuple[Any, ...]:
    """The forced exit schedules (``card.force_options``) of a TLEE with ``frames`` frames.

    Pixels: ``"<n>@<layer>"`` for ``n`` in 1…T and ``layer`` in :data:`LAYER_NAMES`
    — the first ``n`` frames of the coarse-to-fine order each stop at ``layer`` and
    the video exits at the ``n``-th (``"10@layer4"``: every frame to the end).
    Features: ``n`` in 1…T (exit after ``n`` frames).  A paper's decision mix (its
    exit-frame and exit-layer histogram) is a weighted sum of these.
    """
    if input_kind == "pixels":
        return tuple(f"{n}@{layer}" for n in range(1, frames + 1) for layer in LAYER_NAMES)
    return tuple(range(1, frames + 1))


def parse_force(value: Any, input_kind: str = "pixels") -> tuple[int, int]:
    """``(frames n, exit index k)`` of a forced schedule of :func:`force_schedules`.

    Raises:
        KnobError: A value that is not a schedule.
    """
    try:
        if input_kind == "pixels":
            n, layer = str(value).split("@")
            return int(n), LAYER_NAMES.index(layer)
        return int(value), 0
    except ValueError:
        raise KnobError(f"tlee: force={value!r} is not a schedule '<frames>@<layer>' (layer in {LAYER_NAMES})") from None


class TLEE(Method):
    """TLEE (see the module docstring for the algorithm, training and departures).

    Input ``x``: ``(B, T, 3, R, R)`` normalised frames or ``(B, T, D)`` features;
    output logits ``(B, num_classes)`` from the exit point.

    Args:
        num_classes: Classes C.
        config: Configuration name.
        input_kind: ``"pixels"`` or ``"features"``.
        frames: T.
        backbone: ``resnet50`` (paper) or ``resnet10`` (lite).
        resolution: Frame side R in px.
        mlp_dim: Width of the shared MLP output (4096).
        crm_num: Channel-reduction convolutions per branch (3).
        branch_scale: First channel reduction 2^s (3).
        gate_hidden: Width of the gate's shared fc (32).
        gate_beta: b of the gate pseudo-label ``CE ≤ b·exp(t/(3+k))``.
        feature_dim: D (features).
        gmacs_per_frame: Declared cost of one input feature (features).
        input_norm: The normalisation the weights expect (a key of
            :data:`evbench.methods.common.NORMALISATIONS`; ``"kinetics"`` for the
            official weights); the harness's ImageNet-normalised frames are
            re-normalised inside (:class:`evbench.methods.common.InputNorm`).

    Raises:
        ValueError: Unknown ``input_kind`` or ``input_norm``.
    """

    def __init__(
        self, *, num_classes: int, config: str, input_kind: str, frames: int, backbone: str = "resnet50",
        resolution: int = 224, mlp_dim: int = 4096, crm_num: int = 3, branch_scale: int = 3, gate_hidden: int = 32,
        gate_beta: float = 0.005, feature_dim: int = 0, gmacs_per_frame: float = 0.0, input_norm: str = "imagenet",
    ) -> None:
        super().__init__()
        self.input_norm = InputNorm(input_norm)
        self.num_classes = num_classes
        self.input_kind = input_kind
        self.frames = frames
        self.gate_beta = gate_beta
        self.order = coarse_to_fine_order(frames)
        if input_kind == "pixels":
            self.resolution = resolution
            self.stages = resnet_stages(build_backbone(backbone), ("layer2", "layer3"), pool_last=True)
            self.backbone_arch = backbone  # its cached-backbone architecture (backbone_slots)
            self.stage_inputs = stage_shapes(self.stages, (3, resolution, resolution))
            dim = self.stage_inputs[-1][0]
            self.branches = nn.ModuleList([
                MixedPoolBranch(s[0], s[1], dim, crm_num=crm_num, branch_scale=branch_scale)
                for s in self.stage_inputs[1:3]
            ])
            self.num_exits = 3
        elif input_kind == "features":
            self.resolution = 0
            self.encoder = make_encoder("features", feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame)
            dim = feature_dim
            self.num_exits = 1
        else:
            raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")
        self.dim = dim
        self.mlp = MultiLayerPerceptron(dim, mlp_dim)
        self.classifier = nn.Linear(mlp_dim, num_classes)
        self.gate = GateModule(mlp_dim, gate_hidden)
        self.mlp_dim = mlp_dim
        self.force_schedules = force_schedules(frames, input_kind)

    @property
    def inference_settings(self) -> dict[str, Any]:
        """How this instance reads its input: ``input_norm`` (and ``input_mean``/``input_std``); a row records it."""
        return {"input_norm": self.input_norm.name, "input_mean": list(self.input_norm.mean),
                "input_std": list(self.input_norm.std), "downscale": "antialias" if self.input_kind == "pixels" else None}
    # -- building blocks -------------------------------------------------------------
    def _exit_feature(self, k: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run exit point ``k`` on ``h`` (stage input) → ``(stage output, MLP feature (N, M))``."""
        if self.input_kind == "features":
            return h, self.mlp(h)
        out = self.stages[k](h)
        feat = self.branches[k](out) if k < 2 else out
        return out, self.mlp(feat)

    def _exit_steps(self, k: int) -> list[tuple[str, tuple[int, ...], str]]:
        if self.input_kind == "features":
            return [(self.encoder.module_name, (self.dim,), "input"), ("mlp", (self.dim,), "head")]
        steps = [(f"stages.{k}", self.stage_inputs[k], "backbone")]
        if k < 2:
            steps.append((f"branches.{k}", self.stage_inputs[k + 1], "head"))
        steps.append(("mlp", (self.dim,), "head"))
        return steps

    def _exit_name(self, k: int) -> str:
        return LAYER_NAMES[k] if self.input_kind == "pixels" else "features"

    # -- inference -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Run TLEE with realised savings (exited samples and frames run nothing more).

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``; T must equal the card's frames.
            knobs: ``threshold`` (gate), ``layer_threshold``, ``first_threshold``;
                ``force``: a schedule of ``card.force_options`` — ``"<n>@<layer>"``
                (pixels: the first ``n`` frames of the order each stop at
                ``layer``, the video exits at the ``n``-th) or ``n`` (features:
                exit after ``n`` frames).  Gates and classifiers still run where
                the free path would evaluate them, so forced costs include them.

        Returns:
            :class:`Output`; decisions per sample: ``frames`` (processed, in
            order), ``frame_exit_layers`` (per processed frame), ``exit_frame``,
            ``exit_layer``, ``frames_processed``, ``frames_covered``, ``frames_total``.

        Raises:
            KnobError: Unknown knob or forced schedule.
            ValueError: Wrong input layout or T.
        """
        kn = self.resolve_knobs(knobs)
        b, t_total = check_clip(x, "tlee", self.input_kind, self.dim, self.frames)
        thr, lthr, fthr = float(kn["threshold"]), float(kn["layer_threshold"]), float(kn["first_threshold"])
        forced = parse_force(kn["force"], self.input_kind) if kn["force"] is not None else None
        if self.input_kind == "pixels":
            x = self.input_norm(x)
        active = ActiveSet(b, x.device)
        rec = TraceRecorder(b)
        logits = x.new_zeros(b, self.num_classes)
        dec: list[dict[str, Any]] = [{"frames": [], "frame_exit_layers": [], "exit_frame": None, "exit_layer": None,
                                      "frames_covered": t_total, "frames_total": t_total} for _ in range(b)]
        zacc: torch.Tensor | None = None
        last = len(self.order) - 1
        for p, f in enumerate(self.order):
            ids = active.tolist()
            h = active.take(x[:, f])
            if self.input_kind == "pixels":
                h = resize_frames(h, self.resolution)
            # Decisions are held on the host (one sync per exit test the control flow needs); per-row
            # tensors are gathered/scattered only when some rows have stopped (never at batch 1).
            n_f = len(ids)
            run = list(range(n_f))  # positions (in the active set) still running this frame
            gone: list[int] = []  # positions whose video exits at this frame
            new_acc = zacc  # row j: the accumulated feature of position j (replaced, never written in place)
            for i in ids:
                dec[i]["frames"].append(f)
            for k in range(self.num_exits):
                run_ids = [ids[j] for j in run]
                full = len(run) == n_f
                pos = None if full else torch.tensor(run, dtype=torch.long, device=x.device)
                h, e = self._exit_feature(k, h)
                for name, shape, role in self._exit_steps(k):
                    rec.add(run_ids, f, name, shape, role)
                zprev = None if zacc is None else new_acc if full else new_acc.index_select(0, pos)
                z = e if p == 0 else running_max(zprev, e)
                out = None
                texit: list[bool] | None = None
                if forced is not None:
                    texit = [p == forced[0] - 1 and k == forced[1]] * len(run)
                if p == 0 or p == last:
                    out = self.classifier(z)
                    rec.add(run_ids, f, "classifier", (self.mlp_dim,), "head")
                    if texit is None:
                        texit = confident(out, fthr, strict=True).tolist() if p == 0 else [True] * len(run)
                else:
                    g = self.gate(z, zprev)
                    rec.add(run_ids, f, "gate", (self.mlp_dim,), "policy")
                    if texit is None:
                        texit = gate_exit(g, thr, strict=False).tolist()
                    need = texit if k == self.num_exits - 1 else [True] * len(run)
                    if all(need):
                        out = self.classifier(z)
                        rec.add(run_ids, f, "classifier", (self.mlp_dim,), "head")
                    elif any(need):
                        rows = [j for j, u in enumerate(need) if u]
                        sel = torch.tensor(rows, dtype=torch.long, device=x.device)
                        out = z.new_zeros(z.shape[0], self.num_classes)
                        out.index_copy_(0, sel, self.classifier(z.index_select(0, sel)))
                        rec.add([run_ids[j] for j in rows], f, "classifier", (self.mlp_dim,), "head")
                new_acc = z if full else new_acc.index_copy(0, pos, z)
                if forced is not None:
                    lexit = [k == forced[1] and not t_ for t_ in texit]
                elif k < self.num_exits - 1 and out is not None:
                    lexit = [c and not t_ for c, t_ in zip(confident(out, lthr, strict=True).tolist(), texit,
                                                          strict=True)]
                else:
                    lexit = [False] * len(run)
                last_k = k == self.num_exits - 1
                left = []
                for j, (t_, l_) in enumerate(zip(texit, lexit, strict=True)):
                    if not (t_ or l_ or last_k):
                        left.append(j)
                        continue
                    i = run_ids[j]
                    dec[i]["frame_exit_layers"].append(self._exit_name(k))
                    if t_:
                        logits[i] = out[j]
                        dec[i]["exit_frame"] = f
                        dec[i]["exit_layer"] = self._exit_name(k)
                        dec[i]["frames_processed"] = len(dec[i]["frames"])
                        rec.mark_exit([i], "forced" if forced is not None else "confidence" if p == 0
                                      else "last_frame" if p == last else "gate")
                        gone.append(run[j])
                if not left:
                    break
                if len(left) < len(run):
                    h = h.index_select(0, torch.tensor(left, dtype=torch.long, device=x.device))
                    run = [run[j] for j in left]
            zacc = new_acc
            keep = active.retire_at(gone)
            if not active:
                break
            (zacc,) = select_rows(keep, zacc)
        return Output(logits, rec.steps, dec)

    # -- cost ----------------------------------------------------------------------------
    def cost_entries(self) -> list[CostEntry]:
        """Stages (backbone), branches/MLP/classifier (head), gate (policy) — or the feature input."""
        entries: list[CostEntry] = []
        if self.input_kind == "pixels":
            entries += [CostEntry(f"stages.{k}", self.stage_inputs[k], role="backbone") for k in range(3)]
            entries += [CostEntry(f"branches.{k}", self.stage_inputs[k + 1], role="head") for k in range(2)]
        else:
            entries.append(self.encoder.cost_entry())
        entries += [CostEntry("mlp", (self.dim,), role="head"),
                    CostEntry("classifier", (self.mlp_dim,), role="head"),
                    pair_entry("gate", self.mlp_dim, role="policy")]
        return entries

    def cumulative_exit_gmacs(self) -> dict[str, float]:
        """GMACs of one frame that stops at each exit point (pixels).

        Returns:
            ``{"layer2": …, "layer3": …, "layer4": …}`` backbone only (comparable
            to the official ``single_frame_mac``) and ``"<layer>_with_heads"`` adding
            the branches, MLP, classifier and gate run up to that point (a frame
            that passes an exit pays its branch, MLP, classifier and gate).

        Raises:
            ValueError: For the features variant.
        """
        if self.input_kind != "pixels":
            raise ValueError("cumulative exit costs exist for the pixel model only")
        from evbench.harness.costs import cost_table

        tab = cost_table(self)
        head = tab[("mlp", (self.dim,))] + tab[("classifier", (self.mlp_dim,))] + tab[("gate", (self.mlp_dim,))]
        out: dict[str, float] = {}
        backbone = heads = 0.0
        for k, name in enumerate(LAYER_NAMES):
            backbone += tab[(f"stages.{k}", self.stage_inputs[k])]
            heads += head + (tab[(f"branches.{k}", self.stage_inputs[k + 1])] if k < 2 else 0.0)
            out[name] = backbone
            out[f"{name}_with_heads"] = backbone + heads
        return out

    # -- training ---------------------------------------------------------------------------
    def backbone_slots(self) -> list[Any]:
        """The cached TSN ResNet at the frame resolution (:mod:`evbench.harness.backbone_cache`, pixels).

        Officially the ResNet-50 starts trained (ImageNet, then stage 1.1 on the
        dataset); started from the cached TSN ResNet the ``backbone`` stage keeps
        it frozen (eval mode) and trains the MLP and classifier on it (CPU budget).
        """
        if self.input_kind != "pixels":
            return []
        from evbench.harness.backbone_cache import positional_slot

        return [positional_slot("stages", self.backbone_arch, self.resolution, self.stages)]

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``backbone``: all but branches and gate; ``branches``: branches; ``gate``: gate (official ``get_policies``).

        Raises:
            ValueError: Unknown stage.
        """
        if stage not in self.card.stages:
            raise ValueError(f"tlee has no stage {stage!r}; stages: {self.card.stages}")
        if stage == "gate":
            return list(self.gate.parameters())
        if stage == "branches":
            return list(self.branches.parameters())
        frozen = bool(getattr(self, "backbone_pretrained", None))
        mods = [self.mlp, self.classifier] + ([self.stages] if self.input_kind == "pixels" and not frozen else [])
        return [p for m in mods for p in m.parameters()]

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """Budget split ≈ 3/8 backbone, 3/8 branches, rest gate (pixels); 3/4 backbone, rest gate (features)."""
        if self.input_kind == "pixels":
            first = max(1, round(epochs * 3 / 8))
            return first if stage in ("backbone", "branches") else max(1, epochs - 2 * first)
        first = max(1, round(epochs * 3 / 4))
        return first if stage == "backbone" else max(1, epochs - first)

    def _frame_input(self, x: torch.Tensor, f: int) -> torch.Tensor:
        h = x[:, f]
        return resize_frames(self.input_norm(h), self.resolution) if self.input_kind == "pixels" else h

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """The official stage losses (module docstring).

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``.
            y: ``(B,)`` labels.
            stage: ``backbone``, ``branches`` (pixels) or ``gate``.
            epoch: Unused (no schedule).

        Returns:
            ``(loss, logs)``.

        Raises:
            ValueError: Unknown stage.
        """
        ce = nn.functional.cross_entropy
        if stage == "backbone":
            zacc = None
            loss = x.new_zeros(())
            frozen = bool(getattr(self, "backbone_pretrained", None)) and self.input_kind == "pixels"
            if frozen:  # the cached TSN ResNet stays as loaded (backbone_slots)
                self.stages.eval()
            for f in self.order:
                h = self._frame_input(x, f)
                with torch.no_grad() if frozen else contextlib.nullcontext():
                    for k in range(self.num_exits):
                        h = self.stages[k](h) if self.input_kind == "pixels" else h
                zacc = running_max(zacc, self.mlp(h))
                out = self.classifier(zacc)
                loss = loss + ce(out, y)
            loss = loss / len(self.order)
            return loss, {"ce": loss.item(), "train_top1": (out.argmax(1) == y).float().mean().item()}
        if stage == "branches" and self.input_kind == "pixels":
            modes = [m.training for m in (self.stages, self.mlp, self.classifier)]
            for m in (self.stages, self.mlp, self.classifier):
                m.eval()
            zacc = None
            loss = x.new_zeros(())
            for p, f in enumerate(self.order):
                h = self._frame_input(x, f)
                for k in range(3):
                    with torch.no_grad():
                        h = self.stages[k](h)
                    feat = self.branches[k](h) if k < 2 else h
                    e = self.mlp(feat)
                    zacc = e if p == 0 else running_max(zacc, e)
                    if k < 2:
                        loss = loss + ce(self.classifier(zacc), y) / 2
                zacc = zacc.detach()
            for m, was in zip((self.stages, self.mlp, self.classifier), modes, strict=True):
                m.train(was)
            loss = loss / len(self.order)
            return loss, {"ce_branches": loss.item()}
        if stage == "gate":
            return self._gate_loss(x, y)
        raise ValueError(f"tlee ({self.input_kind}) has no stage {stage!r}; stages: {self.card.stages}")

    def _gate_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        was = self.training
        self.eval()
        self.gate.train(was)
        loss = x.new_zeros(())
        n_terms = 0
        pos_rate = 0.0
        zacc = None
        frame_acc = None
        for p, f in enumerate(self.order):
            with torch.no_grad():
                h = self._frame_input(x, f)
            for k in range(self.num_exits):
                with torch.no_grad():
                    h, e = self._exit_feature(k, h)
                    z = e if p == 0 else running_max(zacc, e)
                    ce = nn.functional.cross_entropy(self.classifier(z), y, reduction="none")
                    target = (ce <= self.gate_beta * math.exp(p / (3 + k))).float().unsqueeze(1)
                    zacc = z
                prev = z if frame_acc is None else frame_acc
                logit = self.gate(z, prev)
                loss = loss + nn.functional.binary_cross_entropy_with_logits(logit, target)
                pos_rate += target.mean().item()
                n_terms += 1
            frame_acc = zacc
        self.train(was)
        loss = loss / n_terms
        return loss, {"bce": loss.item(), "exit_label_rate": pos_rate / n_terms}


# --------------------------------------------------------------------------- converter

_RULES = [
    (r"^backbone\.baseModel\.([0-5])\.", r"stages.0.\1."),
    (r"^backbone\.baseModel\.6\.", "stages.1.0."),
    (r"^backbone\.baseModel\.7\.", "stages.2.0."),
    (r"^backbone\.branches\.", "branches."),
    (r"^classifiers\.0\.", "classifier."),
    (r"^exit_selector\.0\.", "gate."),
]


def convert_official_tlee(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official TLEE ``TLEEModel`` state_dict to this implementation's keys.

    ``backbone.baseModel.{0,1,4,5}.*`` → ``stages.0.{i}.*`` (conv1, bn1, layer1,
    layer2), ``backbone.baseModel.6.*`` → ``stages.1.0.*`` (layer3),
    ``backbone.baseModel.7.*`` → ``stages.2.0.*`` (layer4),
    ``backbone.branches.{0,1}.*`` → ``branches.{0,1}.*``, ``mlp.layers.*`` unchanged,
    ``classifiers.0.*`` → ``classifier.*``, ``exit_selector.0.*`` → ``gate.*``.
    A DataParallel ``module.`` prefix is stripped.
    """
    return rename_keys(strip_prefix(state, "module."), _RULES)


def load_official_tlee(method: TLEE, source: str | Mapping[str, torch.Tensor]) -> None:
    """Load an official TLEE checkpoint (path or state_dict) into ``method``.

    A stage-1 checkpoint has no gate: its keys are then reported missing.

    Raises:
        CheckpointError: Listing missing/unexpected keys and shape mismatches.
    """
    if method.input_kind != "pixels":
        raise CheckpointError("official TLEE checkpoints are pixel models; build config 'paper'")
    state = read_state_dict(source) if isinstance(source, str) else dict(source)
    conv = convert_official_tlee(state)
    for key, value in method.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in conv:
            conv[key] = value
    load_converted(method, conv, source=source if isinstance(source, str) else "TLEE state_dict")


def tlee_card(*, config: str, input_kind: str = "pixels", frames: int = 10, backbone: str = "resnet50",
              resolution: int = 224, feature_dim: int = 0, input_norm: str = "imagenet", **_: Any) -> MethodCard:
    """The TLEE card of a configuration (no network is built); arguments as for :class:`TLEE`.

    The official cost table and thresholds are claims of the claims registry (``tlee-*``), not card data.
    """
    pixels = input_kind == "pixels"
    resolution = resolution if pixels else 0
    knobs = (
        KnobSpec("threshold", 0.5, "temporal gate: the video exits when sigmoid(gate) >= threshold "
                 "(official 0.5; > 1 never exits)", GATE_SWEEP, low=0.0),
        KnobSpec("layer_threshold", 0.8, "layer exit: a frame stops after layer2/layer3 when the classifier's "
                 "max softmax > layer_threshold (official exit_thresh 0.8)", (0.5, 0.8, 0.95, 1.01) if pixels else (), low=0.0),
        KnobSpec("first_threshold", 0.99, "first frame: the video exits when the classifier's max softmax > "
                 "first_threshold (official 0.99)", (0.9, 0.99, 1.01), low=0.0),
    )
    notes = (
        f"input_norm={input_norm}" + (" (the official configuration's Kinetics statistics)" if input_norm == "kinetics"
        else " (the official configuration normalises with Kinetics statistics: config 'official' for official "
        "weights)") + ". force='<n>@<layer>' runs a forced exit schedule. Per-sample decisions (the official "
        "test loop decides on sample 0 of a batch of 1). The classifier runs only where its output is used "
        "(officially twice at an exiting point and after layer4 too; same outputs). Gate training: per-sample "
        "pseudo-labels and every exit point in the BCE (officially one batch-mean label, last exit per frame). "
        "threshold = the temporal gate threshold (monotone GMACs); layer_threshold and first_threshold are "
        "separate knobs. The last frame exits at its first exit point (layer2), as the official code does. "
        "Honest FPS: decisions carry frames_processed vs frames_covered; the official time_test.py divides "
        "all 10 frames by the video time even when it exited early and times CUDA without synchronisation. "
        "Official cost table (single_frame_mac 1.83/3.29/4.1 GMACs after layer2/layer3/layer4) counts the "
        "backbone only (fvcore here: 1.83/3.30/4.11 for ResNet-50 @224); branches, MLP, classifier and gate "
        "are costed too (cumulative 1.84/3.32/4.14 with them; see cumulative_exit_gmacs()). "
        "Random initialisation (no ImageNet download)."
    )
    if not pixels:
        notes = ("Features variant: TLEE's MLP, running-max reuse, shared classifier, first-frame threshold and "
                 "GateModule over frames in coarse-to-fine order; no layer exits (no backbone). " + notes)
    return MethodCard(
        action_space="forced-exits",
        name="tlee", title=f"TLEE ({backbone} @{resolution}, exits after layer2/layer3)" if pixels
        else "TLEE temporal gate (features)",
        paper=PAPER, doi=DOI, code=CODE, input_kind=input_kind, frames=frames,
        resolution=resolution, resolutions=(resolution,) if pixels else (),
        feature_dim=0 if pixels else feature_dim, knobs=knobs,
        stages=("backbone", "branches", "gate") if pixels else ("backbone", "gate"),
        force_options=force_schedules(frames, input_kind),
        upper_bound_knobs={"threshold": 1.01, "layer_threshold": 1.01, "first_threshold": 1.01},
        config=config, notes=notes,
    )


@register_method("tlee", configs=CONFIGS, card=tlee_card,
                 summary="TLEE: temporal gate + layer exits with max feature reuse (IoT-J 2023)")
def build_tlee(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 10,
               backbone: str = "resnet50", resolution: int = 224, mlp_dim: int = 4096, crm_num: int = 3,
               branch_scale: int = 3, gate_hidden: int = 32, gate_beta: float = 0.005, feature_dim: int = 0,
               gmacs_per_frame: float = 0.0, input_norm: str = "imagenet") -> TLEE:
    """TLEE on pixels ``(B, T, 3, R, R)`` or features ``(B, T, D)``; see :class:`TLEE`."""
    return TLEE(num_classes=num_classes, config=config, input_kind=input_kind, frames=frames, backbone=backbone,
                resolution=resolution, mlp_dim=mlp_dim, crm_num=crm_num, branch_scale=branch_scale,
                gate_hidden=gate_hidden, gate_beta=gate_beta, feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame,
                input_norm=input_norm)
