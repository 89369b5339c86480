"""LiteEval: a coarse LSTM always, a fine CNN + LSTM only when a gate asks for it.

Wu, Xiong, Jiang, Davis, "LiteEval: A Coarse-to-Fine Framework for Resource
Efficient Video Recognition", NeurIPS 2019 (arXiv:1912.01601); official code
``zxwu/lite_eval`` (``models/lite_eval.py`` model, ``main.py`` loss,
``evaluate.py`` cost accounting, ``utils.py`` Gumbel sampling).

Per frame ``t`` (§3, Fig. 1; names as in the official ``LiteEval`` module):

1. coarse CNN (paper: MobileNetV2 @112, 0.08 GMACs) → ``small_proj_mlp``
   (BN → Linear → BN → ReLU) → coarse feature ``s_t`` → ``small_rnn``
   (``LSTMCell``) → coarse state ``(h_s, c_s)``;
2. gate ``linear([s_t, h_l, c_l]) → 2 logits`` on the coarse feature and the
   *previous* fine state; index 0 = compute fine features, 1 = skip;
3. fine (gate open): fine CNN (paper: ResNet-101 @224, 7.82 GMACs) →
   ``proj_mlp`` → ``large_rnn`` on ``[fine, s_t]`` → new fine state;
   skip (gate closed): **state synchronisation** (Eq. 5) — the first ``D_c``
   dimensions of the fine state ``(h_l, c_l)`` are replaced by the new coarse
   state's, the rest kept;
4. prediction ``classifier(h_l)`` from the final fine state; it can be read at
   any step (online use) for the cost of one linear layer.

**Realised savings**: the fine CNN, ``proj_mlp`` and ``large_rnn`` run only on
frames whose gate opened (grouped across the batch per step); the coarse path
runs on every frame (batched over all frames at once, since no decision
precedes it).  The official model computes the fine LSTM on every frame from
pre-extracted features and masks the result.  Decisions are the arg-max at
test time, as in the official ``utils.gumbel_softmax(training=False)``.

**Training** (``main.py``): Gumbel-softmax straight-through on the gate's
log-probabilities with the official noise scale 0.5 and temperature
``max(0.5, exp(−1e-4·step))``; loss ``CE + λ·(mean fine usage − γ)²`` with
``λ = 2`` (the official code ramps the weight from 1 to 2 over training and
applies ``γ`` to the *skip* fraction — its ``--gamma 0.8`` is ``γ = 0.2``
here).  The official model is trained on fixed, pre-extracted CNN features;
with randomly initialised CNNs the pixel configurations first run a
``warmup`` stage training both CNNs as TSN classifiers (auxiliary heads used
only there), then the ``joint`` stage trains the recurrent part on the frozen
CNNs' features, as officially.  ``γ`` is a training-time operating point
(build override ``gamma``); the inference knob is ``gate_bias``.

Departures: in training, the projections' batch norm takes statistics over all
frames of the batch (the official per-time-step batch of ``B`` fails for
``B = 1``); the fixed clip length ``T`` (the official evaluation reads every
frame of a video at 1 fps, ``--num-frames`` ≥ 128).

**Official sizes** (configuration ``official``): the official model is the
recurrent part alone on pre-extracted features — fine 2048-d (ResNet-101),
coarse 1280-d (MobileNetV2), ``proj_mlp`` 2048, ``small_proj_mlp`` 512, cells
2048 / 512 (``models/lite_eval.py``).  ``official`` takes that pair per frame,
concatenated ``[fine | coarse]`` (``(B, T, 3328)``), with no learned coarse
projection, so :func:`load_official_liteeval` loads an official checkpoint with
no override; costs are declared (0.08 GMACs coarse every frame, 7.82 fine on
fine frames, official ``evaluate.py``).  ``python -m evbench.bench.faithfulness``
finds the official ``LiteEval.forward`` logits reproduced to ≤ 1e-4 with
identical gate decisions, free and forced (``fine``/``coarse``).

**Feature variant** (``input_kind="features"``, ``x`` of shape ``(B, T, D)``):
coarse = ``coarse_proj`` (``ReLU(Linear(D → d))``, a cheap learned projection of
the frame feature — the feature-level analogue of the coarse CNN); fine = the
full feature.  ``coarse_input="cheap"`` (default) declares the coarse input as
a cheap extractor costing ``coarse_input_ratio × gmacs_per_frame`` (the paper's
0.08/7.82) on every frame, plus the full feature on fine frames;
``"full"`` charges the full feature on every frame (the projection is
computed from it here), so only the fine LSTM is saved.  Either way the
coarse path sees a projection of the full feature, more than a cheap
extractor would give — the accuracy is optimistic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobSpec, Method, MethodCard, Output, TraceStep
from evbench.harness.registry import register_method
from evbench.methods.arnet import run_chunked
from evbench.methods.checkpoints import load_converted, read_state_dict, rename_keys, strip_prefix
from evbench.methods.common import (
    FEATURE_CONFIG,
    FeatureEncoder,
    PixelEncoder,
    lstm_cell_entry,
)
from torch import nn
from torch.nn import functional as F

__all__ = ["LiteEval", "LiteEvalFeatures", "LiteEvalCore", "build_liteeval", "load_official_liteeval", "CONFIGS"]

PAPER = ('Z. Wu, C. Xiong, Y.-G. Jiang, L. S. Davis, "LiteEval: A Coarse-to-Fine Framework for Resource '
         'Efficient Video Recognition", NeurIPS 2019')
DOI = "arXiv:1912.01601"
CODE = "https://github.com/zxwu/lite_eval"
#: Paper per-frame costs (official evaluate.py: "0.08 GLOPs for MobileNetv2, 7.82 FLOPs for ResNet101").
COARSE_GMACS, FINE_GMACS = 0.08, 7.82

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {
        "input_kind": "pixels", "frames": 25,
        "coarse_backbone": "mobilenet_v2", "coarse_resolution": 112,
        "fine_backbone": "resnet101", "fine_resolution": 224,
        "fine_embed": 2048, "coarse_embed": 512, "large_cell": 2048, "small_cell": 512, "gamma": 0.2,
    },
    "lite": {
        "input_kind": "pixels", "frames": 8,
        "coarse_backbone": "mobilenet_v2_035", "coarse_resolution": 56,
        "fine_backbone": "resnet10", "fine_resolution": 112,
        "fine_embed": 256, "coarse_embed": 128, "large_cell": 256, "small_cell": 128, "gamma": 0.5,
    },
    # input dropout 0.5: without it the fine path overfits the 1.2 k-clip UCF101 feature subset
    # (validation top-1 57 % vs 87 % with it, 12 epochs)
    "features": {**FEATURE_CONFIG, "coarse_dim": 256, "fine_embed": 512, "coarse_embed": 256, "large_cell": 512,
                 "small_cell": 256, "gamma": 0.5, "input_dropout": 0.5},
    # the official model's sizes (models/lite_eval.py: fine 2048-d ResNet-101 and coarse 1280-d MobileNetV2
    # features, projections 2048/512, cells 2048/512): official checkpoints load with no override. Input: the
    # pair of pre-extracted features per frame concatenated, (B, T, 2048 + 1280); declared costs 7.82 / 0.08 GMACs
    "official": {"input_kind": "features", "frames": 25, "feature_dim": 2048 + 1280, "coarse_feature_dim": 1280,
                 "gmacs_per_frame": FINE_GMACS, "coarse_input_ratio": COARSE_GMACS / FINE_GMACS,
                 "fine_embed": 2048, "coarse_embed": 512, "large_cell": 2048, "small_cell": 512, "gamma": 0.2},
}

FINE, SKIP = 0, 1  # gate indices, as in the official r_t


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    """Official ``build_mlp(d_in, (d_out,), use_batchnorm=True, dropout=0)``: BN → Linear → BN → ReLU."""
    return nn.Sequential(nn.BatchNorm1d(d_in), nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True))


class LiteEvalCore(nn.Module):
    """The recurrent part of LiteEval with the official parameter names.

    Args:
        fine_in: Width of the fine CNN feature (2048 for ResNet-101).
        coarse_in: Width of the coarse CNN feature (1280 for MobileNetV2).
        fine_embed: ``proj_mlp`` output (official ``embedding_size`` 2048).
        coarse_embed: ``small_proj_mlp`` output (official ``small_embedding_size`` 512).
        large_cell: Fine LSTM size (official 2048).
        small_cell: Coarse LSTM size ``D_c`` (official 512); ``<= large_cell``.
        num_classes: C.

    Raises:
        ValueError: ``small_cell > large_cell`` (state synchronisation copies ``D_c`` dims).
    """

    def __init__(self, *, fine_in: int, coarse_in: int, fine_embed: int, coarse_embed: int, large_cell: int,
                 small_cell: int, num_classes: int) -> None:
        super().__init__()
        if small_cell > large_cell:
            raise ValueError(f"small_cell ({small_cell}) must be <= large_cell ({large_cell})")
        self.proj_mlp = _mlp(fine_in, fine_embed)
        self.small_proj_mlp = _mlp(coarse_in, coarse_embed)
        self.large_rnn = nn.LSTMCell(fine_embed + coarse_embed, large_cell)
        self.small_rnn = nn.LSTMCell(coarse_embed, small_cell)
        self.linear = nn.Linear(coarse_embed + 2 * large_cell, 2)
        self.classifier = nn.Linear(large_cell, num_classes)
        self.fine_in, self.coarse_in = fine_in, coarse_in
        self.fine_embed, self.coarse_embed = fine_embed, coarse_embed
        self.large_cell, self.small_cell = large_cell, small_cell

    def synchronise(self, h_l: torch.Tensor, h_s: torch.Tensor) -> torch.Tensor:
        """Eq. 5: ``[h_s[:, :D_c], h_l[:, D_c:]]`` — ``(N, L)`` from ``(N, L)`` and ``(N, D_c)``."""
        return torch.cat([h_s[:, : self.small_cell], h_l[:, self.small_cell:]], dim=1)


def _gumbel_st(logp: torch.Tensor, tau: float, noise_scale: float = 0.5) -> torch.Tensor:
    """Official ``utils.gumbel_softmax(training=True, hard=True)``: ``softmax((logp + 0.5·G)/τ)``, hard ST."""
    u = torch.rand_like(logp)
    g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
    soft = F.softmax((logp + noise_scale * g) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return (hard - soft).detach() + soft


def _knobs() -> tuple[KnobSpec, ...]:
    return (KnobSpec("gate_bias", 0.0, "added to the gate's 'compute fine features' logit; < 0 saves GMACs",
                     (-8.0, -4.0, -2.0, -1.0, 0.5, 1.0, 2.0)),)


class _LiteEvalBase(Method):
    """Shared inference/training of the pixel and feature variants."""

    core: LiteEvalCore
    lam: float
    gamma: float

    # implemented by the variants
    def _coarse_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, coarse_in)`` coarse features of every frame."""
        raise NotImplementedError

    def _fine_inputs(self, x: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        """``(N, fine_in)`` fine features of frame ``t`` of samples ``rows``."""
        raise NotImplementedError

    def _pre_trace(self, t_total: int) -> list[TraceStep]:
        raise NotImplementedError

    def _fine_trace(self, t: int) -> list[TraceStep]:
        raise NotImplementedError

    def _res_names(self) -> tuple[Any, Any]:
        raise NotImplementedError

    @property
    def inference_settings(self) -> dict[str, Any]:
        """Input handling a result row records (pixels: ImageNet statistics, antialiased coarse downscaling)."""
        pixels = isinstance(self, LiteEval)
        return {"input_norm": "imagenet" if pixels else None, "downscale": "antialias" if pixels else None,
                "paired_features": bool(getattr(self, "paired", False))}

    def _step_trace(self, t: int) -> list[TraceStep]:
        c = self.core
        return [TraceStep(t, "core.small_rnn", (c.coarse_embed,), role="policy"),
                TraceStep(t, "core.linear", (c.coarse_embed + 2 * c.large_cell,), role="policy")]

    def _core_entries(self) -> list[CostEntry]:
        c = self.core
        return [
            CostEntry("core.small_proj_mlp", (c.coarse_in,), role="policy"),
            lstm_cell_entry("core.small_rnn", c.coarse_embed, c.small_cell, role="policy"),
            CostEntry("core.linear", (c.coarse_embed + 2 * c.large_cell,), role="policy"),
            CostEntry("core.proj_mlp", (c.fine_in,), role="head"),
            lstm_cell_entry("core.large_rnn", c.fine_embed + c.coarse_embed, c.large_cell, role="head"),
            CostEntry("core.classifier", (c.large_cell,), role="head"),
        ]

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Realised LiteEval inference.

        Args:
            x: ``(B, T, 3, R, R)`` frames (pixels) or ``(B, T, D)`` features.
            knobs: ``gate_bias`` (float, added to the fine logit); ``force``:
                ``"fine"`` (gate open on every frame) or ``"coarse"`` (never),
                the gate still run and counted.

        Returns:
            :class:`Output`: logits ``(B, C)`` from the final fine state; traces
            (coarse path of all frames, then per frame coarse LSTM, gate and —
            if open — fine CNN, projection and fine LSTM, then the classifier);
            decisions ``actions`` (``fine``/``coarse`` per frame), ``resolutions``
            (the largest resolution run per frame) and ``fine_frames``.

        Raises:
            KnobError: Unknown knob or force value.
        """
        k = self.resolve_knobs(knobs)
        force = k["force"]
        core = self.core
        b, t_total = x.shape[:2]
        coarse = core.small_proj_mlp(self._coarse_inputs(x).flatten(0, 1)).view(b, t_total, -1)
        h_s = x.new_zeros(b, core.small_cell)
        c_s = x.new_zeros(b, core.small_cell)
        h_l = x.new_zeros(b, core.large_cell)
        c_l = x.new_zeros(b, core.large_cell)
        bias = x.new_tensor([float(k["gate_bias"]), 0.0])
        traces = [list(self._pre_trace(t_total)) for _ in range(b)]
        fine_mask = [[False] * t_total for _ in range(b)]
        for t in range(t_total):
            s_t = coarse[:, t]
            h_s, c_s = core.small_rnn(s_t, (h_s, c_s))
            gate = core.linear(torch.cat([s_t, h_l, c_l], 1)) + bias
            # the gate decisions on the host (one sync per frame: whether the fine CNN runs is the decision)
            use_l = [force == "fine"] * b if force is not None else (gate.argmax(1) == FINE).tolist()
            if all(use_l):  # every sample fine (a batch-1 fine frame): the fine LSTM gives the whole state
                f = core.proj_mlp(self._fine_inputs(x, torch.arange(b, device=x.device), t))
                h_l, c_l = core.large_rnn(torch.cat([f, s_t], 1), (h_l, c_l))
            elif not any(use_l):  # every sample coarse: the synchronised state (Eq. 5)
                h_l, c_l = core.synchronise(h_l, h_s), core.synchronise(c_l, c_s)
            else:
                use = torch.tensor(use_l, dtype=torch.bool, device=x.device)
                new_h = torch.where(use[:, None], h_l, core.synchronise(h_l, h_s))
                new_c = torch.where(use[:, None], c_l, core.synchronise(c_l, c_s))
                rows = use.nonzero().flatten()
                f = core.proj_mlp(self._fine_inputs(x, rows, t))
                hn, cn = core.large_rnn(torch.cat([f, s_t.index_select(0, rows)], 1),
                                        (h_l.index_select(0, rows), c_l.index_select(0, rows)))
                h_l, c_l = new_h.index_copy(0, rows, hn), new_c.index_copy(0, rows, cn)
            steps, fine_steps = self._step_trace(t), self._fine_trace(t)
            for i, u in enumerate(use_l):
                traces[i] += steps
                if u:
                    traces[i] += fine_steps
                    fine_mask[i][t] = True
        logits = core.classifier(h_l)
        coarse_name, fine_name = self._res_names()
        decisions = []
        for i in range(b):
            traces[i].append(TraceStep(-1, "core.classifier", (core.large_cell,), exit="last_frame", role="head"))
            decisions.append({
                "actions": ["fine" if m else "coarse" for m in fine_mask[i]],
                "resolutions": [fine_name if m else coarse_name for m in fine_mask[i]],
                "fine_frames": [t for t, m in enumerate(fine_mask[i]) if m],
            })
        return Output(logits, traces, decisions)

    # -- training ----------------------------------------------------------------
    def _tau(self) -> float:
        step = getattr(self, "_steps", 0)
        self._steps = step + 1
        return max(0.5, math.exp(-1e-4 * step))

    def _joint_loss(self, coarse_in: torch.Tensor, fine_in: torch.Tensor, y: torch.Tensor
                    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Official training forward (fine LSTM on every frame, state mixed by the sampled gate) and loss."""
        core = self.core
        b, t_total = coarse_in.shape[:2]
        coarse = core.small_proj_mlp(coarse_in.flatten(0, 1)).view(b, t_total, -1)
        fine = core.proj_mlp(fine_in.flatten(0, 1)).view(b, t_total, -1)
        h_s = coarse.new_zeros(b, core.small_cell)
        c_s = coarse.new_zeros(b, core.small_cell)
        h_l = coarse.new_zeros(b, core.large_cell)
        c_l = coarse.new_zeros(b, core.large_cell)
        tau = self._tau()
        rs = []
        for t in range(t_total):
            s_t = coarse[:, t]
            h_s, c_s = core.small_rnn(s_t, (h_s, c_s))
            logp = F.log_softmax(core.linear(torch.cat([s_t, h_l, c_l], 1)), dim=1)
            r = _gumbel_st(logp, tau)
            hn, cn = core.large_rnn(torch.cat([fine[:, t], s_t], 1), (h_l, c_l))
            h_l, c_l = (r[:, FINE:FINE + 1] * hn + r[:, SKIP:SKIP + 1] * core.synchronise(h_l, h_s),
                        r[:, FINE:FINE + 1] * cn + r[:, SKIP:SKIP + 1] * core.synchronise(c_l, c_s))
            rs.append(r)
        logits = core.classifier(h_l)
        usage = torch.stack(rs, 1)[..., FINE].mean()
        ce = F.cross_entropy(logits, y)
        penalty = (usage - self.gamma) ** 2
        loss = ce + self.lam * penalty
        return loss, {"ce": ce.item(), "fine_usage": usage.item(), "usage_penalty": penalty.item(), "tau": tau,
                      "train_top1": (logits.argmax(1) == y).float().mean().item()}


# =============================================================================== pixels


class LiteEval(_LiteEvalBase):
    """LiteEval on pixels ``(B, T, 3, R, R)`` (``R`` = fine resolution; the coarse input is resized from it).

    Module names (cost keys): ``coarse.backbone``, ``fine.backbone`` and the
    official ``core.{small_proj_mlp, small_rnn, linear, proj_mlp, large_rnn, classifier}``.
    ``coarse_head`` / ``fine_head`` are warm-up-only TSN classifiers (never run at inference).

    Args:
        num_classes: C.
        config: Configuration name.
        frames: T.
        coarse_backbone, coarse_resolution: Coarse CNN and its input side in px.
        fine_backbone, fine_resolution: Fine CNN and its input side in px.
        fine_embed, coarse_embed, large_cell, small_cell: See :class:`LiteEvalCore`.
        gamma: Target fraction of frames with fine features (γ).
        lam: Weight λ of the usage penalty.
        dropout: Dropout before the warm-up heads.

    Raises:
        ValueError: ``small_cell > large_cell``.
    """

    def __init__(self, *, num_classes: int, config: str = "paper", frames: int = 25,
                 coarse_backbone: str = "mobilenet_v2", coarse_resolution: int = 112,
                 fine_backbone: str = "resnet101", fine_resolution: int = 224, fine_embed: int = 2048,
                 coarse_embed: int = 512, large_cell: int = 2048, small_cell: int = 512, gamma: float = 0.2,
                 lam: float = 2.0, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.gamma, self.lam = gamma, lam
        self.coarse = PixelEncoder(coarse_backbone, coarse_resolution, module_name="coarse.backbone")
        self.fine = PixelEncoder(fine_backbone, fine_resolution, module_name="fine.backbone")
        self.core = LiteEvalCore(fine_in=self.fine.dim, coarse_in=self.coarse.dim, fine_embed=fine_embed,
                                 coarse_embed=coarse_embed, large_cell=large_cell, small_cell=small_cell,
                                 num_classes=num_classes)
        self.coarse_head = nn.Linear(self.coarse.dim, num_classes)
        self.fine_head = nn.Linear(self.fine.dim, num_classes)
        self.dropout = nn.Dropout(dropout)

    def cost_entries(self) -> list[CostEntry]:
        """Coarse CNN + coarse path (role policy), fine CNN (backbone), fine path and classifier (head)."""
        coarse_cnn = self.coarse.cost_entry()
        return [CostEntry(coarse_cnn.module, coarse_cnn.input_shape, role="policy"), self.fine.cost_entry(),
                *self._core_entries()]

    def _coarse_inputs(self, x: torch.Tensor) -> torch.Tensor:
        b, t_total = x.shape[:2]
        return run_chunked(self.coarse, x.flatten(0, 1)).view(b, t_total, -1)

    def _fine_inputs(self, x: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        return self.fine(x[rows, t])

    def _pre_trace(self, t_total: int) -> list[TraceStep]:
        shape = self.coarse.input_shape
        return ([TraceStep(t, "coarse.backbone", shape, role="policy") for t in range(t_total)]
                + [TraceStep(t, "core.small_proj_mlp", (self.core.coarse_in,), role="policy") for t in range(t_total)])

    def _fine_trace(self, t: int) -> list[TraceStep]:
        c = self.core
        return [self.fine.step(t), TraceStep(t, "core.proj_mlp", (c.fine_in,), role="head"),
                TraceStep(t, "core.large_rnn", (c.fine_embed + c.coarse_embed,), role="head")]

    def _res_names(self) -> tuple[Any, Any]:
        return self.coarse.resolution, self.fine.resolution

    def backbone_slots(self) -> list[Any]:
        """Cached TSN backbones (:mod:`evbench.harness.backbone_cache`): the coarse and the fine CNN with their heads.

        They replace the ``warmup`` stage: as officially, the recurrent part then
        learns on the features of two trained, frozen CNNs.
        """
        from evbench.harness.backbone_cache import BackboneSlot, BackboneSpec

        def loader(enc: PixelEncoder, head: nn.Linear) -> Callable[[nn.Module, nn.Module], None]:
            def load(net: nn.Module, tsn_head: nn.Module) -> None:
                enc.backbone.load_state_dict(net.state_dict())
                head.load_state_dict(tsn_head.state_dict())
            return load

        return [BackboneSlot(f"{name}.backbone", BackboneSpec(enc.backbone_name, (enc.resolution,)),
                             loader(enc, head), covers=("warmup",))
                for name, enc, head in (("coarse", self.coarse, self.coarse_head), ("fine", self.fine, self.fine_head))]

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``warmup``: both CNNs and their TSN heads; ``joint``: the recurrent core (CNNs frozen)."""
        if stage == "warmup":
            return [*self.coarse.parameters(), *self.fine.parameters(), *self.coarse_head.parameters(),
                    *self.fine_head.parameters()]
        if stage == "joint":
            return list(self.core.parameters())
        raise ValueError(f"LiteEval stages are warmup, joint; got {stage!r}")

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """Warm-up ≈ ⅓ of the budget (≥ 1), joint the rest (≥ 1); all of it when the cached CNNs replace warm-up."""
        if stage == "joint" and getattr(self, "backbone_pretrained", None):
            return epochs
        warm = max(1, round(epochs / 3))
        return warm if stage == "warmup" else max(1, epochs - warm)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """``warmup``: TSN cross-entropy of each CNN; ``joint``: ``CE + λ·(fine usage − γ)²``.

        Raises:
            ValueError: Unknown stage.
        """
        b, t_total = x.shape[:2]
        flat = x.flatten(0, 1)
        if stage == "warmup":
            lc = self.coarse_head(self.dropout(self.coarse(flat))).view(b, t_total, -1).mean(1)
            lf = self.fine_head(self.dropout(self.fine(flat))).view(b, t_total, -1).mean(1)
            ce_c, ce_f = F.cross_entropy(lc, y), F.cross_entropy(lf, y)
            return ce_c + ce_f, {"ce_coarse": ce_c.item(), "ce_fine": ce_f.item()}
        if stage != "joint":
            raise ValueError(f"LiteEval stages are warmup, joint; got {stage!r}")
        with torch.no_grad():  # frozen extractors, as the official pre-extracted features
            was = (self.coarse.training, self.fine.training)
            self.coarse.eval()
            self.fine.eval()
            coarse_in = self.coarse(flat).view(b, t_total, -1)
            fine_in = self.fine(flat).view(b, t_total, -1)
            self.coarse.train(was[0])
            self.fine.train(was[1])
        return self._joint_loss(coarse_in, fine_in, y)


# =============================================================================== features


class LiteEvalFeatures(_LiteEvalBase):
    """LiteEval-style gating on pre-extracted features ``(B, T, D)``.

    Coarse input: ``coarse_proj`` = ``ReLU(Linear(D → coarse_dim))`` of the frame
    feature; fine input: the full feature.  See the module docstring for the
    cost accounting of ``coarse_input``.

    Args:
        num_classes: C.
        config: Configuration name.
        frames: T.
        feature_dim: D.
        gmacs_per_frame: Declared GMACs of one full frame feature.
        coarse_dim: Width of the coarse projection.
        fine_embed, coarse_embed, large_cell, small_cell: See :class:`LiteEvalCore`.
        gamma: Target fine-usage fraction γ.
        lam: Penalty weight λ.
        coarse_input: ``"cheap"`` or ``"full"`` (cost accounting of the coarse read).
        coarse_input_ratio: Cost of the cheap coarse read relative to the full feature.
        input_dropout: Dropout on the input features in training (the official MLPs use
            none; on small feature sets such as the 1.2 k-clip UCF101 subset the fine
            path overfits without it).
        coarse_feature_dim: If > 0, the input is the official *pair* of
            pre-extracted features per frame, concatenated ``[fine | coarse]``
            (official ``LiteEval.forward(x, x_small)``: ResNet-101 2048-d and
            MobileNetV2 1280-d): the last ``coarse_feature_dim`` dims are the
            coarse feature (no learned projection, ``coarse_dim`` unused), the
            first ``D − coarse_feature_dim`` the fine one.  Every frame is charged
            the coarse read (``coarse_input_ratio × gmacs_per_frame``), fine frames
            also the fine read (``gmacs_per_frame``).

    Raises:
        ValueError: Bad ``coarse_input`` / ``feature_dim`` / ``coarse_feature_dim``.
    """

    def __init__(self, *, num_classes: int, config: str = "features", frames: int = 25, feature_dim: int = 4096,
                 gmacs_per_frame: float = 0.0, coarse_dim: int = 256, fine_embed: int = 512, coarse_embed: int = 256,
                 large_cell: int = 512, small_cell: int = 256, gamma: float = 0.5, lam: float = 2.0,
                 coarse_input: str = "cheap", coarse_input_ratio: float = COARSE_GMACS / FINE_GMACS,
                 input_dropout: float = 0.0, coarse_feature_dim: int = 0) -> None:
        super().__init__()
        if coarse_input not in ("cheap", "full"):
            raise ValueError(f"coarse_input must be 'cheap' or 'full', got {coarse_input!r}")
        if feature_dim <= 0:
            raise ValueError("feature_dim must be > 0")
        if not 0 <= coarse_feature_dim < feature_dim:
            raise ValueError(f"coarse_feature_dim must be in [0, feature_dim={feature_dim}), got {coarse_feature_dim}")
        self.num_classes = num_classes
        self.gamma, self.lam = gamma, lam
        self.paired = coarse_feature_dim > 0
        self.coarse_input = "cheap" if self.paired else coarse_input
        self.feature_dim = feature_dim
        self.fine_dim = feature_dim - coarse_feature_dim
        self.encoder = FeatureEncoder(self.fine_dim, gmacs_per_frame,
                                      "declared per-frame fine-feature cost (official evaluate.py: 7.82 GMACs, "
                                      "ResNet-101)" if self.paired else "")
        self.cheap_gmacs = coarse_input_ratio * gmacs_per_frame
        if self.paired:
            self.coarse_proj = None
            coarse_dim = coarse_feature_dim
        else:
            self.coarse_proj = nn.Sequential(nn.Linear(feature_dim, coarse_dim), nn.ReLU(inplace=True))
        self.input_dropout = nn.Dropout(input_dropout)
        self.core = LiteEvalCore(fine_in=self.fine_dim, coarse_in=coarse_dim, fine_embed=fine_embed,
                                 coarse_embed=coarse_embed, large_cell=large_cell, small_cell=small_cell,
                                 num_classes=num_classes)

    def cost_entries(self) -> list[CostEntry]:
        """Declared feature reads, the coarse projection (not with paired features), the recurrent core."""
        d = self.encoder.dim
        entries = [self.encoder.cost_entry()]
        if self.paired:
            entries.append(CostEntry("coarse_features", (self.core.coarse_in,), role="input",
                                     declared_gmacs=self.cheap_gmacs,
                                     source="declared coarse-feature cost: coarse_input_ratio × gmacs_per_frame "
                                            "(official evaluate.py: 0.08 GMACs, MobileNetV2)"))
            return entries + self._core_entries()
        if self.coarse_input == "cheap":
            entries.append(CostEntry("coarse_features", (d,), role="input", declared_gmacs=self.cheap_gmacs,
                                     source="assumed cheap extractor: coarse_input_ratio × per-frame feature cost"))
        entries.append(CostEntry("coarse_proj", (d,), role="policy"))
        return entries + self._core_entries()

    def _coarse_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.paired:
            return x[..., self.fine_dim:]
        return self.coarse_proj(x)

    def _fine_inputs(self, x: torch.Tensor, rows: torch.Tensor, t: int) -> torch.Tensor:
        if self.paired:
            return self.encoder(x[rows, t, : self.fine_dim])
        return self.encoder(x[rows, t])

    def _pre_trace(self, t_total: int) -> list[TraceStep]:
        d = self.encoder.dim
        if self.paired:
            return ([TraceStep(t, "coarse_features", (self.core.coarse_in,), role="input") for t in range(t_total)]
                    + [TraceStep(t, "core.small_proj_mlp", (self.core.coarse_in,), role="policy")
                       for t in range(t_total)])
        read = [TraceStep(t, "coarse_features", (d,), role="input") if self.coarse_input == "cheap"
                else self.encoder.step(t) for t in range(t_total)]
        return (read + [TraceStep(t, "coarse_proj", (d,), role="policy") for t in range(t_total)]
                + [TraceStep(t, "core.small_proj_mlp", (self.core.coarse_in,), role="policy") for t in range(t_total)])

    def _fine_trace(self, t: int) -> list[TraceStep]:
        c = self.core
        steps = [self.encoder.step(t)] if self.coarse_input == "cheap" else []
        return steps + [TraceStep(t, "core.proj_mlp", (c.fine_in,), role="head"),
                        TraceStep(t, "core.large_rnn", (c.fine_embed + c.coarse_embed,), role="head")]

    def _res_names(self) -> tuple[Any, Any]:
        return "coarse", "fine"

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """``CE + λ·(fine usage − γ)²`` (official ``main.py``); coarse projection trained jointly.

        Raises:
            ValueError: Unknown stage.
        """
        if stage != "joint":
            raise ValueError(f"LiteEval (features) has one stage, joint; got {stage!r}")
        x = self.input_dropout(x)
        if self.paired:
            return self._joint_loss(x[..., self.fine_dim:], x[..., : self.fine_dim], y)
        return self._joint_loss(self.coarse_proj(x), x, y)


# =============================================================================== builder


def liteeval_card(*, config: str, input_kind: str = "pixels", frames: int = 25,
                  coarse_backbone: str = "mobilenet_v2", coarse_resolution: int = 112,
                  fine_backbone: str = "resnet101", fine_resolution: int = 224, feature_dim: int = 0,
                  gmacs_per_frame: float = 0.0, gamma: float = 0.2, coarse_input: str = "cheap",
                  coarse_input_ratio: float = COARSE_GMACS / FINE_GMACS, coarse_feature_dim: int = 0,
                  **_: Any) -> MethodCard:
    """The LiteEval card of a configuration (no network is built); arguments as for :func:`build_liteeval`.

    The official per-frame GMACs and the paper's mAP are claims of the claims registry (``liteeval-*``).
    """
    if input_kind == "pixels":
        return MethodCard(
            action_space="coarse-fine",
            name="liteeval",
            title=f"LiteEval (coarse {coarse_backbone}@{coarse_resolution}, fine {fine_backbone}@{fine_resolution})",
            paper=PAPER, doi=DOI, code=CODE, input_kind="pixels", frames=frames, resolution=fine_resolution,
            resolutions=(fine_resolution, coarse_resolution), knobs=_knobs(), force_options=("fine", "coarse"),
            stages=("warmup", "joint"), upper_bound_knobs={"force": "fine"}, config=config,
            notes=("Arg-max gate at test time (as officially); the fine CNN + LSTM run only on frames whose gate "
                   "opened; skipped frames synchronise the fine state's first D_c dims from the coarse state. "
                   f"gamma={gamma} is the target fraction of FINE frames (official --gamma is the skip "
                   "fraction); other gamma operating points need retraining (build override). Random "
                   "initialisation: a warm-up stage trains both CNNs as TSN classifiers, then the joint stage "
                   "trains the recurrent part on the frozen CNNs (official: fixed pre-extracted features)."),
        )
    if coarse_feature_dim > 0:
        return MethodCard(
            action_space="coarse-fine",
            name="liteeval", title="LiteEval on official feature pairs (fine | coarse)", paper=PAPER, doi=DOI,
            code=CODE, input_kind="features", frames=frames, resolution=0, feature_dim=feature_dim, knobs=_knobs(),
            force_options=("fine", "coarse"), stages=("joint",), upper_bound_knobs={"force": "fine"},
            config=config,
            notes=(f"The official model (models/lite_eval.py) on its own input: per frame the pre-extracted fine "
                   f"({feature_dim - coarse_feature_dim}-d) and coarse ({coarse_feature_dim}-d) features, "
                   "concatenated [fine | coarse]; official checkpoints load with no override (load_official_liteeval). "
                   f"Declared costs: coarse {coarse_input_ratio * gmacs_per_frame:.2f} GMACs every frame, fine "
                   f"{gmacs_per_frame:.2f} GMACs on fine frames (official evaluate.py: 0.08 / 7.82). Departures: "
                   "the fine projection and LSTM run only on fine frames (officially on every frame, masked — same "
                   "outputs); a fixed clip length T (officially every frame at 1 fps); arg-max gate as officially; "
                   "in training the projections' batch norm takes statistics over all frames of the batch "
                   "(officially per time step, which fails for B = 1). "
                   f"gamma={gamma} = target FINE fraction (official --gamma is the skip fraction)."),
        )
    cost_note = (f"coarse input = a cheap extractor assumed to cost {coarse_input_ratio:.4f} × the per-frame "
                 f"feature cost ({coarse_input_ratio * gmacs_per_frame:.3f} GMACs; the paper's 0.08/7.82 GMACs ratio) on every "
                 "frame, plus the full feature on fine frames" if coarse_input == "cheap" else
                 "every frame is charged the full feature cost (the coarse projection is computed from it), so "
                 "the gate only saves the fine projection and LSTM")
    return MethodCard(
        action_space="coarse-fine",
        name="liteeval", title="LiteEval-style gating (features)", paper=PAPER, doi=DOI, code=CODE,
        input_kind="features", frames=frames, resolution=0, feature_dim=feature_dim, knobs=_knobs(),
        force_options=("fine", "coarse"), stages=("joint",), upper_bound_knobs={"force": "fine"},
        config=config,
        notes=("Feature-level analogue of LiteEval: coarse = ReLU(Linear(D→d)) projection of the frame "
               "feature, fine = the full feature. " + cost_note + ". The coarse path sees a projection of the "
               f"full feature (optimistic accuracy for a truly cheap extractor). gamma={gamma} (target fine "
               "fraction); arg-max gate; state synchronisation as in Eq. 5."),
    )


@register_method("liteeval", configs=CONFIGS, card=liteeval_card,
                 summary="LiteEval (NeurIPS 2019): coarse LSTM always, fine CNN + LSTM when the gate opens")
def build_liteeval(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 25,
                   coarse_backbone: str = "mobilenet_v2", coarse_resolution: int = 112,
                   fine_backbone: str = "resnet101", fine_resolution: int = 224, feature_dim: int = 0,
                   gmacs_per_frame: float = 0.0, coarse_dim: int = 256, fine_embed: int = 2048,
                   coarse_embed: int = 512, large_cell: int = 2048, small_cell: int = 512, gamma: float = 0.2,
                   lam: float = 2.0, dropout: float = 0.5, coarse_input: str = "cheap",
                   coarse_input_ratio: float = COARSE_GMACS / FINE_GMACS, input_dropout: float = 0.0,
                   coarse_feature_dim: int = 0) -> Method:
    """LiteEval on pixels (:class:`LiteEval`) or features ``(B, T, D)`` (:class:`LiteEvalFeatures`).

    Raises:
        ValueError: Unknown ``input_kind`` or inconsistent sizes.
    """
    common = {"num_classes": num_classes, "config": config, "frames": frames, "fine_embed": fine_embed,
              "coarse_embed": coarse_embed, "large_cell": large_cell, "small_cell": small_cell, "gamma": gamma,
              "lam": lam}
    if input_kind == "pixels":
        return LiteEval(coarse_backbone=coarse_backbone, coarse_resolution=coarse_resolution,
                        fine_backbone=fine_backbone, fine_resolution=fine_resolution, dropout=dropout, **common)
    if input_kind == "features":
        return LiteEvalFeatures(feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame, coarse_dim=coarse_dim,
                                coarse_input=coarse_input, coarse_input_ratio=coarse_input_ratio,
                                input_dropout=input_dropout, coarse_feature_dim=coarse_feature_dim, **common)
    raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")


# =============================================================================== converter


def _drop_classifier(key: str) -> bool:
    return key.startswith(("fc.", "classifier."))


def load_official_liteeval(
    method: LiteEval | LiteEvalFeatures, source: str | os.PathLike[str] | Mapping[str, torch.Tensor], *,
    fine_backbone: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    coarse_backbone: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    ignore: Callable[[str], bool] | None = None,
) -> LiteEval | LiteEvalFeatures:
    """Load an official LiteEval state_dict (``models/lite_eval.py``) into ``method.core``.

    The official model holds only the recurrent part (its CNN features are
    pre-extracted): ``proj_mlp.{0,1,2}.*``, ``small_proj_mlp.{0,1,2}.*``,
    ``large_rnn.*``, ``small_rnn.*``, ``linear.*``, ``classifier.*`` (a leading
    ``module.`` is stripped) map to ``core.*`` one to one.  The CNNs may be
    loaded from torchvision-layout state_dicts (their ``fc``/``classifier``
    keys are dropped — the official features are taken before them).

    Args:
        method: A LiteEval (pixels or features) whose sizes match the checkpoint.
        source: Checkpoint path or state_dict of the official model.
        fine_backbone: Optional torchvision state_dict / path for the fine CNN (pixels only).
        coarse_backbone: Optional torchvision state_dict / path for the coarse CNN (pixels only).
        ignore: Predicate for official keys to drop before the strict check.

    Returns:
        ``method``, loaded.

    Raises:
        CheckpointError: Missing / unexpected keys or shape mismatches, all listed.
        TypeError: Backbone weights given for the feature variant.
    """
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    name = "state_dict" if isinstance(source, Mapping) else str(source)
    state = rename_keys(strip_prefix(state, "module."), [(r"^core\.", "")])
    load_converted(method.core, state, source=name, ignore=ignore)
    for which, src in (("fine", fine_backbone), ("coarse", coarse_backbone)):
        if src is None:
            continue
        if not isinstance(method, LiteEval):
            raise TypeError("backbone weights apply to the pixel LiteEval only")
        sd = dict(src) if isinstance(src, Mapping) else read_state_dict(src)
        sd = strip_prefix(sd, "module.")
        load_converted(getattr(method, which).backbone, sd, source=f"{which} backbone", ignore=_drop_classifier)
    return method

