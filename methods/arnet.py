"""AR-Net: adaptive frame resolution (and skipping) with realised savings.

Meng, Lin, Panda, Sattigeri, Karlinsky, Oliva, Saenko, Feris, "AR-Net: Adaptive
Frame Resolution for Efficient Action Recognition", ECCV 2020
(doi:10.1007/978-3-030-58571-6_6); official code ``mengyuest/AR-Net``
(``ops/models_ada.py`` model, ``main_base.py`` losses and checkpoint loading).

Per frame ``t`` a recurrent policy (§3.2, Fig. 2) — a lite CNN on the
low-resolution frame → ``LSTMCell`` → linear — picks one of ``A`` actions, in
the official order (``TSN_Ada._get_action_dimension``):

====================  =================================================================
index                 action
====================  =================================================================
``0 .. K-1``          run branch ``k`` (paper: ResNet-50 @224, ResNet-34 @168, ResNet-18 @112)
``K``                 the policy's own classifier ``lite_fc`` on the policy state (@84)
``K+1 ..``            skip ``s`` frames, ``s`` in ``skips`` (paper: 1, 2, 4)
====================  =================================================================

**Skip semantics** (official ``get_lite_j_and_r``): a skip of ``s`` chosen on
frame ``t`` means frames ``t .. t+s-1`` get no prediction and frames
``t+1 .. t+s-1`` get no policy step (the policy state is carried over).
**Video logits** (official ``combine_logits``): the mean of the executed
frames' logits. **All frames skipped**: the official code returns all-zero
logits (``sum / clamp(count, 1)``), which makes the arg-max class 0; here the
video logits are ``lite_fc`` of the final policy state instead (one linear
layer, counted, trace exit ``"all_skipped"``), in training and inference alike.

**Realised inference** (DESIGN §3): the policy runs first, frame by frame, only
on frames that are not being skipped; then every branch runs *once*, on exactly
the frames (of all samples in the batch) that chose it (``index_select``
grouping), and skipped frames run nothing.  The official model instead runs
every backbone on every frame and masks the logits — ``bench/bench_arnet.py``
times both with the same decisions.

**Deterministic decisions**: inference takes the arg-max action.  The official
test path (``validate`` → ``F.gumbel_softmax(p_t, tau, True)``) samples Gumbel
noise even at test time, so its decisions are random; evbench's are not.  The
``features`` configuration samples as officially (``decisions="sample"``), with
the noise seeded per clip from its input bytes (reproducible, independent of the
batch): its policy, trained on sampled decisions, puts most probability on the
skip actions without any one of them being the arg-max of every frame, so its
arg-max roll-out skips every frame of most clips (measured on a validation split
held out of the train split: 80 % of clips, 56 % top-1, against 91 % sampled).

**Official weights** (configuration ``official``; :func:`load_official_arnet`
selects the same settings by default): ``downscale="nearest"`` — the official
``ops/dataset.py`` derives the 168/112/84 px inputs (the policy's included) from
the normalised 224 px crop by nearest-neighbour interpolation, whereas evbench's
own configurations use antialiased bilinear — and ``rollout="official"`` — the
official policy roll-out on skipped frames (the policy still runs, the hidden
state is held, the cell state moves on) and the all-zero logits of an
all-skipped clip.  With these, ``python -m evbench.bench.faithfulness`` finds
the official ``TSN_Ada.forward`` logits reproduced to ≤ 1e-4 and identical
decisions under forced and arg-max policies, at every resolution.

**Training** (§3.3, Eq. 10–12, ``main_base.py``): Gumbel-softmax
straight-through on the log-probabilities, ``τ = 5·exp(−0.045·epoch)``; loss
``(1−α)·CE + α·E[GMACs per frame] + β·‖u − mean(u)‖₂`` with ``u`` the batch's
action-usage distribution (``cal_eff`` with ``--use_gflops_loss``, L2
uniformity; the official script's ``uniform_loss_weight`` 3.0 is applied inside
the efficiency term, so ``β = α·3``).  Three stages (``scripts_train.sh``):
``warmup`` (A-1: the branches — and the policy CNN with ``lite_fc`` — trained
as classifiers, the action layer fixed), ``joint`` (A-2: everything,
decisions sampled), ``finetune`` (A-3: ``--freeze_policy``: policy CNN, LSTM,
action layer and ``lite_fc`` frozen, the branches trained on the frozen
policy's sampled decisions).

**Feature variant** (``input_kind="features"``, ``x`` of shape ``(B, T, D)``):
AR-Net's skip policy alone: actions *use this frame*, *skip 1/2/4*.  The policy
input is a learned projection ``ReLU(Linear(D → P))`` of the frame feature;
a used frame's full feature goes through a linear classifier.  What the policy
reads is costed by ``policy_input``: ``"cheap"`` (default) declares a cheap
extractor costing ``policy_input_ratio × gmacs_per_frame`` per looked-at frame
(the paper's MobileNetV2@84 / ResNet-50@224 ratio, 0.053 / 4.11) plus the full
feature for used frames; ``"full"`` charges the full feature for every frame the
policy looks at (an honest upper bound: the projection is computed from the
full feature here).  Either way the accuracy is that of a policy that sees a
projection of the full feature, which a cheap extractor would not give.  The
``features`` configuration trains the all-skipped fallback ``lite_fc`` on every
clip's final policy state in the joint and finetune stages
(``fallback_stages``), so at the cheap end of the sweep — most clips skip
every frame — the prediction is an LSTM over a few projected full features:
on the UCF101 carve-out (features suite, seed 0) 91.3 % top-1 at 26
GMACs/video under the cheap accounting (uniform-1: 89.9 % at 77), and the same
recipe costed ``"full"`` 90.2 % at 702.  The features suite reports both.

Departures from the official code, all deliberate: arg-max inference (above);
with ``rollout="evbench"`` (``paper``, ``lite``) the LSTM *cell* state is also
frozen during skipped frames (the official code keeps updating ``cx`` on
skipped frames, because it runs the policy on every frame, and only restores
``hx``) and the all-skipped fallback (above); antialiased downscaling outside
``official``; lite
configurations may skip backbone training in the joint stage and warm up each
branch on a random share of the frames (``joint_backbones`` /
``warmup_all_frames``, CPU budget); finetune runs only the chosen branch per
frame (the gradient is the official one because the frozen policy's decisions
zero the others, except that train-mode batch-norm statistics are taken over
each branch's group of frames).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobSpec, Method, MethodCard, Output, TraceStep
from evbench.harness.registry import register_method
from evbench.methods.checkpoints import (
    CheckpointError,
    load_converted,
    read_state_dict,
    rename_keys,
    strip_prefix,
)
from evbench.methods.common import (
    FEATURE_CONFIG,
    FeatureEncoder,
    PixelEncoder,
    check_downscale,
    lstm_cell_entry,
)
from evbench.methods.policy import RecurrentPolicy, gumbel_straight_through, gumbel_tau
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ARNet", "ARNetFeatures", "build_arnet", "convert_official_arnet", "load_official_arnet",
    "flat_to_torchvision_mobilenet_v2", "ROLLOUTS",
    "run_chunked", "CONFIGS",
]

PAPER = ('Y. Meng, C.-C. Lin, R. Panda, P. Sattigeri, L. Karlinsky, A. Oliva, K. Saenko, R. Feris, '
         '"AR-Net: Adaptive Frame Resolution for Efficient Action Recognition", ECCV 2020')
DOI = "10.1007/978-3-030-58571-6_6"
CODE = "https://github.com/mengyuest/AR-Net"
#: Paper ratio of the policy CNN to the most expensive branch (MobileNetV2 @84 / ResNet-50 @224).
PAPER_POLICY_RATIO = 0.053 / 4.11
#: GMACs of ResNet-50 @224 — the reference scale of the efficiency term for lite/feature configurations.
RESNET50_GMACS = 4.11

CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {
        "input_kind": "pixels", "frames": 16,
        "backbones": ["resnet50", "resnet34", "resnet18"], "resolutions": [224, 168, 112],
        "policy_backbone": "mobilenet_v2", "policy_resolution": 84, "hidden": 512, "skips": [1, 2, 4],
        "policy_head": True, "warmup_all_frames": True, "joint_backbones": True, "eff_reference_gmacs": 0.0,
    },
    # CPU-trainable: ≈ 1.9 GMACs/clip at the upper bound (force=112), 8 frames
    "lite": {
        "input_kind": "pixels", "frames": 8,
        "backbones": ["resnet10", "resnet10", "resnet10"], "resolutions": [112, 84, 56],
        "policy_backbone": "mobilenet_v2_035", "policy_resolution": 48, "hidden": 512, "skips": [1, 2, 4],
        "policy_head": True, "warmup_all_frames": False, "joint_backbones": False,
        "eff_reference_gmacs": RESNET50_GMACS,
    },
    # skip policy on pre-extracted features (B, 25, 4096)
    # decisions "sample": the official test path's sampled decisions, which training also takes; arg-max
    # decisions of this policy skip every frame of 80 % of clips (held-out validation of the train split:
    # 56 % top-1 vs 91 % sampled, 12 epochs). fallback_stages: lite_fc (the all-skipped fallback) learns from
    # every clip's final policy state in the joint stage and from the frozen policy's roll-out in finetune;
    # trained in finetune only it reached 82 % on all-skipped clips of the carve-out, and AR-Net's cheap
    # points fell below uniform-1 (89.2 % at 112 GMACs vs 92.7 % at 77, 8 epochs)
    "features": {**FEATURE_CONFIG, "skips": [1, 2, 4], "hidden": 512, "policy_dim": 256,
                 "eff_reference_gmacs": RESNET50_GMACS, "decisions": "sample",
                 "fallback_stages": ["joint", "finetune"]},
    # the official test path, for official checkpoints (load_official_arnet): nearest-neighbour downscaling
    # (ops/dataset.py rescale_proc) and the official policy roll-out (cell state updated on skipped frames,
    # the policy run on them, an all-skipped clip predicts zeros)
    "official": {
        "input_kind": "pixels", "frames": 16,
        "backbones": ["resnet50", "resnet34", "resnet18"], "resolutions": [224, 168, 112],
        "policy_backbone": "mobilenet_v2", "policy_resolution": 84, "hidden": 512, "skips": [1, 2, 4],
        "policy_head": True, "warmup_all_frames": True, "joint_backbones": True, "eff_reference_gmacs": 0.0,
        "downscale": "nearest", "rollout": "official",
    },
}

#: ``rollout`` values: ``"evbench"`` — a skipped frame runs nothing (policy state frozen, hidden and cell) and
#: an all-skipped clip predicts ``lite_fc`` of the final policy state; ``"official"`` — as the official
#: ``get_lite_j_and_r``: the policy CNN and LSTM run on every frame, a skipped frame keeps the previous hidden
#: state but takes the new cell state, and an all-skipped clip gets all-zero logits (``combine_logits``).
ROLLOUTS = ("evbench", "official")
#: ``decisions`` values: ``"argmax"`` — the policy's arg-max action (deterministic); ``"sample"`` — a
#: Gumbel-max sample of the policy's softmax, as the official test path and as training (seeded per clip).
DECISIONS = ("argmax", "sample")

#: On CPU a grouped backbone call holds at most this many input pixels (4 frames at 224 px): larger
#: calls spill activations out of cache and run slower per MAC (measured on the 2-core CPU, 1 thread:
#: ResNet-50 @224 at 28 GMACs/s with 16 frames per call, 41 with 4; ResNet-18 @112 best at 16).
CPU_CALL_PIXELS = 4 * 224 * 224
#: Frames per backbone call elsewhere (bounds memory for large batches).
MAX_CALL_FRAMES = 64


def run_chunked(encoder: PixelEncoder, frames: torch.Tensor) -> torch.Tensor:
    """``encoder(frames)`` in calls of a bounded size; ``(N, 3, H, W) → (N, D)``, costs unchanged.

    On CPU each call holds at most :data:`CPU_CALL_PIXELS` pixels at the
    encoder's resolution, elsewhere at most :data:`MAX_CALL_FRAMES` frames.
    """
    n = frames.shape[0]
    if frames.device.type == "cpu":
        chunk = max(1, CPU_CALL_PIXELS // (encoder.resolution * encoder.resolution))
    else:
        chunk = MAX_CALL_FRAMES
    if n <= chunk:
        return encoder(frames)
    return torch.cat([encoder(frames[j:j + chunk]) for j in range(0, n, chunk)])


def _stage_split(stage: str, epochs: int) -> int:
    """Epochs of ``stage`` out of ``epochs``: warm-up and finetune ≈ ¼ each (≥ 1), joint the rest (≥ 1)."""
    side = max(1, round(0.25 * epochs))
    if stage in ("warmup", "finetune"):
        return side
    return max(1, epochs - 2 * side)


def _rank_bias(num_actions: int, cheap_bias: float, skip_bias: float, first_skip: int) -> torch.Tensor:
    """Logit bias ``(A,)``: ``cheap_bias·k/(A−1)`` for action ``k`` (actions ordered most → least compute),
    plus ``skip_bias`` on the skip actions."""
    k = torch.arange(num_actions, dtype=torch.float32)
    bias = cheap_bias * k / max(1, num_actions - 1)
    bias[first_skip:] += skip_bias
    return bias


def _knob_specs() -> tuple[KnobSpec, ...]:
    return (
        KnobSpec("cheap_bias", 0.0,
                 "logit bias cheap_bias·k/(A−1) added to action k, actions ordered from most to least compute "
                 "(largest branch … skip 4); > 0 trades accuracy for GMACs", (-1.0, 0.5, 1.0, 1.5, 2.0, 4.0)),
        KnobSpec("skip_bias", 0.0, "logit bias added to every skip action", ()),
    )



def _policy_head_ce(rnn: nn.LSTMCell, lite_fc: nn.Module, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the policy-state classifier over a full roll-out (warm-up stage, AR-Net §3.3).

    Args:
        rnn: The policy LSTM cell.
        lite_fc: Classifier on its hidden state (the 84 px "policy's own head" action).
        feats: Policy features per frame, shape ``(B, T, D)``.
        y: Labels, shape ``(B,)``.

    Returns:
        Scalar loss: CE of the mean over frames of ``lite_fc(h_t)``.
    """
    b = feats.shape[0]
    h = feats.new_zeros(b, rnn.hidden_size)
    c = feats.new_zeros(b, rnn.hidden_size)
    lite = []
    for t in range(feats.shape[1]):
        h, c = rnn(feats[:, t], (h, c))
        lite.append(lite_fc(h))
    return F.cross_entropy(torch.stack(lite, 1).mean(1), y)

