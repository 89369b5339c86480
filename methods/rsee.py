"""RSEE: joint adaptive resolution selection and conditional early exiting.

Q. Wang, C. Yu, S. Chen, W. Fang, N. Xiong, "Joint Adaptive Resolution
Selection and Conditional Early Exiting for Efficient Video Recognition on
Edge Devices", Big Data Mining and Analytics, 2025, doi
10.26599/BDMA.2024.9020093.  Official code: https://github.com/fangvv/RSEE
(``ops/rsee.py`` ``RSEE.forward_irte`` / ``get_lite_j_and_r_irte`` /
``combine_logits``, ``ops/blstm.py`` ``BLSTM_IRTENet``,
``ops/parallel_resnet.py``, ``main_base.py`` ``train``/``train_irte``/``cal_eff``,
``train_ucf101.sh``, ``test.sh``).  Reimplemented here, not copied.

Per frame ``t`` in temporal order (10 frames in the paper):

1. **Resolution selector** — a lite MobileNetV2 on the 84 px frame → an
   ``LSTMCell(1280 → 512)`` → a linear layer to one logit per resolution
   (:class:`evbench.methods.policy.RecurrentPolicy`).  Inference takes the arg-max
   (plus the ``policy_bias`` knob).  **Departure:** the official test path
   (``test.sh``: ``--init_tau 0.000001``) still calls
   ``F.gumbel_softmax(log p, tau, hard=True)``, i.e. ``argmax(log p + Gumbel
   noise)`` — a *sample* of the categorical policy whatever τ is; here the
   decision is deterministic.
2. **Backbone** — one ResNet-50 whose convolutions are shared across
   224/168/112/84 px and whose BatchNorms are private to each resolution
   (:class:`evbench.methods.resnet_multibn.MultiBNResNet`), with the official 2048 →
   2048 ``fc``; only the chosen resolution runs (the official code does the
   same at test, ``spec=chosen_reso``).
3. **Aggregator** (official ``BLSTM_IRTENet``, ``--blstm``) — an
   ``LSTMCell(2048 → 512)`` whose output is projected back to 2048 by ``fc2``
   and whose previous 2048-d output is projected to the 512-d hidden input by
   ``fc1`` (no ``fc1`` on the first frame: the hidden state starts at zero);
   the classifier ``new_fc`` (2048 → C) reads the 2048-d output.
4. **Early exit** — stop when the aggregated prediction's max softmax ≥
   ``threshold`` (``--TE``, default 0.9), or at the last frame.

Samples of a batch are independent: each step runs only on the samples that
have not exited, grouped by chosen resolution.  **Departure:** the official test
path runs the resolution of sample 0 (``r_all[0, 0]``) for the whole batch and
its exit test works on batch 1 only; with batch 1 (its test loop) the two agree.

**Two BatchNorm modes** (build key ``bn_mode``; ``inference_settings`` reports it
and the result row records the configuration that set it):

* ``"official"`` — the official *test* path exactly: ``Bottleneck.forward``
  passes ``spec=chosen_reso`` to ``bn1/bn2/bn3`` but calls ``self.downsample(x)``
  without it, so the four downsample BatchNorms (``layer{1..4}.0.downsample.1``)
  always normalise with bank 0, the 224 px bank (``ops/parallel_resnet.py``,
  ``ops/parallel.py``).  Configuration ``official`` and :func:`load_official_rsee`
  (by default) select it: official checkpoints are evaluated the way their
  published numbers were.
* ``"consistent"`` — every BatchNorm uses the chosen resolution's bank, which is
  what the official *training* does (all resolutions are fed as a list, bank
  ``i`` ↔ resolution ``i`` everywhere, downsample included).  Default for
  evbench-trained weights (``paper``, ``lite``), whose training and inference
  then agree.

With official weights the two differ only at 168/112/84 px (bank 0 is the
224 px bank): forced lower-resolution logits change by O(1) and free decisions
change (``bench/faithfulness.py``).  Both modes cost the same.

**Downscaling** (build key ``downscale``): the official pipeline derives the
168/112/84 px inputs from the normalised 224 px crop by nearest-neighbour
interpolation (``ops/dataset.py`` ``rescale_proc``); configuration ``official``
does the same (``"nearest"``), also for the selector's 84 px input; evbench's
own configurations use antialiased bilinear.

**Faithfulness** (``python -m evbench.bench.faithfulness``): with
``config="official"`` and arg-max (or forced) decisions, logits match the
official ``forward_irte`` to ≤ 1e-4 and decisions are identical at every
resolution, on seeded random weights loaded through :func:`load_official_rsee`.

Training (the official scripts, two stages, ``card.stages``):

* ``backbone`` (``--irte``, ``train_irte``): every resolution through its own
  BatchNorm bank on all frames, TSN average of ``new_fc`` logits per
  resolution, loss = Σ over resolutions of CE.
* ``policy`` (``--irte_joint --freeze_backbone --blstm --irte_final``): the
  backbone and ``new_fc`` frozen; per frame every resolution's feature is
  computed and mixed by the straight-through Gumbel-softmax one-hot of the
  policy (``combine_logits``), loss = 0.95·Σ_t CE(new_fc(h_t)) +
  0.05·Σ_k mean(r_k)·GMACs_k (``cal_eff`` with ``--use_gflops_loss``; GMACs
  from this method's cost table, fvcore, instead of the official thop table);
  τ = 5·exp(−0.045·epoch) (:func:`evbench.methods.policy.gumbel_tau`).  **Departure:**
  the frozen backbone runs in eval mode (the official ``--npb`` run leaves its
  BatchNorm statistics updating although its weights are frozen).

``lite_fc`` (the policy's own classifier on the 512-d state, official
``lite_fc``) is kept so official checkpoints load, but RSEE's inference and
losses never read it (``policy_also_backbone`` outputs are discarded in
``forward_irte``), so it is neither run nor costed.

The ``features`` configuration (``(B, T, D)`` pre-extracted features, e.g.
the shared UCF101 VGG16 features) keeps the temporal part of RSEE — the
projected-LSTM aggregator, ``new_fc`` and the confidence exit over frames in
temporal order — and drops the resolution selector and the multi-BN backbone
(there is no resolution to choose on a feature vector).  Each frame read is
charged the feature extractor's declared cost (role ``input``).

Cost table (fvcore, GMACs = MACs × 1e-9): ResNet-50 at 224/168/112/84 =
4.11/2.51/1.08/0.69 (with the 2048 → 2048 fc: +0.004).  The official table
(``ops/net_flops_table.py``) uses thop ≥ 0.1 on torchvision ResNet-50 with a
``num_classes`` fc: 4.13/2.53/1.09/0.69.  The difference (0.54 % at 224) is
BatchNorm: thop's ``count_normalization`` charges 2 ops per element and
doubles that for an affine BN (4 per element), fvcore charges 2 per element;
thop also charges adaptive average pooling (kernel + 1) per output element
where fvcore charges 1 per input element (≈ 2 kMACs).  Both count convolutions
and fc identically and charge nothing for ReLU and max-pooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobSpec, Method, MethodCard, Output
from evbench.harness.registry import register_method
from evbench.methods.checkpoints import (
    CheckpointError,
    load_converted,
    read_state_dict,
    rename_keys,
    strip_prefix,
)
from evbench.methods.common import FEATURE_CONFIG, check_downscale, lstm_cell_entry, make_encoder
from evbench.methods.exits import (
    ActiveSet,
    TraceRecorder,
    check_clip,
    max_softmax,
    resize_frames,
    select_rows,
)
from evbench.methods.policy import RecurrentPolicy, gumbel_straight_through, gumbel_tau
from evbench.methods.resnet_multibn import MultiBNResNet
from torch import nn

__all__ = ["RSEE", "ProjectedLSTMAggregator", "build_rsee", "convert_official_rsee", "load_official_rsee", "CONFIGS"]

PAPER = ('Q. Wang, C. Yu, S. Chen, W. Fang, N. Xiong, "Joint Adaptive Resolution Selection and Conditional Early '
         'Exiting for Efficient Video Recognition on Edge Devices", Big Data Mining and Analytics, 2025')
DOI = "10.26599/BDMA.2024.9020093"
CODE = "https://github.com/fangvv/RSEE"

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {"input_kind": "pixels", "backbone": "resnet50", "resolutions": (224, 168, 112, 84),
              "policy_backbone": "mobilenet_v2", "frames": 10, "hidden": 512, "agg_hidden": 512},
    # CPU-trainable: resnet10 stages at 112/84/56 px, a 0.35-width MobileNetV2 policy at 56 px, 8 frames
    "lite": {"input_kind": "pixels", "backbone": "resnet10", "resolutions": (112, 84, 56),
             "policy_backbone": "mobilenet_v2_035", "frames": 8, "hidden": 256, "agg_hidden": 256},
    "features": {**FEATURE_CONFIG, "agg_hidden": 512},
    # the official test path, for official checkpoints (load_official_rsee): the four downsample BatchNorms on
    # the 224 px bank and nearest-neighbour downscaling (ops/parallel_resnet.py, ops/dataset.py)
    "official": {"input_kind": "pixels", "backbone": "resnet50", "resolutions": (224, 168, 112, 84),
                 "policy_backbone": "mobilenet_v2", "frames": 10, "hidden": 512, "agg_hidden": 512,
                 "bn_mode": "official", "downscale": "nearest"},
}

#: ``bn_mode`` values: ``"consistent"`` — every BatchNorm uses the chosen resolution's bank (what the official
#: *training* does); ``"official"`` — the official *test* path: the four downsample BatchNorms stay on bank 0.
BN_MODES = ("consistent", "official")

THRESHOLD_SWEEP = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)


class ProjectedLSTMAggregator(nn.Module):
    """RSEE's temporal aggregator (official ``ops/blstm.py`` ``BLSTM_IRTENet``).

    ``h_in = 0`` on the first frame, else ``fc1(y_{t−1})`` (D → H);
    ``(h, c) = LSTMCell(x_t, (h_in, c))`` (D → H); ``y_t = fc2(h)`` (H → D).

    Args:
        dim: D, the backbone feature width (2048).
        hidden: H (``--blstm_hidden_dim``, 512).

    Shapes:
        ``step(x, state)``: ``(N, D)`` and ``None`` or ``((N, D), (N, H))`` →
        ``((N, D), (N, H))`` = ``(y_t, c_t)``.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTMCell(dim, hidden)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dim, self.hidden = dim, hidden

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame: returns ``(y_t, c_t)``, also the next state."""
        if state is None:
            h = x.new_zeros(x.shape[0], self.hidden)
            c = x.new_zeros(x.shape[0], self.hidden)
        else:
            y_prev, c = state
            h = self.fc1(y_prev)
        h, c = self.rnn(x, (h, c))
        return self.fc2(h), c


class RSEE(Method):
    """RSEE (see the module docstring for the algorithm, training and departures).

    Input ``x``: ``(B, T, 3, R, R)`` normalised frames at ``R = max(resolutions)``
    (lower resolutions — the selector's input included — are derived with the
    ``downscale`` setting) or ``(B, T, D)`` features.  Output logits
    ``(B, num_classes)`` of the exit frame.

    Args:
        num_classes: Classes C.
        config: Configuration name (goes on the card).
        input_kind: ``"pixels"`` or ``"features"``.
        frames: T, frames processed in temporal order.
        backbone: Multi-BN ResNet arch (``resnet50`` paper, ``resnet10`` lite).
        resolutions: Backbone resolutions in px, highest first (BN bank order).
        policy_backbone: Lite CNN of the selector (``mobilenet_v2``).
        policy_resolution: Side the selector sees (default: the lowest resolution,
            official ``--policy_input_offset 3`` = 84 px).
        hidden: Selector LSTM width (512).
        agg_hidden: Aggregator LSTM width (``--blstm_hidden_dim`` 512).
        feature_dim: D (features).
        gmacs_per_frame: Declared cost of one input feature (features), GMACs.
        accuracy_weight: Weight of Σ_t CE in the policy stage (0.95).
        efficiency_weight: Weight of E[GMACs] in the policy stage (0.05).
        bn_mode: ``"consistent"`` (every BatchNorm on the chosen resolution's bank,
            as the official training) or ``"official"`` (the official test path:
            the four downsample BatchNorms on bank 0); inference only — the
            training losses always use consistent banks, as officially.
        downscale: How the lower resolutions are derived from the ``R`` px crop
            (:data:`evbench.methods.common.DOWNSCALE_MODES`; ``"nearest"`` for
            official weights, ``ops/dataset.py`` ``rescale_proc``).

    Raises:
        ValueError: Unknown ``input_kind``, ``bn_mode`` or ``downscale``.
    """

    def __init__(
        self, *, num_classes: int, config: str, input_kind: str, frames: int, backbone: str = "resnet50",
        resolutions: tuple[int, ...] = (224, 168, 112, 84), policy_backbone: str = "mobilenet_v2",
        policy_resolution: int | None = None, hidden: int = 512, agg_hidden: int = 512, feature_dim: int = 0,
        gmacs_per_frame: float = 0.0, accuracy_weight: float = 0.95, efficiency_weight: float = 0.05,
        bn_mode: str = "consistent", downscale: str = "antialias",
    ) -> None:
        super().__init__()
        if bn_mode not in BN_MODES:
            raise ValueError(f"rsee: bn_mode must be one of {', '.join(BN_MODES)}; got {bn_mode!r}")
        self.bn_mode = bn_mode
        self.downscale = check_downscale(downscale)
        self.num_classes = num_classes
        self.input_kind = input_kind
        self.frames = frames
        self.accuracy_weight = accuracy_weight
        self.efficiency_weight = efficiency_weight
        if input_kind == "pixels":
            self.resolutions = tuple(int(r) for r in resolutions)
            self.policy = RecurrentPolicy(num_actions=len(self.resolutions), backbone=policy_backbone,
                                          resolution=policy_resolution or min(self.resolutions), hidden=hidden,
                                          prefix="policy")
            self.policy.encoder.downscale = self.downscale
            self.lite_fc = nn.Linear(hidden, num_classes)  # official ``lite_fc``: loaded, never run
            self.backbone = MultiBNResNet(backbone, self.resolutions, fc_dim=None)
            self.backbone_arch = backbone  # its cached-backbone architecture (backbone_slots)
            self.backbone.downsample_bank = 0 if bn_mode == "official" else None
            dim = self.backbone.out_dim
        elif input_kind == "features":
            self.resolutions = ()
            self.encoder = make_encoder("features", feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame)
            dim = feature_dim
        else:
            raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")
        self.dim = dim
        self.aggregator = ProjectedLSTMAggregator(dim, agg_hidden)
        self.new_fc = nn.Linear(dim, num_classes)
        nn.init.normal_(self.new_fc.weight, 0, 0.001)
        nn.init.constant_(self.new_fc.bias, 0)

    @property
    def inference_settings(self) -> dict[str, Any]:
        """How this instance turns its input into decisions: ``bn_mode``, ``downscale``, ``input_norm``.

        Built from the configuration (``bn_mode``/``downscale`` build keys) and
        changed by :func:`load_official_rsee`; a result row records it.
        """
        return {"bn_mode": self.bn_mode if self.input_kind == "pixels" else None,
                "downscale": self.downscale if self.input_kind == "pixels" else None, "input_norm": "imagenet"}

    def set_bn_mode(self, bn_mode: str) -> None:
        """Switch the inference BatchNorm mode (:data:`BN_MODES`).

        Raises:
            ValueError: Unknown mode.
        """
        if bn_mode not in BN_MODES:
            raise ValueError(f"rsee: bn_mode must be one of {', '.join(BN_MODES)}; got {bn_mode!r}")
        self.bn_mode = bn_mode
        if self.input_kind == "pixels":
            self.backbone.downsample_bank = 0 if bn_mode == "official" else None

    # -- inference -------------------------------------------------------------------
    def _bias_vector(self, bias: float, like: torch.Tensor) -> torch.Tensor:
        k = len(self.resolutions)
        return like.new_tensor([bias * i / max(1, k - 1) for i in range(k)])

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Run RSEE with realised savings.

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``.
            knobs: ``threshold`` (float), ``policy_bias`` (float, pixels),
                ``force`` (a resolution in px: every frame runs at it; the
                selector still runs, so forced costs include its overhead).

        Returns:
            :class:`Output`; decisions per sample: ``frames`` (processed, in
            order), ``resolutions`` (px per processed frame, pixels),
            ``exit_frame``, ``exit_confidence``, ``frames_processed``,
            ``frames_total``.

        Raises:
            KnobError: Unknown knob or forced value.
            ValueError: Wrong input layout or a frame side the backbone lacks.
        """
        k = self.resolve_knobs(knobs)
        b, t_total = check_clip(x, "rsee", self.input_kind, self.dim)
        threshold = float(k["threshold"])
        pixels = self.input_kind == "pixels"
        force = self.resolutions.index(int(k["force"])) if pixels and k.get("force") is not None else None
        bias = self._bias_vector(float(k.get("policy_bias", 0.0)), x) if pixels else None
        active = ActiveSet(b, x.device)
        rec = TraceRecorder(b)
        logits = x.new_zeros(b, self.num_classes)
        dec: list[dict[str, Any]] = [{"frames": [], "resolutions": [], "exit_frame": None, "exit_confidence": None,
                                      "frames_total": t_total} for _ in range(b)]
        if not pixels:
            for d in dec:
                del d["resolutions"]
        pstate = self.policy.init_state(b, x) if pixels else None
        agg: tuple[torch.Tensor, torch.Tensor] | None = None
        for t in range(t_total):
            ids = active.tolist()
            frames = active.take(x[:, t])
            if pixels:
                feats, choice, pstate = self._pixel_step(frames, t, ids, rec, pstate, bias, force)
                for i, bank in zip(ids, choice, strict=True):
                    dec[i]["resolutions"].append(self.resolutions[bank])
            else:
                feats = frames
                rec.add(ids, t, self.encoder.module_name, (self.dim,), "input")
            if agg is not None:
                rec.add(ids, t, "aggregator.fc1", (self.dim,), "head")
            y, c = self.aggregator.step(feats, agg)
            agg = (y, c)
            rec.add(ids, t, "aggregator.rnn", (self.dim,), "head")
            rec.add(ids, t, "aggregator.fc2", (self.aggregator.hidden,), "head")
            out = self.new_fc(y)
            rec.add(ids, t, "new_fc", (self.dim,), "head")
            for i in ids:
                dec[i]["frames"].append(t)
            # the exit test (confident(out, threshold, strict=False)) with one host sync per frame
            conf = max_softmax(out)
            conf_list = (conf >= threshold).tolist()
            pos = [j for j, c in enumerate(conf_list) if c or t == t_total - 1]
            if pos:
                conf_val = conf.tolist()
                for j in pos:
                    i = ids[j]
                    logits[i] = out[j]
                    dec[i]["exit_frame"] = t
                    dec[i]["exit_confidence"] = conf_val[j]
                    dec[i]["frames_processed"] = len(dec[i]["frames"])
                    rec.mark_exit([i], "confidence" if conf_list[j] else "last_frame")
            keep = active.retire_at(pos)
            if not active:
                break
            agg = select_rows(keep, *agg)  # type: ignore[assignment]
            if pixels and keep is not None:
                pstate = select_rows(keep, *pstate)  # type: ignore[assignment]
        return Output(logits, rec.steps, dec)

    def _pixel_step(self, frames: torch.Tensor, t: int, ids: list[int], rec: TraceRecorder,
                    pstate: Any, bias: torch.Tensor | None, force: int | None
                    ) -> tuple[torch.Tensor, list[int], Any]:
        """Selector + chosen-resolution backbone for the active samples' frame ``t``.

        Returns:
            ``(features (N, D), chosen bank per active sample (Python ints), new selector state)``.
        """
        a_logits, pstate = self.policy.step(self.policy.encode(frames), pstate)
        rec.add_steps(ids, self.policy.steps(t))
        n = frames.shape[0]
        # the chosen banks on the host (one sync: which backbone runs is the decision itself)
        choice = [force] * n if force is not None else (a_logits + bias).argmax(dim=1).tolist()
        if len(set(choice)) == 1:  # one resolution for every active sample (always at batch 1): no gather/scatter
            bank = choice[0]
            r = self.resolutions[bank]
            f = self.backbone(resize_frames(frames.contiguous(), r, self.downscale), bank)
            rec.add(ids, t, "backbone", (3, r, r), "backbone")
            return (f if f.dtype == frames.dtype else f.to(frames.dtype)), choice, pstate
        feats = frames.new_zeros(n, self.dim)
        for bank, r in enumerate(self.resolutions):
            rows = [j for j, c in enumerate(choice) if c == bank]
            if not rows:
                continue
            sel = torch.tensor(rows, dtype=torch.long, device=frames.device)
            f = self.backbone(resize_frames(frames.index_select(0, sel), r, self.downscale), bank)
            feats.index_copy_(0, sel, f.to(feats.dtype))
            rec.add([ids[j] for j in rows], t, "backbone", (3, r, r), "backbone")
        return feats, choice, pstate

    # -- cost ---------------------------------------------------------------------------
    def cost_entries(self) -> list[CostEntry]:
        """Selector (policy), backbone per resolution, aggregator and classifier (head) or feature input."""
        entries: list[CostEntry] = []
        if self.input_kind == "pixels":
            entries += self.policy.cost_entries()
            entries += [CostEntry("backbone", (3, r, r), role="backbone") for r in self.resolutions]
        else:
            entries.append(self.encoder.cost_entry())
        a = self.aggregator
        entries += [
            lstm_cell_entry("aggregator.rnn", a.dim, a.hidden, role="head"),
            CostEntry("aggregator.fc1", (a.dim,), role="head"),
            CostEntry("aggregator.fc2", (a.hidden,), role="head"),
            CostEntry("new_fc", (self.dim,), role="head"),
        ]
        return entries

    def resolution_gmacs(self) -> list[float]:
        """Backbone GMACs per resolution (cost table, fvcore), highest resolution first."""
        from evbench.harness.costs import cost_table

        table = cost_table(self)
        return [table[("backbone", (3, r, r))] for r in self.resolutions]

    # -- training -------------------------------------------------------------------------
    def backbone_slots(self) -> list[Any]:
        """Cached TSN backbones (:mod:`evbench.harness.backbone_cache`, pixels): the multi-BN ResNet and the selector CNN.

        The multi-BN ResNet with ``new_fc`` is the official ``--irte`` stage
        (every resolution through its own BatchNorm bank, Σ CE), started as
        officially from one trained single-resolution ResNet (``init_from``, at
        the highest resolution); it replaces the ``backbone`` stage.  The
        selector's CNN (ImageNet MobileNetV2 officially) is a TSN classifier at
        the selector's resolution; the ``policy`` stage then trains the selector
        and the aggregator on the frozen backbone, as officially.
        """
        if self.input_kind != "pixels":
            return []
        from evbench.harness.backbone_cache import BackboneSlot, BackboneSpec

        arch = self.backbone_arch
        spec = BackboneSpec(arch, self.resolutions, kind="tsn_multibn",
                            init_from=BackboneSpec(arch, (self.resolutions[0],)))

        def load(net: nn.Module, head: nn.Module) -> None:
            self.backbone.load_state_dict(net.state_dict())
            self.new_fc.load_state_dict(head.state_dict())

        enc = self.policy.encoder

        def load_policy(net: nn.Module, head: nn.Module) -> None:
            enc.backbone.load_state_dict(net.state_dict())

        return [BackboneSlot("backbone", spec, load, covers=("backbone",)),
                BackboneSlot("policy.encoder.backbone", BackboneSpec(enc.backbone_name, (enc.resolution,)),
                             load_policy)]

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """The budget split evenly over the stages (≥ 1 each); all of it to ``policy`` when the cached multi-BN
        backbone replaces the ``backbone`` stage."""
        if stage == "policy" and getattr(self, "backbone_pretrained", None):
            return epochs
        return max(1, epochs // max(1, len(self.card.stages)))

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``backbone``: multi-BN backbone + ``new_fc``; ``policy``: selector + aggregator;
        ``aggregator`` (features): aggregator + ``new_fc``.

        Raises:
            ValueError: Unknown stage.
        """
        if stage == "backbone" and self.input_kind == "pixels":
            mods = [self.backbone, self.new_fc]
        elif stage == "policy" and self.input_kind == "pixels" and getattr(self, "backbone_pretrained", None):
            mods = [self.policy.rnn, self.policy.linear, self.aggregator]  # the cached selector CNN stays fixed
        elif stage == "policy" and self.input_kind == "pixels":
            mods = [self.policy, self.aggregator]
        elif stage == "aggregator" and self.input_kind == "features":
            mods = [self.aggregator, self.new_fc]
        else:
            raise ValueError(f"rsee ({self.input_kind}) has no stage {stage!r}; stages: {self.card.stages}")
        return [p for m in mods for p in m.parameters()]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """The official losses (module docstring).

        Args:
            x: ``(B, T, 3, R, R)`` or ``(B, T, D)``.
            y: ``(B,)`` labels.
            stage: ``backbone``/``policy`` (pixels) or ``aggregator`` (features).
            epoch: 0-based epoch in the stage (Gumbel τ).

        Returns:
            ``(loss, logs)``.

        Raises:
            ValueError: Unknown stage.
        """
        b, t_total = x.shape[:2]
        ce = nn.functional.cross_entropy
        if stage == "backbone" and self.input_kind == "pixels":
            flat = x.flatten(0, 1)
            loss = x.new_zeros(())
            logs: dict[str, float] = {}
            for bank, r in enumerate(self.resolutions):
                out = self.new_fc(self.backbone(resize_frames(flat, r, self.downscale), bank, downsample_bank=None)
                                  ).view(b, t_total, -1).mean(1)
                term = ce(out, y)
                loss = loss + term
                logs[f"ce_{r}"] = term.item()
                logs[f"train_top1_{r}"] = (out.argmax(1) == y).float().mean().item()
            return loss, logs
        if stage == "policy" and self.input_kind == "pixels":
            return self._policy_loss(x, y, epoch)
        if stage == "aggregator" and self.input_kind == "features":
            agg = None
            loss = x.new_zeros(())
            for t in range(t_total):
                agg = self.aggregator.step(x[:, t], agg)
                out = self.new_fc(agg[0])
                loss = loss + ce(out, y)
            return loss, {"ce_sum": loss.item(), "train_top1": (out.argmax(1) == y).float().mean().item()}
        raise ValueError(f"rsee ({self.input_kind}) has no stage {stage!r}; stages: {self.card.stages}")

    def _policy_loss(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        b, t_total = x.shape[:2]
        tau = gumbel_tau(epoch)
        gm = x.new_tensor(self.resolution_gmacs())
        was = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            flat = x.flatten(0, 1)
            bank_feats = torch.stack([self.backbone(resize_frames(flat, r, self.downscale), i,
                                                    downsample_bank=None).view(b, t_total, -1)
                                      for i, r in enumerate(self.resolutions)], dim=2)  # (B, T, K, D)
        self.backbone.train(was)
        frozen_cnn = bool(getattr(self, "backbone_pretrained", None))
        if frozen_cnn:  # the cached selector CNN runs frozen, in eval mode
            self.policy.encoder.eval()
        state = self.policy.init_state(b, x)
        agg = None
        ce_sum = x.new_zeros(())
        rs = []
        for t in range(t_total):
            if frozen_cnn:
                with torch.no_grad():
                    feat_t = self.policy.encode(x[:, t])
            else:
                feat_t = self.policy.encode(x[:, t])
            a_logits, state = self.policy.step(feat_t, state)
            r = gumbel_straight_through(torch.log_softmax(a_logits, dim=1), tau)  # (B, K)
            rs.append(r)
            feat = (r.unsqueeze(-1) * bank_feats[:, t]).sum(1)
            agg = self.aggregator.step(feat, agg)
            out = self.new_fc(agg[0])
            ce_sum = ce_sum + nn.functional.cross_entropy(out, y)
        usage = torch.stack(rs, dim=1).mean(dim=(0, 1))  # (K,)
        eff = (usage * gm).sum()
        loss = self.accuracy_weight * ce_sum + self.efficiency_weight * eff
        logs = {"ce_sum": ce_sum.item(), "gmacs_per_frame": eff.item(), "tau": tau,
                "train_top1": (out.argmax(1) == y).float().mean().item()}
        logs.update({f"usage_{r}": float(u) for r, u in zip(self.resolutions, usage.tolist(), strict=True)})
        return loss, logs


# --------------------------------------------------------------------------- converter

_RULES = [
    (r"^base_model_list\.0\.", "backbone."),
    (r"^base_model\.", "backbone."),
    (r"^new_fc_list\.0\.module\.", "new_fc."),
    (r"^new_fc\.module\.", "new_fc."),
    (r"^lite_backbone\.", "policy.encoder.backbone."),
    (r"^rnn\.", "policy.rnn."),
    (r"^linear\.", "policy.linear."),
    (r"^blstm\.blstm\.", "aggregator.rnn."),
    (r"^blstm\.fc1\.", "aggregator.fc1."),
    (r"^blstm\.fc2\.", "aggregator.fc2."),
    (r"\.module\.", "."),  # ModuleParallel wrappers: conv1.module.weight -> conv1.weight
]


def convert_official_rsee(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official RSEE state_dict (``module.`` DataParallel prefix) to this implementation's keys.

    ``module.base_model_list.0.conv1.module.weight`` → ``backbone.conv1.weight``,
    ``…bn1.bn{i}.*`` → ``backbone.bn1.bn{i}.*``, ``module.new_fc_list.0.module.*``
    → ``new_fc.*``, ``module.lite_backbone.*`` → ``policy.encoder.backbone.*``,
    ``module.rnn.*``/``module.linear.*`` → ``policy.rnn.*``/``policy.linear.*``,
    ``module.lite_fc.*`` → ``lite_fc.*``, ``module.blstm.{blstm,fc1,fc2}.*`` →
    ``aggregator.{rnn,fc1,fc2}.*``.
    """
    return rename_keys(strip_prefix(state, "module."), _RULES)


def load_official_rsee(method: RSEE, source: str | Mapping[str, torch.Tensor], *, bn_mode: str | None = "official",
                       downscale: str | None = "nearest") -> None:
    """Load an official RSEE checkpoint (path or state_dict) into ``method``.

    Missing ``num_batches_tracked`` buffers are filled from the model.  Official
    weights are run the way the official test path runs them: by default the
    method is switched to ``bn_mode="official"`` (downsample BatchNorms on the
    224 px bank) and ``downscale="nearest"`` (as configuration ``official``
    builds it); pass ``None`` to keep the built setting, or ``"consistent"`` /
    ``"antialias"`` explicitly.  :attr:`RSEE.inference_settings` reports the result.

    Args:
        method: A pixel RSEE whose sizes match the checkpoint (configuration
            ``official`` or ``paper``).
        source: Checkpoint path or state_dict (``module.``-prefixed or not).
        bn_mode: Inference BatchNorm mode to select (:data:`BN_MODES`), or None.
        downscale: Downscaling to select (:data:`evbench.methods.common.DOWNSCALE_MODES`), or None.

    Raises:
        CheckpointError: Listing missing/unexpected keys and shape mismatches.
        ValueError: Unknown ``bn_mode`` or ``downscale``.
    """
    if method.input_kind != "pixels":
        raise CheckpointError("official RSEE checkpoints are pixel models; build config 'official'")
    state = read_state_dict(source) if isinstance(source, str) else dict(source)
    conv = convert_official_rsee(state)
    own = method.state_dict()
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in conv:
            conv[key] = value
    load_converted(method, conv, source=source if isinstance(source, str) else "RSEE state_dict")
    if bn_mode is not None:
        method.set_bn_mode(bn_mode)
    if downscale is not None:
        method.downscale = method.policy.encoder.downscale = check_downscale(downscale)


def rsee_card(*, config: str, input_kind: str = "pixels", frames: int = 10, backbone: str = "resnet50",
              resolutions: Sequence[int] = (224, 168, 112, 84), policy_backbone: str = "mobilenet_v2",
              feature_dim: int = 0, bn_mode: str = "consistent", downscale: str = "antialias",
              **_: Any) -> MethodCard:
    """The RSEE card of a configuration (no network is built); arguments as for :class:`RSEE`.

    The abstract's reductions, speed-ups, Jetson FPS and the official per-resolution GMACs are claims of
    the claims registry (``rsee-*``), not card data.
    """
    pixels = input_kind == "pixels"
    resolutions = tuple(int(r) for r in resolutions) if pixels else ()
    knobs = [KnobSpec("threshold", 0.9, "early exit when the aggregated prediction's max softmax >= threshold "
                      "(official --TE; > 1 never exits); the speed knob behind the paper's 12–60 FPS on a Jetson Nano",
                      THRESHOLD_SWEEP, low=0.0)]
    if pixels:
        knobs.append(KnobSpec("policy_bias", 0.0, "added to the selector logits as bias·k/(K−1) for the k-th "
                              "resolution (highest first): > 0 favours low resolutions, < 0 high ones",
                              (-4.0, -2.0, 0.0, 2.0, 4.0)))
    notes = (
        f"bn_mode={bn_mode}: " + ("the official test path (the four downsample BatchNorms stay on the 224 px bank, "
        "ops/parallel_resnet.py)" if bn_mode == "official" else "every BatchNorm on the chosen resolution's bank, "
        "as the official training (the official test path keeps the downsample BatchNorms on bank 0: use "
        "config 'official' or load_official_rsee for official weights)") + f"; downscale={downscale}"
        + (" (official ops/dataset.py rescale_proc)" if downscale == "nearest" else " (the official pipeline uses "
        "nearest)") + ". "
        "Deterministic arg-max resolution choice; the official test path samples the policy "
        "(F.gumbel_softmax with tau=1e-6 is argmax(log p + Gumbel noise)); the official test path decides on "
        "sample 0 of a batch (run with batch 1), here per sample. Frozen backbone in eval mode during the "
        "policy stage. lite_fc is loaded but never run (RSEE discards it). Cost: fvcore counts BN 2/element, "
        "the official thop table 4/element (affine) and adaptive avg-pool (k+1)/output: 4.11/2.51/1.08/0.69 vs "
        "4.13/2.53/1.09/0.69 GMACs at 224/168/112/84. Random initialisation (no ImageNet download)."
    )
    if not pixels:
        notes = ("Features variant: keeps RSEE's projected-LSTM aggregator, new_fc and the confidence exit over "
                 "frames in temporal order; no resolution selector and no multi-BN backbone (a feature vector "
                 "has no resolution). Each frame read is charged the declared feature-extractor cost.")
    return MethodCard(
        action_space="resolution-exit",
        name="rsee",
        title=(f"RSEE ({backbone} @{'/'.join(map(str, resolutions))}, {policy_backbone} selector)" if pixels
               else "RSEE temporal exit (features)"),
        paper=PAPER, doi=DOI, code=CODE, input_kind=input_kind, frames=frames,
        resolution=max(resolutions) if pixels else 0, resolutions=resolutions,
        feature_dim=feature_dim if not pixels else 0, knobs=tuple(knobs),
        force_options=resolutions if pixels else (),
        stages=("backbone", "policy") if pixels else ("aggregator",),
        upper_bound_knobs={"threshold": 1.01, "force": max(resolutions)} if pixels else {"threshold": 1.01},
        config=config, notes=notes,
    )


@register_method("rsee", configs=CONFIGS, card=rsee_card,
                 summary="RSEE: resolution selection + confidence early exit (BDMA 2025)")
def build_rsee(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 10,
               backbone: str = "resnet50", resolutions: tuple[int, ...] = (224, 168, 112, 84),
               policy_backbone: str = "mobilenet_v2", policy_resolution: int | None = None, hidden: int = 512,
               agg_hidden: int = 512, feature_dim: int = 0, gmacs_per_frame: float = 0.0,
               accuracy_weight: float = 0.95, efficiency_weight: float = 0.05, resolution: int | None = None,
               bn_mode: str = "consistent", downscale: str = "antialias") -> RSEE:
    """RSEE on pixels ``(B, T, 3, R, R)`` or features ``(B, T, D)``; see :class:`RSEE`.

    ``resolution`` (the CLI's ``--resolution``) replaces the highest resolution
    and scales the others by the same factor.
    """
    if resolution and input_kind == "pixels":
        top = max(resolutions)
        resolutions = tuple(int(round(r * resolution / top)) for r in resolutions)
    return RSEE(num_classes=num_classes, config=config, input_kind=input_kind, frames=frames, backbone=backbone,
                resolutions=tuple(resolutions), policy_backbone=policy_backbone, policy_resolution=policy_resolution,
                hidden=hidden, agg_hidden=agg_hidden, feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame,
                accuracy_weight=accuracy_weight, efficiency_weight=efficiency_weight, bn_mode=bn_mode,
                downscale=downscale)