class _ARNetBase(Method):
    """What the pixel and feature variants share: the policy roll-out, knobs, losses and stages."""

    num_classes: int
    skips: tuple[int, ...]
    rollout: str = "evbench"  # ROLLOUTS
    decisions: str = "argmax"  # DECISIONS
    sample_seed: int = 0
    n_pred: int  # actions that produce a prediction (branches + policy head, or "use")
    hidden: int
    alpha: float
    beta: float
    tau0: float
    tau_decay: float
    eff_reference_gmacs: float

    # -- policy pieces implemented by the variants ---------------------------------
    def _policy_rnn(self) -> nn.LSTMCell:
        raise NotImplementedError

    def _policy_linear(self) -> nn.Linear:
        raise NotImplementedError

    def _policy_features(self, x: torch.Tensor, rows: torch.Tensor | None, t: int | None) -> torch.Tensor:
        """Policy-CNN/projection features: ``(B, T, P)`` for ``t=None``, else ``(len(rows), P)`` of frame ``t``."""
        raise NotImplementedError

    def _policy_step_trace(self, t: int) -> tuple[list[TraceStep], list[TraceStep]]:
        """Trace of frame ``t``'s policy step: (steps done by ``_policy_features``, LSTM + action layer)."""
        raise NotImplementedError

    def _action_costs(self) -> torch.Tensor:
        """GMACs per frame of each action ``(A,)`` from the cost table (skips 0)."""
        raise NotImplementedError

    @property
    def num_actions(self) -> int:
        """A = prediction actions + skip actions."""
        return self.n_pred + len(self.skips)

    def _video_logits(self, sums: torch.Tensor, counts: list[int], h_last: torch.Tensor,
                      traces: list[list[TraceStep]]) -> torch.Tensor:
        """Mean of the executed frames' logits ``(B, C)``; an all-skipped video falls back to
        ``lite_fc`` on its last policy state (rollout ``"official"``: zeros, i.e. class 0, as officially)."""
        out = sums / torch.tensor([max(1, n) for n in counts], device=sums.device, dtype=sums.dtype).unsqueeze(1)
        empty = [i for i, n in enumerate(counts) if n == 0]
        if empty and self.rollout != "official":
            rows = torch.tensor(empty, device=sums.device)
            out = out.index_copy(0, rows, self.lite_fc(h_last.index_select(0, rows)))
            for i in empty:
                traces[i].append(TraceStep(-1, "lite_fc", (self.hidden,), role="head"))
        return out

    def action_names(self) -> list[str]:
        """Names of the actions in logit order."""
        raise NotImplementedError

    # -- inference: the policy roll-out ---------------------------------------------
    def _rollout(self, x: torch.Tensor, bias: torch.Tensor, force_action: int | None,
                 ) -> tuple[list[list[int]], torch.Tensor, torch.Tensor, list[list[TraceStep]]]:
        """Run the policy frame by frame on the frames that are not being skipped.

        With ``rollout="official"`` the policy runs on every frame (its steps are in
        the trace and costed): a frame being skipped keeps the previous hidden
        state and takes the new cell state, as the official ``get_lite_j_and_r``.

        Args:
            x: ``(B, T, ...)`` clip batch.
            bias: ``(A,)`` logit bias from the knobs.
            force_action: Action index every frame takes (policy still run), or None.

        Returns:
            ``actions`` (B lists of T action indices, −1 on skipped frames),
            ``hs`` ``(B, T, H)`` policy hidden state after each frame's step,
            ``h_last`` ``(B, H)`` final policy hidden state, and the per-sample
            policy trace.
        """
        b, t_total = x.shape[0], x.shape[1]
        rnn, linear = self._policy_rnn(), self._policy_linear()
        h = x.new_zeros(b, self.hidden)
        c = x.new_zeros(b, self.hidden)
        hs = x.new_zeros(b, t_total, self.hidden)
        remain = [0] * b
        actions = [[-1] * t_total for _ in range(b)]
        traces: list[list[TraceStep]] = [[] for _ in range(b)]
        pre = None
        if force_action is not None:
            # no frame can be skipped: encode every frame in one call (same work, fewer launches)
            pre = self._policy_features(x, None, None)
            for i in range(b):
                traces[i] += [s for tt in range(t_total) for s in self._policy_step_trace(tt)[0]]
        bias = bias.to(x.device, x.dtype)
        noise = self._decision_noise(x) if force_action is None else None
        official = self.rollout == "official"
        for t in range(t_total):
            active = [i for i in range(b) if remain[i] == 0]
            skipping = [i for i in range(b) if remain[i] > 0] if official else []
            if skipping:  # official: the LSTM still steps; hidden state restored, cell state kept
                rows = torch.tensor(skipping, device=x.device)
                feat = pre[rows, t] if pre is not None else self._policy_features(x, rows, t)
                _hn, cn = rnn(feat, (h.index_select(0, rows), c.index_select(0, rows)))
                linear(_hn)
                c = c.index_copy(0, rows, cn)
                enc_steps, rnn_steps = self._policy_step_trace(t)
                for i in skipping:
                    traces[i] += rnn_steps if pre is not None else enc_steps + rnn_steps
            if active:
                rows = torch.tensor(active, device=x.device)
                feat = pre[rows, t] if pre is not None else self._policy_features(x, rows, t)
                if len(active) == b:  # every sample steps (always at batch 1): the new state is the whole state
                    h, c = rnn(feat, (h, c))
                    hn = h
                    hs[:, t] = hn
                else:
                    hn, cn = rnn(feat, (h.index_select(0, rows), c.index_select(0, rows)))
                    h = h.index_copy(0, rows, hn)
                    c = c.index_copy(0, rows, cn)
                    hs[rows, t] = hn
                logits = linear(hn) + bias
                if noise is not None:  # decisions="sample": the official test path's Gumbel-max sample
                    logits = logits + noise[rows, t]
                chosen = [force_action] * len(active) if force_action is not None else logits.argmax(1).tolist()
                enc_steps, rnn_steps = self._policy_step_trace(t)
                steps = rnn_steps if pre is not None else enc_steps + rnn_steps
                for i, a in zip(active, chosen, strict=True):
                    actions[i][t] = int(a)
                    traces[i] += steps
                    if a >= self.n_pred:
                        remain[i] = self.skips[a - self.n_pred]
            remain = [max(0, r - 1) for r in remain]
        return actions, hs, h, traces

    def _decision_noise(self, x: torch.Tensor) -> torch.Tensor | None:
        """Gumbel noise ``(B, T, A)`` for ``decisions="sample"`` (``None`` for arg-max decisions).

        The official test path (``main_base.py`` ``validate`` → ``F.gumbel_softmax(p_t, tau, hard=True)``)
        samples every decision; its forward is ``one_hot(argmax(log p_t + g))``, a sample of the policy's
        softmax whatever ``τ``.  Here each clip's noise comes from its own generator, seeded with
        ``sample_seed`` and a CRC-32 of the clip's input bytes, so a clip's decisions are reproducible
        and do not depend on the batch it is in.
        """
        if self.decisions != "sample":
            return None
        import zlib

        rows = []
        for i in range(x.shape[0]):
            key = zlib.crc32(x[i].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            g = torch.Generator().manual_seed((key << 8) ^ int(self.sample_seed))
            u = torch.rand((x.shape[1], self.num_actions), generator=g, dtype=torch.float64)
            rows.append(-torch.log(-torch.log(u.clamp(1e-12, 1.0 - 1e-12))))
        return torch.stack(rows).to(x.device, x.dtype)

    def _knob_bias(self, k: Mapping[str, Any]) -> torch.Tensor:
        return _rank_bias(self.num_actions, float(k["cheap_bias"]), float(k["skip_bias"]), self.n_pred)

    # -- training: the differentiable roll-out --------------------------------------
    def _rollout_train(self, feats: torch.Tensor, tau: float, *, sample: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gumbel-softmax straight-through roll-out over all frames (official ``get_lite_j_and_r``).

        Args:
            feats: ``(B, T, P)`` policy features.
            tau: Gumbel temperature.
            sample: Sample with Gumbel noise (training); False takes the arg-max.

        Returns:
            ``r`` ``(B, T, A)`` one-hot decisions (straight-through gradients;
            on skipped frames the skip decision is repeated, as officially),
            ``hs`` ``(B, T, H)`` hidden states, ``h_last`` ``(B, H)``.
        """
        rnn, linear = self._policy_rnn(), self._policy_linear()
        b, t_total = feats.shape[:2]
        h = feats.new_zeros(b, self.hidden)
        c = feats.new_zeros(b, self.hidden)
        remain = torch.zeros(b, dtype=torch.long, device=feats.device)
        skip_len = torch.tensor(self.skips, dtype=torch.long, device=feats.device)
        rs, hs = [], []
        r_prev = None
        for t in range(t_total):
            hn, cn = rnn(feats[:, t], (h, c))
            logp = F.log_softmax(linear(hn), dim=1)
            if sample:
                r = gumbel_straight_through(logp, tau)
            else:
                r = F.one_hot(logp.argmax(1), logp.shape[1]).to(logp.dtype)
            keep = remain > 0
            if r_prev is not None:
                r = torch.where(keep[:, None], r_prev, r)
                hn = torch.where(keep[:, None], h, hn)
                if self.rollout != "official":  # official: the cell state moves on during a skip
                    cn = torch.where(keep[:, None], c, cn)
            a = r.detach().argmax(1)
            is_skip = (~keep) & (a >= self.n_pred)
            new_len = skip_len[(a - self.n_pred).clamp(min=0, max=len(self.skips) - 1)]
            remain = torch.where(is_skip, new_len, remain)
            remain = (remain - 1).clamp(min=0)
            h, c, r_prev = hn, cn, r
            rs.append(r)
            hs.append(hn)
        return torch.stack(rs, 1), torch.stack(hs, 1), h

    def _combine(self, r: torch.Tensor, frame_logits: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
        """Video logits: mean of the chosen frames' logits (official ``combine_logits``), fallback if none.

        Args:
            r: ``(B, T, A)`` decisions.
            frame_logits: ``(B, T, n_pred, C)`` logits of every prediction action on every frame.
            fallback: ``(B, C)`` logits for samples whose frames were all skipped.
        """
        rp = r[:, :, : self.n_pred]
        num = (frame_logits * rp.unsqueeze(-1)).sum(dim=(1, 2))
        cnt = rp.sum(dim=(1, 2))
        pred = num / cnt.clamp(min=1.0).unsqueeze(1)
        return torch.where((cnt > 0.5).unsqueeze(1), pred, fallback)

    def _eff_terms(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E[GMACs per frame] (Eq. 11, cost-table GMACs) and the usage-uniformity term (Eq. 12, L2)."""
        g = self._action_costs().to(r.device, r.dtype)
        if self.eff_reference_gmacs > 0 and float(g.max()) > 0:
            g = g * (self.eff_reference_gmacs / g.max())
        eff = (r.mean(dim=(0, 1)) * g).sum()
        usage = r.sum(dim=(0, 1))
        usage = usage / usage.sum().clamp(min=1e-6)
        unif = torch.linalg.vector_norm(usage - usage.mean())
        return eff, unif

    def _tau(self, stage: str, epoch: int) -> float:
        if stage == "joint":
            self._joint_epochs = max(getattr(self, "_joint_epochs", 0), epoch + 1)
            return gumbel_tau(epoch, tau0=self.tau0, decay=self.tau_decay)
        # finetune: the official script restarts at the temperature reached in joint training
        return gumbel_tau(getattr(self, "_joint_epochs", 0) + epoch, tau0=self.tau0, decay=self.tau_decay)

    def _loss_from(self, pred: torch.Tensor, y: torch.Tensor, r: torch.Tensor, tau: float
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        ce = F.cross_entropy(pred, y)
        eff, unif = self._eff_terms(r)
        loss = (1 - self.alpha) * ce + self.alpha * eff + self.beta * unif
        usage = r.detach().mean(dim=(0, 1))
        logs = {"ce": ce.item(), "eff_gmacs": eff.item(), "uniformity": unif.item(), "tau": tau,
                "train_top1": (pred.argmax(1) == y).float().mean().item(),
                "skip_fraction": float(usage[self.n_pred:].sum())}
        return loss, logs

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """Warm-up ≈ ¼, joint ≈ ½, finetune ≈ ¼ of the budget (each ≥ 1); official A-1/A-2/A-3."""
        return _stage_split(stage, epochs)

    @staticmethod
    def _check_stage(stage: str) -> None:
        if stage not in ("warmup", "joint", "finetune"):
            raise ValueError(f"AR-Net stages are warmup, joint, finetune; got {stage!r}")


# =============================================================================== pixels


class ARNet(_ARNetBase):
    """AR-Net on pixels: per-frame resolution/skip policy, one backbone per resolution.

    Input ``x``: ``(B, T, 3, R, R)`` ImageNet-normalised frames at the largest
    branch resolution ``R``; lower resolutions are resized from it inside
    (not counted).  Output logits ``(B, num_classes)``.

    Module names (cost keys; official names in brackets): ``policy.encoder.backbone``
    [``lite_backbone``], ``policy.rnn`` [``rnn``], ``policy.linear`` [``linear``],
    ``lite_fc`` [``lite_fc``], ``branches.{k}.backbone`` [``base_model_list.{k}``],
    ``heads.{k}`` [``new_fc_list.{k}``].

    Args:
        num_classes: Classes C.
        config: Configuration name (goes on the card).
        frames: T.
        backbones: Branch backbone names, most expensive first.
        resolutions: Branch resolutions in px, same order.
        policy_backbone: Policy CNN name.
        policy_resolution: Policy input side in px (also the policy-head action's resolution).
        hidden: Policy LSTM hidden size H.
        skips: Skip lengths of the skip actions.
        policy_head: Include the "policy's own classifier" action (official ``--policy_also_backbone``).
        alpha: Efficiency weight α of the loss.
        beta: Uniformity weight β of the loss.
        dropout: Dropout on every CNN feature before its linear layer (training only).
        tau0: Initial Gumbel temperature.
        tau_decay: Temperature decay per epoch.
        warmup_all_frames: Warm up every branch on every frame (official); False trains
            each frame's features in one random branch (CPU budget).
        joint_backbones: Train branch backbones in the joint stage (official); False
            keeps them fixed there (CPU budget).
        eff_reference_gmacs: If > 0, the efficiency term's GMACs are rescaled so the most
            expensive action costs this much (0: raw cost-table GMACs, official).
        downscale: How the branch and policy resolutions are derived from the ``R`` px
            crop (:data:`evbench.methods.common.DOWNSCALE_MODES`; ``"nearest"`` for
            official weights, as the official ``ops/dataset.py``).
        rollout: :data:`ROLLOUTS` — ``"official"`` reproduces the official policy
            roll-out on skipped frames and the all-skipped zeros.

    Raises:
        ValueError: Mismatched ``backbones``/``resolutions``, an empty branch list,
            or an unknown ``downscale``/``rollout``.
    """

    def __init__(
        self, *, num_classes: int, config: str = "paper", frames: int = 16,
        backbones: Sequence[str] = ("resnet50", "resnet34", "resnet18"), resolutions: Sequence[int] = (224, 168, 112),
        policy_backbone: str = "mobilenet_v2", policy_resolution: int = 84, hidden: int = 512,
        skips: Sequence[int] = (1, 2, 4), policy_head: bool = True, alpha: float = 0.1, beta: float = 0.3,
        dropout: float = 0.5, tau0: float = 5.0, tau_decay: float = 0.045, warmup_all_frames: bool = True,
        joint_backbones: bool = True, eff_reference_gmacs: float = 0.0, downscale: str = "antialias",
        rollout: str = "evbench",
    ) -> None:
        super().__init__()
        if rollout not in ROLLOUTS:
            raise ValueError(f"arnet: rollout must be one of {', '.join(ROLLOUTS)}; got {rollout!r}")
        self.rollout = rollout
        self.downscale = check_downscale(downscale)
        if len(backbones) != len(resolutions) or not backbones:
            raise ValueError(f"need one resolution per branch backbone, got {list(backbones)} / {list(resolutions)}")
        self.num_classes = num_classes
        self.skips = tuple(int(s) for s in skips)
        self.resolutions = tuple(int(r) for r in resolutions)
        self.has_policy_head = bool(policy_head)
        self.n_branches = len(backbones)
        self.n_pred = self.n_branches + int(self.has_policy_head)
        self.hidden = hidden
        self.alpha, self.beta, self.tau0, self.tau_decay = alpha, beta, tau0, tau_decay
        self.warmup_all_frames, self.joint_backbones = warmup_all_frames, joint_backbones
        self.eff_reference_gmacs = eff_reference_gmacs
        self.policy = RecurrentPolicy(num_actions=self.num_actions, backbone=policy_backbone,
                                      resolution=policy_resolution, hidden=hidden, prefix="policy")
        self.policy.encoder.downscale = self.downscale
        self.lite_fc = nn.Linear(hidden, num_classes)
        self.branches = nn.ModuleList(
            PixelEncoder(bb, r, module_name=f"branches.{i}.backbone", downscale=self.downscale)
            for i, (bb, r) in enumerate(zip(backbones, resolutions, strict=True)))
        self.heads = nn.ModuleList(nn.Linear(br.dim, num_classes) for br in self.branches)
        self.dropout = nn.Dropout(dropout)
        for lin in [self.policy.linear, self.lite_fc, *self.heads]:  # official make_a_linear: N(0, 0.001), bias 0
            nn.init.normal_(lin.weight, 0.0, 0.001)
            nn.init.zeros_(lin.bias)
        self.policy_resolution = policy_resolution

    @property
    def inference_settings(self) -> dict[str, Any]:
        """How this instance turns its input into decisions: ``downscale``, ``rollout``, ``input_norm``.

        From the configuration's ``downscale``/``rollout`` build keys; a result row records it.
        """
        return {"downscale": self.downscale, "rollout": self.rollout, "input_norm": "imagenet"}

    def set_inference(self, *, downscale: str | None = None, rollout: str | None = None) -> None:
        """Change the downscaling and/or roll-out setting after building (None keeps it).

        Raises:
            ValueError: Unknown value.
        """
        if rollout is not None:
            if rollout not in ROLLOUTS:
                raise ValueError(f"arnet: rollout must be one of {', '.join(ROLLOUTS)}; got {rollout!r}")
            self.rollout = rollout
        if downscale is not None:
            self.downscale = check_downscale(downscale)
            for enc in [self.policy.encoder, *self.branches]:
                enc.downscale = self.downscale

    # -- names and costs -----------------------------------------------------------
    def action_names(self) -> list[str]:
        """``r<res>`` per branch, ``r<policy res>`` for the policy head, ``skip<s>`` per skip."""
        names = [f"r{r}" for r in self.resolutions]
        if self.has_policy_head:
            names.append(f"r{self.policy_resolution}")
        return names + [f"skip{s}" for s in self.skips]

    def cost_entries(self) -> list[CostEntry]:
        """Policy (CNN, LSTM cell, action layer), ``lite_fc``, and each branch's backbone and head."""
        entries = list(self.policy.cost_entries())
        entries.append(CostEntry("lite_fc", (self.hidden,), role="head"))
        for i, br in enumerate(self.branches):
            entries.append(br.cost_entry())
            entries.append(CostEntry(f"heads.{i}", (br.dim,), role="head"))
        return entries

    def _action_costs(self) -> torch.Tensor:
        from evbench.harness.costs import cost_table

        table = cost_table(self)
        g = [table[br.cost_entry().key] + table[(f"heads.{i}", (br.dim,))] for i, br in enumerate(self.branches)]
        if self.has_policy_head:
            g.append(table[("lite_fc", (self.hidden,))])  # the policy CNN runs anyway (official: 0)
        return torch.tensor(g + [0.0] * len(self.skips))

    # -- policy pieces ---------------------------------------------------------------
    def _policy_rnn(self) -> nn.LSTMCell:
        return self.policy.rnn

    def _policy_linear(self) -> nn.Linear:
        return self.policy.linear

    def _policy_features(self, x: torch.Tensor, rows: torch.Tensor | None, t: int | None) -> torch.Tensor:
        if t is None:
            b, t_total = x.shape[:2]
            flat = x.flatten(0, 1)
            feats = self.policy.encode(flat) if self.training else run_chunked(self.policy.encoder, flat)
            return self.dropout(feats).view(b, t_total, -1)
        return self.dropout(self.policy.encode(x[rows, t]))

    def _policy_step_trace(self, t: int) -> tuple[list[TraceStep], list[TraceStep]]:
        steps = self.policy.steps(t)
        return steps[:1], steps[1:]

    # -- inference -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Realised AR-Net inference (see the module docstring).

        Args:
            x: ``(B, T, 3, R, R)`` normalised frames.
            knobs: ``cheap_bias``, ``skip_bias`` (floats, logit biases) and
                ``force`` (a resolution of ``card.force_options``: every frame on
                that branch — or the policy head — with the policy still run).

        Returns:
            :class:`Output`: logits ``(B, C)``; per sample the trace (policy steps
            in frame order, then each branch's frames — the execution order) and
            decisions ``resolutions`` (per frame slot: the resolution run or
            ``"skip"``), ``actions`` (per policy step), ``frames`` (predicted
            frame indices).

        Raises:
            KnobError: Unknown knob or force value.
        """
        k = self.resolve_knobs(knobs)
        force = k["force"]
        force_action = None
        if force is not None:
            force_action = list(self.resolutions).index(force) if force in self.resolutions else self.n_branches
        b, t_total = x.shape[0], x.shape[1]
        actions, hs, h_last, traces = self._rollout(x, self._knob_bias(k), force_action)
        sums = x.new_zeros(b, self.num_classes)
        counts = [0] * b
        for a in range(self.n_pred):
            pairs = [(i, t) for i in range(b) for t in range(t_total) if actions[i][t] == a]
            if not pairs:
                continue
            bi = torch.tensor([p[0] for p in pairs], device=x.device)
            ti = torch.tensor([p[1] for p in pairs], device=x.device)
            if a < self.n_branches:
                frames = x[bi, ti]
                feats = run_chunked(self.branches[a], frames)
                logits = self.heads[a](feats)
                br = self.branches[a]
                for i, t in pairs:
                    traces[i] += [br.step(t), TraceStep(t, f"heads.{a}", (br.dim,), role="head")]
            else:
                logits = self.lite_fc(hs[bi, ti])
                for i, t in pairs:
                    traces[i].append(TraceStep(t, "lite_fc", (self.hidden,), role="head"))
            sums.index_add_(0, bi, logits.to(sums.dtype))  # fp32 accumulator; logits fp16/bf16 under autocast
            for i, _ in pairs:
                counts[i] += 1
        out = self._video_logits(sums, counts, h_last, traces)
        names = self.action_names()
        res_of = list(self.resolutions) + ([self.policy_resolution] if self.has_policy_head else [])
        decisions = []
        for i in range(b):
            last = traces[i][-1]
            traces[i][-1] = TraceStep(last.frame, last.module, last.input_shape,
                                      exit="all_skipped" if counts[i] == 0 else "last_frame", role=last.role)
            decisions.append({
                "resolutions": [res_of[a] if 0 <= a < self.n_pred else "skip" for a in actions[i]],
                "actions": [names[a] for a in actions[i] if a >= 0],
                "frames": [t for t, a in enumerate(actions[i]) if 0 <= a < self.n_pred],
            })
        return Output(out, traces, decisions)

    # -- training --------------------------------------------------------------------
    def backbone_slots(self) -> list[Any]:
        """Cached TSN backbones (:mod:`evbench.harness.backbone_cache`): each branch with its TSN head, the policy CNN.

        As the paper (§4.1: every branch and the policy CNN start from trained
        weights): branch 0 is trained at its resolution from scratch, a
        lower-resolution branch of the same architecture fine-tunes it
        (``init_from``); the policy CNN is trained as a TSN classifier at the
        policy resolution.  Warm-up (A-1) then trains only the policy LSTM and
        ``lite_fc`` (branches and policy CNN kept as loaded), the joint stage
        (A-2) the heads, the policy LSTM, its action layer and ``lite_fc`` on the
        frozen policy CNN; with ``joint_backbones=False`` (lite, CPU budget) the
        branches stay frozen there too and the finetune stage (A-3, branches on
        the frozen policy) is left out.
        """
        from evbench.harness.backbone_cache import BackboneSlot, BackboneSpec

        slots = []
        first = BackboneSpec(self.branches[0].backbone_name, (self.branches[0].resolution,))
        for i, br in enumerate(self.branches):
            spec = BackboneSpec(br.backbone_name, (br.resolution,),
                                init_from=first if i and br.backbone_name == first.arch else None)

            def load(net: nn.Module, head: nn.Module, i: int = i) -> None:
                self.branches[i].backbone.load_state_dict(net.state_dict())
                self.heads[i].load_state_dict(head.state_dict())

            slots.append(BackboneSlot(f"branches.{i}.backbone", spec, load,
                                      covers=() if self.joint_backbones else ("finetune",)))
        enc = self.policy.encoder

        def load_policy(net: nn.Module, head: nn.Module) -> None:
            enc.backbone.load_state_dict(net.state_dict())

        slots.append(BackboneSlot("policy.encoder.backbone", BackboneSpec(enc.backbone_name, (enc.resolution,)),
                                  load_policy))
        return slots

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """As :meth:`_ARNetBase.stage_epochs`; started from cached backbones with the finetune stage left out
        (``joint_backbones=False``), the joint stage also gets finetune's share."""
        if stage == "joint" and getattr(self, "backbone_pretrained", None) and not self.joint_backbones:
            return max(1, epochs - _stage_split("warmup", epochs))
        return _stage_split(stage, epochs)

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``warmup``: branches, heads, policy CNN + LSTM + ``lite_fc`` (action layer fixed) — only the LSTM and
        ``lite_fc`` when started from cached backbones; ``joint``: everything (branch backbones only if
        ``joint_backbones``); ``finetune``: branches and heads (official ``--freeze_policy``)."""
        self._check_stage(stage)
        branch = [p for br in self.branches for p in br.parameters()]
        heads = [p for h in self.heads for p in h.parameters()]
        if stage == "warmup" and getattr(self, "backbone_pretrained", None):
            return list(self.policy.rnn.parameters()) + list(self.lite_fc.parameters())
        if stage == "warmup":
            return (branch + heads + list(self.policy.encoder.parameters()) + list(self.policy.rnn.parameters())
                    + list(self.lite_fc.parameters()))
        if stage == "joint" and getattr(self, "backbone_pretrained", None):  # the cached policy CNN stays fixed
            return ((branch if self.joint_backbones else []) + heads + list(self.policy.rnn.parameters())
                    + list(self.policy.linear.parameters()) + list(self.lite_fc.parameters()))
        if stage == "joint":
            return (branch if self.joint_backbones else []) + heads + list(self.policy.parameters()) + list(
                self.lite_fc.parameters())
        return branch + heads

    def _branch_logits(self, k: int, frames: torch.Tensor) -> torch.Tensor:
        return self.heads[k](self.dropout(self.branches[k](frames)))

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """The AR-Net loss of one batch for ``stage`` (see the module docstring).

        Args:
            x: ``(B, T, 3, R, R)`` frames.
            y: ``(B,)`` labels.
            stage: ``"warmup"``, ``"joint"`` or ``"finetune"``.
            epoch: 0-based epoch within the stage (temperature schedule).

        Returns:
            ``(loss, logs)``.

        Raises:
            ValueError: Unknown stage.
        """
        self._check_stage(stage)
        b, t_total = x.shape[:2]
        flat = x.flatten(0, 1)
        if stage == "warmup":
            return self._warmup_loss(x, y)
        tau = self._tau(stage, epoch)
        if stage == "joint":
            if getattr(self, "backbone_pretrained", None):  # the cached policy CNN runs frozen, in eval mode
                self.policy.encoder.eval()
                with torch.no_grad():
                    feats = self._policy_features(x, None, None)
            else:
                feats = self._policy_features(x, None, None)
            r, hs, h_last = self._rollout_train(feats, tau)
            per = []
            for i in range(self.n_branches):
                if self.joint_backbones:
                    per.append(self._branch_logits(i, flat))
                else:
                    with torch.no_grad():
                        was = self.branches[i].training
                        self.branches[i].eval()
                        f = self.branches[i](flat)
                        self.branches[i].train(was)
                    per.append(self.heads[i](self.dropout(f)))
            per = [p.view(b, t_total, -1) for p in per]
            if self.has_policy_head:
                per.append(self.lite_fc(hs))
            pred = self._combine(r, torch.stack(per, 2), self.lite_fc(h_last))
            return self._loss_from(pred, y, r, tau)
        # finetune: frozen policy; only the chosen branch runs on each frame (same gradient, see docstring)
        with torch.no_grad():
            r, hs, h_last = self._rollout_train(self._policy_features(x, None, None), tau)
            a = r.argmax(2).flatten()
        sums = x.new_zeros(b * t_total, self.num_classes)
        for i in range(self.n_branches):
            idx = (a == i).nonzero().flatten()
            if len(idx):
                sums = sums.index_add(0, idx, self._branch_logits(i, flat.index_select(0, idx)))
        if self.has_policy_head:
            with torch.no_grad():
                lite = self.lite_fc(hs).flatten(0, 1)
            sums = sums + lite * (a == self.n_branches).unsqueeze(1).to(lite.dtype)
        cnt = (a < self.n_pred).view(b, t_total).sum(1).to(x.dtype)
        pred = sums.view(b, t_total, -1).sum(1) / cnt.clamp(min=1).unsqueeze(1)
        with torch.no_grad():
            fallback = self.lite_fc(h_last)
        pred = torch.where((cnt > 0).unsqueeze(1), pred, fallback)
        return self._loss_from(pred, y, r, tau)

    def _warmup_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Branches as TSN classifiers (official A-1) plus the policy CNN → LSTM → ``lite_fc`` classifier."""
        b, t_total = x.shape[:2]
        flat = x.flatten(0, 1)
        loss = x.new_zeros(())
        logs: dict[str, float] = {}
        if getattr(self, "backbone_pretrained", None):  # branches trained already: the policy LSTM + lite_fc
            was = self.policy.encoder.training
            self.policy.encoder.eval()
            with torch.no_grad():
                feats = self._policy_features(x, None, None)
            self.policy.encoder.train(was)
            ce_lite = _policy_head_ce(self.policy.rnn, self.lite_fc, feats, y)
            return ce_lite, {"ce_policy_head": ce_lite.item()}
        if self.warmup_all_frames:
            assign = None
        else:
            assign = torch.randint(self.n_branches, (b * t_total,), device=x.device)
        for i in range(self.n_branches):
            if assign is None:
                logits = self._branch_logits(i, flat).view(b, t_total, -1).mean(1)
                ce = F.cross_entropy(logits, y)
            else:
                idx = (assign == i).nonzero().flatten()
                if not len(idx):
                    continue
                fl = self._branch_logits(i, flat.index_select(0, idx))
                sample = idx // t_total
                sums = fl.new_zeros(b, self.num_classes).index_add(0, sample, fl)
                cnt = torch.bincount(sample, minlength=b).to(fl.dtype)
                ok = cnt > 0
                ce = F.cross_entropy(sums[ok] / cnt[ok].unsqueeze(1), y[ok])
            loss = loss + ce
            logs[f"ce_branch{i}"] = ce.item()
        ce_lite = _policy_head_ce(self.policy.rnn, self.lite_fc, self._policy_features(x, None, None), y)
        logs["ce_policy_head"] = ce_lite.item()
        loss = loss + ce_lite
        return loss, logs


# =============================================================================== features


class ARNetFeatures(_ARNetBase):
    """AR-Net's skip policy on pre-extracted features ``(B, T, D)``.

    Actions: ``use`` (the frame's full feature → linear classifier), ``skip1``,
    ``skip2``, ``skip4`` (same skip semantics as the pixel model).  Policy:
    ``policy.proj`` (``Linear(D → P)`` + ReLU, the learned stand-in for the lite
    CNN) → ``policy.rnn`` (``LSTMCell(P → H)``) → ``policy.linear`` (``H → A``).
    Video logits: mean of the used frames' ``head`` logits; all skipped →
    ``lite_fc`` of the final policy state.

    Args:
        num_classes: Classes C.
        config: Configuration name.
        frames: T (25 for the shared UCF101 features).
        feature_dim: D.
        gmacs_per_frame: Declared GMACs of one full frame feature.
        skips: Skip lengths.
        hidden: H.
        policy_dim: P.
        policy_input: ``"cheap"`` — the policy's input costs ``policy_input_ratio ×
            gmacs_per_frame`` per looked-at frame (declared ``policy_features``),
            a used frame adds its full feature; ``"full"`` — every looked-at frame
            costs the full feature (counted once per frame).
        policy_input_ratio: See ``policy_input``.
        alpha, beta, dropout, tau0, tau_decay, eff_reference_gmacs: As for :class:`ARNet`.
        joint_epochs: Epochs of the joint stage (A-2) whatever the suite's budget
            (``0``: the budget split of :func:`_stage_split`).  The official A-2
            runs 50 epochs (``scripts_train.sh``), over which ``τ = 5·exp(−0.045·e)``
            anneals from 5 to 0.53; a 6-epoch joint stage ends at τ ≈ 3.8.
        decisions: :data:`DECISIONS` — ``"sample"`` takes each decision as a
            Gumbel-max sample of the policy's softmax, as the official test path
            and as every training stage do (seeded per clip: reproducible);
            ``"argmax"`` the most likely action.
        sample_seed: Seed of the ``"sample"`` decisions.
        fallback_stages: Stages that also train ``lite_fc`` — the all-skipped
            fallback, which the official code does not have (it predicts zeros) —
            with ``CE(lite_fc(h_T), y)`` on the final policy state ``h_T`` of the
            sampled skipping roll-out, the state it reads at inference, for every
            clip of the batch: ``"joint"`` (A-2; the gradient also reaches the
            policy LSTM and projection, as the official joint stage's gradient
            reaches the policy through its own head ``lite_fc`` whenever that
            action is taken) and/or ``"finetune"`` (A-3, policy frozen: only
            ``lite_fc`` learns).  Empty: ``lite_fc`` is trained in warm-up on
            states of a roll-out that skips nothing, and in the joint stage only
            through the rare all-skipped training clips.

    Raises:
        ValueError: Bad ``policy_input``, ``feature_dim``, ``decisions`` or ``fallback_stages``.
    """

    def __init__(
        self, *, num_classes: int, config: str = "features", frames: int = 25, feature_dim: int = 4096,
        gmacs_per_frame: float = 0.0, skips: Sequence[int] = (1, 2, 4), hidden: int = 512, policy_dim: int = 256,
        policy_input: str = "cheap", policy_input_ratio: float = PAPER_POLICY_RATIO, alpha: float = 0.1,
        beta: float = 0.3, dropout: float = 0.5, tau0: float = 5.0, tau_decay: float = 0.045,
        eff_reference_gmacs: float = RESNET50_GMACS, joint_epochs: int = 0, decisions: str = "argmax",
        sample_seed: int = 0, fallback_stages: Sequence[str] = (),
    ) -> None:
        super().__init__()
        bad = sorted(set(fallback_stages) - {"joint", "finetune"})
        if bad:
            raise ValueError(f"arnet: fallback_stages must be among joint, finetune; got {', '.join(bad)}")
        self.fallback_stages = tuple(dict.fromkeys(str(st) for st in fallback_stages))
        if decisions not in DECISIONS:
            raise ValueError(f"arnet: decisions must be one of {', '.join(DECISIONS)}; got {decisions!r}")
        self.decisions, self.sample_seed = decisions, int(sample_seed)
        if joint_epochs < 0:
            raise ValueError(f"joint_epochs must be >= 0, got {joint_epochs}")
        self.joint_epochs = int(joint_epochs)
        if policy_input not in ("cheap", "full"):
            raise ValueError(f"policy_input must be 'cheap' or 'full', got {policy_input!r}")
        if feature_dim <= 0:
            raise ValueError("feature_dim must be > 0")
        self.num_classes = num_classes
        self.skips = tuple(int(s) for s in skips)
        self.n_pred = 1
        self.hidden = hidden
        self.alpha, self.beta, self.tau0, self.tau_decay = alpha, beta, tau0, tau_decay
        self.eff_reference_gmacs = eff_reference_gmacs
        self.policy_input = policy_input
        self.encoder = FeatureEncoder(feature_dim, gmacs_per_frame)
        self.cheap_gmacs = policy_input_ratio * gmacs_per_frame
        self.policy = nn.Module()
        self.policy.proj = nn.Linear(feature_dim, policy_dim)
        self.policy.rnn = nn.LSTMCell(policy_dim, hidden)
        self.policy.linear = nn.Linear(hidden, self.num_actions)
        self.lite_fc = nn.Linear(hidden, num_classes)
        self.head = nn.Linear(feature_dim, num_classes)
        self.dropout = nn.Dropout(dropout)
        for lin in (self.policy.linear, self.lite_fc):
            nn.init.normal_(lin.weight, 0.0, 0.001)
            nn.init.zeros_(lin.bias)
        self.policy_dim = policy_dim

    @property
    def inference_settings(self) -> dict[str, Any]:
        """How this instance decides: ``decisions`` (arg-max or sampled), ``sample_seed``, ``rollout``."""
        return {"decisions": self.decisions, "sample_seed": self.sample_seed, "rollout": self.rollout}

    def action_names(self) -> list[str]:
        """``use`` then ``skip<s>``."""
        return ["use"] + [f"skip{s}" for s in self.skips]

    def cost_entries(self) -> list[CostEntry]:
        """Declared feature costs, policy projection/LSTM/action layer, ``lite_fc`` and the classifier."""
        d = self.encoder.dim
        entries = [self.encoder.cost_entry()]
        if self.policy_input == "cheap":
            entries.append(CostEntry("policy_features", (d,), role="input", declared_gmacs=self.cheap_gmacs,
                                     source="assumed cheap extractor: policy_input_ratio × per-frame feature cost"))
        entries += [
            CostEntry("policy.proj", (d,), role="policy"),
            lstm_cell_entry("policy.rnn", self.policy_dim, self.hidden, role="policy"),
            CostEntry("policy.linear", (self.hidden,), role="policy"),
            CostEntry("lite_fc", (self.hidden,), role="head"),
            CostEntry("head", (d,), role="head"),
        ]
        return entries

    def _action_costs(self) -> torch.Tensor:
        from evbench.harness.costs import cost_table

        table = cost_table(self)
        d = self.encoder.dim
        use = table[("head", (d,))] + (self.encoder.gmacs_per_frame if self.policy_input == "cheap" else 0.0)
        return torch.tensor([use] + [0.0] * len(self.skips))

    def _policy_rnn(self) -> nn.LSTMCell:
        return self.policy.rnn

    def _policy_linear(self) -> nn.Linear:
        return self.policy.linear

    def _policy_features(self, x: torch.Tensor, rows: torch.Tensor | None, t: int | None) -> torch.Tensor:
        src = x if t is None else x[rows, t]
        return self.dropout(F.relu(self.policy.proj(src)))

    def _policy_step_trace(self, t: int) -> tuple[list[TraceStep], list[TraceStep]]:
        d = self.encoder.dim
        read = (TraceStep(t, "policy_features", (d,), role="input") if self.policy_input == "cheap"
                else self.encoder.step(t))
        return ([read, TraceStep(t, "policy.proj", (d,), role="policy")],
                [TraceStep(t, "policy.rnn", (self.policy_dim,), role="policy"),
                 TraceStep(t, "policy.linear", (self.hidden,), role="policy")])

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Realised skip-policy inference on ``(B, T, D)`` features.

        Args:
            x: ``(B, T, D)`` features.
            knobs: ``cheap_bias``, ``skip_bias``, ``force="use"`` (every frame used,
                policy still run).

        Returns:
            :class:`Output` with logits ``(B, C)``, traces and decisions
            (``actions``, ``frames`` used, ``resolutions`` = ``"feature"``/``"skip"``
            per frame slot).

        Raises:
            KnobError: Unknown knob.
        """
        k = self.resolve_knobs(knobs)
        force_action = 0 if k["force"] is not None else None
        b, t_total = x.shape[:2]
        actions, _hs, h_last, traces = self._rollout(x, self._knob_bias(k), force_action)
        pairs = [(i, t) for i in range(b) for t in range(t_total) if actions[i][t] == 0]
        out = x.new_zeros(b, self.num_classes)
        counts = [0] * b
        d = self.encoder.dim
        if pairs:
            bi = torch.tensor([p[0] for p in pairs], device=x.device)
            ti = torch.tensor([p[1] for p in pairs], device=x.device)
            logits = self.head(self.encoder(x[bi, ti]))
            out = out.index_add(0, bi, logits)
            for i, t in pairs:
                counts[i] += 1
                if self.policy_input == "cheap":
                    traces[i].append(self.encoder.step(t))
                traces[i].append(TraceStep(t, "head", (d,), role="head"))
        out = self._video_logits(out, counts, h_last, traces)
        names = self.action_names()
        decisions = []
        for i in range(b):
            last = traces[i][-1]
            traces[i][-1] = TraceStep(last.frame, last.module, last.input_shape,
                                      exit="all_skipped" if counts[i] == 0 else "last_frame", role=last.role)
            decisions.append({
                "resolutions": ["feature" if a == 0 else "skip" for a in actions[i]],
                "actions": [names[a] for a in actions[i] if a >= 0],
                "frames": [t for t, a in enumerate(actions[i]) if a == 0],
            })
        return Output(out, traces, decisions)

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """As :meth:`_ARNetBase.stage_epochs`, but ``joint_epochs`` (if set) fixes the joint stage's length."""
        if stage == "joint" and self.joint_epochs:
            return self.joint_epochs
        return _stage_split(stage, epochs)

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """``warmup``: classifier, projection, LSTM, ``lite_fc``; ``joint``: all; ``finetune``: classifier
        (and ``lite_fc`` with ``"finetune"`` in ``fallback_stages``)."""
        self._check_stage(stage)
        if stage == "warmup":
            return (list(self.head.parameters()) + list(self.policy.proj.parameters())
                    + list(self.policy.rnn.parameters()) + list(self.lite_fc.parameters()))
        if stage == "joint":
            return list(self.parameters())
        return list(self.head.parameters()) + (list(self.lite_fc.parameters())
                                                if "finetune" in self.fallback_stages else [])

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """AR-Net loss on features (warm-up: TSN classifier + policy-state classifier).

        Raises:
            ValueError: Unknown stage.
        """
        self._check_stage(stage)
        frame_logits = self.head(self.dropout(x))  # (B, T, C)
        if stage == "warmup":
            ce_head = F.cross_entropy(frame_logits.mean(1), y)
            ce_lite = _policy_head_ce(self.policy.rnn, self.lite_fc, self._policy_features(x, None, None), y)
            return ce_head + ce_lite, {"ce_head": ce_head.item(), "ce_policy_head": ce_lite.item()}
        tau = self._tau(stage, epoch)
        if stage == "joint":
            r, _hs, h_last = self._rollout_train(self._policy_features(x, None, None), tau)
            fallback = self.lite_fc(h_last)
        else:
            with torch.no_grad():
                r, _hs, h_last = self._rollout_train(self._policy_features(x, None, None), tau)
            fallback = self.lite_fc(h_last)
        pred = self._combine(r, frame_logits.unsqueeze(2), fallback)
        loss, logs = self._loss_from(pred, y, r, tau)
        if stage in self.fallback_stages:
            # the all-skipped fallback learns from the state every clip's skipping roll-out ends in
            ce_fb = F.cross_entropy(fallback, y)
            loss = loss + ce_fb
            logs["ce_fallback"] = ce_fb.item()
        return loss, logs


# =============================================================================== builder


def arnet_card(*, config: str, input_kind: str = "pixels", frames: int = 16,
               backbones: Sequence[str] = ("resnet50", "resnet34", "resnet18"),
               resolutions: Sequence[int] = (224, 168, 112), policy_backbone: str = "mobilenet_v2",
               policy_resolution: int = 84, policy_head: bool = True, feature_dim: int = 0,
               gmacs_per_frame: float = 0.0, policy_input: str = "cheap",
               policy_input_ratio: float = PAPER_POLICY_RATIO, warmup_all_frames: bool = True,
               joint_backbones: bool = True, downscale: str = "antialias", rollout: str = "evbench",
               decisions: str = "argmax", fallback_stages: Sequence[str] = (), **_: Any) -> MethodCard:
    """The AR-Net card of a configuration (no network is built); arguments as for :func:`build_arnet`.

    The paper's mAP and GMACs (Table 1) and the per-module GMACs are claims of the claims registry
    (``arnet-*``), not card data.
    """
    if input_kind == "pixels":
        res = tuple(int(r) for r in resolutions)
        # force=<res> picks the branch at that resolution; the policy head only if no branch has it
        force = tuple(dict.fromkeys(res + ((policy_resolution,) if policy_head else ())))
        return MethodCard(
            action_space="skip-policy",
            name="arnet",
            title="AR-Net (" + ", ".join(f"{bb}@{r}" for bb, r in zip(backbones, res, strict=True))
                  + f"; policy {policy_backbone}@{policy_resolution})",
            paper=PAPER, doi=DOI, code=CODE, input_kind="pixels", frames=frames,
            resolution=max(res), resolutions=force, knobs=_knob_specs(),
            force_options=force, stages=("warmup", "joint", "finetune"),
            upper_bound_knobs={"force": max(res)}, config=config,
            notes=(f"downscale={downscale}" + (" (official ops/dataset.py rescale_proc)" if downscale == "nearest"
                   else " (the official pipeline uses nearest: config 'official' for official weights)")
                   + f"; rollout={rollout}: " + (
                       "as officially, the policy CNN and LSTM run on skipped frames too (costed), the hidden state "
                       "is held and the cell state moves on, and an all-skipped clip gets zero logits (class 0). "
                       if rollout == "official" else
                       "skipped frames run nothing and freeze the policy state (official: the policy runs on every "
                       "frame and keeps updating cx); all frames skipped: logits = lite_fc(final policy state) "
                       "(official: zeros). ")
                   + "Inference: arg-max decisions (the official test path samples Gumbel noise); only the chosen "
                   "branch runs per frame, frames grouped per branch across the batch (the official model runs "
                   "every backbone on every frame and masks the logits — same outputs). Random initialisation "
                   "(no ImageNet download); load official weights with evbench.methods.arnet.load_official_arnet."
                   + ("" if warmup_all_frames and joint_backbones else
                      " CPU budget: branch backbones fixed in the joint stage, warm-up on a random share of "
                      "frames per branch; efficiency term rescaled so the largest action costs 4.11 GMACs.")),
        )
    cost_note = (f"policy input = a cheap extractor assumed to cost {policy_input_ratio:.4f} × the per-frame "
                 f"feature cost ({policy_input_ratio * gmacs_per_frame:.3f} GMACs, the paper's MobileNetV2@84/ResNet-50@224 ratio), "
                 "charged on every frame the policy looks at; a used frame adds the full feature cost"
                 if policy_input == "cheap" else
                 "every frame the policy looks at is charged the full feature cost (the projection is computed "
                 "from it); using the frame adds nothing more")
    return MethodCard(
        action_space="skip-policy",
        name="arnet", title="AR-Net skip policy (features)", paper=PAPER, doi=DOI, code=CODE,
        input_kind="features", frames=frames, resolution=0, feature_dim=feature_dim, knobs=_knob_specs(),
        force_options=("use",), stages=("warmup", "joint", "finetune"), upper_bound_knobs={"force": "use"},
        config=config,
        notes=("Feature-level analogue of AR-Net: skip-only policy (use / skip 1, 2, 4) on a learned projection "
               "ReLU(Linear(D→P)) of the frame feature. " + cost_note + ". Accuracy is that of a policy "
               "reading a projection of the full feature (optimistic for a truly cheap extractor; so is the "
               "all-skipped fallback lite_fc, which reads only the policy state). "
               + ("Sampled decisions (Gumbel-max, as the official test path and as training; seeded per clip "
                  "from its input bytes, reproducible)" if decisions == "sample" else "Arg-max decisions")
               + "; all frames skipped → lite_fc(final policy state)"
               + (f", also trained ({' and '.join(fallback_stages)} stage) on every clip's final policy state "
                  "of the sampled skipping roll-out (evbench; the official code predicts zeros)"
                  if fallback_stages else "") + "."),
    )


@register_method("arnet", configs=CONFIGS, card=arnet_card,
                 summary="AR-Net (ECCV 2020): per-frame resolution/skip policy, only the chosen backbone runs")
def build_arnet(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int = 16,
                backbones: Sequence[str] = ("resnet50", "resnet34", "resnet18"),
                resolutions: Sequence[int] = (224, 168, 112), policy_backbone: str = "mobilenet_v2",
                policy_resolution: int = 84, hidden: int = 512, skips: Sequence[int] = (1, 2, 4),
                policy_head: bool = True, feature_dim: int = 0, gmacs_per_frame: float = 0.0,
                policy_dim: int = 256, policy_input: str = "cheap", policy_input_ratio: float = PAPER_POLICY_RATIO,
                alpha: float = 0.1, beta: float = 0.3, dropout: float = 0.5, tau0: float = 5.0,
                tau_decay: float = 0.045, warmup_all_frames: bool = True, joint_backbones: bool = True,
                eff_reference_gmacs: float = 0.0, downscale: str = "antialias", rollout: str = "evbench",
                joint_epochs: int = 0, decisions: str = "argmax", sample_seed: int = 0,
                fallback_stages: Sequence[str] = ()) -> Method:
    """AR-Net on pixels ``(B, T, 3, R, R)`` (:class:`ARNet`) or features ``(B, T, D)`` (:class:`ARNetFeatures`).

    Raises:
        ValueError: Unknown ``input_kind`` or inconsistent arguments.
    """
    common = {"num_classes": num_classes, "config": config, "frames": frames, "hidden": hidden, "skips": skips,
              "alpha": alpha, "beta": beta, "dropout": dropout, "tau0": tau0, "tau_decay": tau_decay,
              "eff_reference_gmacs": eff_reference_gmacs}
    if input_kind == "pixels":
        return ARNet(backbones=backbones, resolutions=resolutions, policy_backbone=policy_backbone,
                     policy_resolution=policy_resolution, policy_head=policy_head,
                     warmup_all_frames=warmup_all_frames, joint_backbones=joint_backbones, downscale=downscale,
                     rollout=rollout, **common)
    if input_kind == "features":
        return ARNetFeatures(feature_dim=feature_dim, gmacs_per_frame=gmacs_per_frame, policy_dim=policy_dim,
                             policy_input=policy_input, policy_input_ratio=policy_input_ratio,
                             joint_epochs=joint_epochs, decisions=decisions, sample_seed=sample_seed,
                             fallback_stages=fallback_stages, **common)
    raise ValueError(f"input_kind must be 'pixels' or 'features', got {input_kind!r}")


# =============================================================================== converter

_FLAT_BLOCK = re.compile(r"^(?P<pre>.*features\.)(?P<blk>\d+)\.conv\.(?P<idx>\d+)\.(?P<rest>.+)$")
# flat (TSM-style) inverted-residual layout → torchvision's nested one
_FLAT_EXPAND1 = {0: "0.0", 1: "0.1", 3: "1", 4: "2"}  # block 1: dw conv, bn, (relu), pw conv, bn
_FLAT_EXPAND = {0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"}  # pw, bn, (relu), dw, bn, (relu), pw, bn


def flat_to_torchvision_mobilenet_v2(state: Mapping[str, torch.Tensor], prefix: str = "lite_backbone."
                                     ) -> dict[str, torch.Tensor]:
    """Rename the older flat MobileNetV2 keys (``features.N.conv.{0,1,3,4,6,7}``) to torchvision's nested ones.

    The official AR-Net loader detects this layout by ``lite_backbone.features.1.conv.4.*``
    and converts it (``ops/utils.py::get_mobv2_new_sd(reverse=True)``); keys not under
    ``prefix`` or already nested are left alone.

    Raises:
        CheckpointError: A flat block index that has no torchvision counterpart.
    """
    out: dict[str, torch.Tensor] = {}
    bad = []
    for key, value in state.items():
        m = _FLAT_BLOCK.match(key)
        if key.startswith(prefix) and m and int(m["blk"]) >= 1 and not re.match(r"\d+\.", m["rest"]):
            table = _FLAT_EXPAND1 if int(m["blk"]) == 1 else _FLAT_EXPAND
            idx = int(m["idx"])
            if idx not in table:
                bad.append(key)
                continue
            key = f"{m['pre']}{m['blk']}.conv.{table[idx]}.{m['rest']}"
        out[key] = value
    if bad:
        raise CheckpointError("flat MobileNetV2 keys with no torchvision counterpart: " + ", ".join(sorted(bad)))
    return out


def _is_flat_mobilenet(state: Mapping[str, Any]) -> bool:
    return any(k.startswith("lite_backbone.features.1.conv.4.") or k.startswith("lite_backbone.features.1.conv.3.")
               for k in state)


_ARNET_RULES = [
    (r"^lite_backbone\.", "policy.encoder.backbone."),
    (r"^rnn\.", "policy.rnn."),
    (r"^linear\.", "policy.linear."),
    (r"^base_model_list\.(\d+)\.", r"branches.\1.backbone."),
    (r"^new_fc_list\.(\d+)\.", r"heads.\1."),
]


def convert_official_arnet(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename an official AR-Net ``TSN_Ada`` state_dict to :class:`ARNet` keys (see :func:`load_official_arnet`).

    Raises:
        CheckpointError: A flat MobileNetV2 key with no torchvision counterpart.
    """
    state = strip_prefix(state, "module.")
    if _is_flat_mobilenet(state):
        state = flat_to_torchvision_mobilenet_v2(state)
    return rename_keys(state, _ARNET_RULES)


def load_official_arnet(method: ARNet, source: str | os.PathLike[str] | Mapping[str, torch.Tensor], *,
                        ignore: Callable[[str], bool] | None = None, downscale: str | None = "nearest",
                        rollout: str | None = "official") -> ARNet:
    """Load an official AR-Net checkpoint (``TSN_Ada`` state_dict) into a pixel :class:`ARNet`.

    Key mapping (after stripping DataParallel's ``module.``): ``lite_backbone.*`` →
    ``policy.encoder.backbone.*`` (torchvision MobileNetV2 keys; the older flat layout
    is converted by :func:`flat_to_torchvision_mobilenet_v2`), ``rnn.*`` → ``policy.rnn.*``,
    ``linear.*`` → ``policy.linear.*``, ``lite_fc.*`` → ``lite_fc.*``,
    ``base_model_list.{k}.*`` → ``branches.{k}.backbone.*``, ``new_fc_list.{k}.*`` →
    ``heads.{k}.*``.  The official classifier layers replaced by ``Dropout`` have no
    parameters, so none are expected.

    Official weights are then run as the official test path runs them: by default
    ``downscale="nearest"`` and ``rollout="official"`` are selected (configuration
    ``official`` builds the same); pass ``None`` to keep the built settings.
    :attr:`ARNet.inference_settings` reports the result.

    Args:
        method: A pixel AR-Net whose architecture matches the checkpoint.
        source: A checkpoint path (read with ``weights_only=True``; a ``state_dict``
            entry is used if present) or a state_dict.
        ignore: Predicate for checkpoint keys to drop before the strict check.
        downscale: Downscaling to select (:data:`evbench.methods.common.DOWNSCALE_MODES`), or None.
        rollout: Roll-out to select (:data:`ROLLOUTS`), or None.

    Returns:
        ``method``, loaded.

    Raises:
        CheckpointError: Missing / unexpected keys or shape mismatches, all listed.
        TypeError: ``method`` is not a pixel AR-Net.
        ValueError: Unknown ``downscale`` or ``rollout``.
    """
    if not isinstance(method, ARNet):
        raise TypeError(f"load_official_arnet needs a pixel ARNet, got {type(method).__name__}")
    if isinstance(source, Mapping):
        state, name = dict(source), "state_dict"
    else:
        state, name = read_state_dict(source), str(source)
    load_converted(method, convert_official_arnet(state), source=name, ignore=ignore)
    method.set_inference(downscale=downscale, rollout=rollout)
    return method

