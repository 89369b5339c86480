"""Uniform baselines: one backbone on T uniformly sampled frames — the static frontier.

* ``uniform`` — TSN (Wang et al., "Temporal Segment Networks: Towards Good
  Practices for Deep Action Recognition", ECCV 2016): a shared backbone and
  linear classifier per frame, video logits = average of frame logits
  (the "average" segmental consensus).
* ``uniform_lstm`` — an LSTM over per-frame features (Donahue et al.,
  "Long-term Recurrent Convolutional Networks", CVPR 2015; the LSTM baseline of
  AR-Net and LiteEval): ``LSTMCell(D -> H)`` over frames, classifier on the
  last hidden state.
* ``uniform_stream`` — the TSN baseline frame by frame: the same network,
  one backbone call per frame as a camera stream delivers them, frame logits
  averaged as they arrive.  Same logits and GMACs as ``uniform``; its latency
  is the fair reference for sequential early-exit methods (which also run one
  frame at a time), so a report can tell batching from adaptivity.
* configuration ``features`` — the same on pre-extracted per-frame features
  ``(B, T, D)``; the feature extractor's cost is declared per frame.

The method processes ``frames`` (its T) evenly spaced frames (segment centres)
of the clip it is given — all of them for pixel clips sampled at T, ``k`` of
the 25 for the shared feature clips — and the ``frames`` knob lowers that at
inference without retraining.  Unselected frames are never run, so GMACs and
latency scale with the frames processed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from evbench.harness.api import CostEntry, KnobSpec, Method, MethodCard, Output, TraceStep
from evbench.harness.registry import register_method
from evbench.methods.common import (
    FEATURE_CONFIG,
    PixelEncoder,
    evenly_spaced,
    lstm_cell_entry,
    make_encoder,
)
from torch import nn

TSN_PAPER = ('L. Wang, Y. Xiong, Z. Wang, Y. Qiao, D. Lin, X. Tang, L. Van Gool, "Temporal Segment Networks: '
             'Towards Good Practices for Deep Action Recognition", ECCV 2016')
TSN_DOI = "10.1007/978-3-319-46484-8_2"
LRCN_PAPER = ('J. Donahue, L. A. Hendricks, S. Guadarrama, M. Rohrbach, S. Venugopalan, K. Saenko, T. Darrell, '
              '"Long-term Recurrent Convolutional Networks for Visual Recognition and Description", CVPR 2015')
LRCN_DOI = "10.1109/CVPR.2015.7298878"


CONFIGS = {
    "paper": {"input_kind": "pixels", "backbone": "resnet50", "resolution": 224, "frames": 16},
    "lite": {"input_kind": "pixels", "backbone": "resnet10", "resolution": 112, "frames": 4},
    # feature-level variant on the shared UCF101 VGG16 features: (B, 25, 4096)
    "features": FEATURE_CONFIG,
}


class Uniform(Method):
    """Uniform-sampling baseline with average (TSN) or LSTM consensus.

    Input ``x``: ``(B, T, 3, R, R)`` normalised frames (``input_kind="pixels"``)
    or ``(B, T, D)`` features. Output logits ``(B, num_classes)``.

    Args:
        name: Registry name (goes on the card).
        num_classes: Classes.
        config: Configuration name.
        input_kind: ``"pixels"`` or ``"features"``.
        consensus: ``"avg"`` (mean of frame logits) or ``"lstm"``.
        frames: T.
        backbone: Backbone name (pixels).
        resolution: Backbone resolution in px (pixels).
        feature_dim: D (features).
        gmacs_per_frame: Declared cost of one input feature (features), GMACs.
        hidden: LSTM hidden size.
        dropout: Dropout before the classifier (training only).
        streaming: Inference frame by frame, as a camera stream delivers
            them: frame t gets its own backbone call on ``(B, 3, R, R)`` and
            the consensus is accumulated (running sum of frame logits / the
            LSTM state) — the same network, logits and GMACs as the batched
            call on ``(B·k, 3, R, R)``, but no batching across frames (the
            fair latency reference for sequential early-exit methods).
            Training is batched either way.
    """

    def __init__(
        self, *, name: str, num_classes: int, config: str, input_kind: str, consensus: str, frames: int,
        backbone: str = "", resolution: int = 0, feature_dim: int = 0, gmacs_per_frame: float = 0.0,
        hidden: int = 512, dropout: float = 0.5, streaming: bool = False,
    ) -> None:
        super().__init__()
        self.streaming = bool(streaming)
        if consensus not in ("avg", "lstm"):
            raise ValueError(f"consensus must be 'avg' or 'lstm', got {consensus!r}")
        self.num_classes = num_classes
        self.consensus = consensus
        self.encoder = make_encoder(
            input_kind, backbone=backbone, resolution=resolution, feature_dim=feature_dim,
            gmacs_per_frame=gmacs_per_frame,
        )
        dim = self.encoder.dim
        self.dropout = nn.Dropout(dropout)
        if consensus == "lstm":
            self.rnn = nn.LSTMCell(dim, hidden)
            self.head = nn.Linear(hidden, num_classes)
        else:
            self.head = nn.Linear(dim, num_classes)
        self.hidden = hidden

    # -- inference ---------------------------------------------------------------
    def _select(self, x: torch.Tensor, knobs: Mapping[str, Any] | None) -> list[int]:
        k = int(self.resolve_knobs(knobs)["frames"]) or self.card.frames
        return evenly_spaced(x.shape[1], k)

    def _logits(self, x: torch.Tensor, idx: list[int]) -> torch.Tensor:
        b, k = x.shape[0], len(idx)
        frames = x[:, idx].reshape(b * k, *x.shape[2:])
        feats = self.encoder(frames).reshape(b, k, -1)
        if self.consensus == "avg":
            return self.head(self.dropout(feats)).mean(dim=1)
        h = feats.new_zeros(b, self.hidden)
        c = feats.new_zeros(b, self.hidden)
        for t in range(k):
            h, c = self.rnn(feats[:, t], (h, c))
        return self.head(self.dropout(h))

    def _logits_stream(self, x: torch.Tensor, idx: list[int]) -> torch.Tensor:
        """Frame-by-frame inference: one encoder call per selected frame ``(B, 3, R, R)``, consensus accumulated."""
        b = x.shape[0]
        if self.consensus == "avg":
            acc = None
            for t in idx:
                z = self.head(self.dropout(self.encoder(x[:, t])))
                acc = z if acc is None else acc + z
            return acc / len(idx)
        h = x.new_zeros(b, self.hidden)
        c = x.new_zeros(b, self.hidden)
        for t in idx:
            h, c = self.rnn(self.encoder(x[:, t]), (h, c))
        return self.head(self.dropout(h))

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:
        """Logits ``(B, C)`` from the selected frames; trace lists encoder and head steps.

        Raises:
            KnobError: Unknown knob.
        """
        idx = self._select(x, knobs)
        logits = self._logits_stream(x, idx) if self.streaming else self._logits(x, idx)
        return Output(logits, [self._trace(idx) for _ in range(x.shape[0])],
                      [{"frames": idx} for _ in range(x.shape[0])])

    def _trace(self, idx: list[int]) -> list[TraceStep]:
        steps: list[TraceStep] = []
        dim = self.encoder.dim
        for t in idx:
            steps.append(self.encoder.step(t))
            if self.consensus == "avg":
                steps.append(TraceStep(t, "head", (dim,), role="head"))
            else:
                steps.append(TraceStep(t, "rnn", (dim,), role="head"))
        if self.consensus == "lstm":
            steps.append(TraceStep(-1, "head", (self.hidden,), role="head"))
        last = steps[-1]
        steps[-1] = TraceStep(last.frame, last.module, last.input_shape, exit="all_frames", role=last.role)
        return steps

    # -- cost ----------------------------------------------------------------------
    def cost_entries(self) -> list[CostEntry]:
        """Encoder per frame, classifier (and LSTM cell) per step."""
        entries = [self.encoder.cost_entry()]
        if self.consensus == "lstm":
            entries.append(lstm_cell_entry("rnn", self.encoder.dim, self.hidden))
            entries.append(CostEntry("head", (self.hidden,), role="head"))
        else:
            entries.append(CostEntry("head", (self.encoder.dim,), role="head"))
        return entries

    # -- training ------------------------------------------------------------------
    def backbone_slots(self) -> list[Any]:
        """The cached TSN backbone at the card's resolution (pixels; :mod:`evbench.harness.backbone_cache`).

        ``avg`` consensus takes its TSN head too: TSN training is this method's
        whole training, so ``joint`` is covered.  ``lstm`` (LRCN) keeps the
        loaded backbone frozen and trains the LSTM and classifier on it.
        """
        if not isinstance(self.encoder, PixelEncoder):
            return []
        from evbench.harness.backbone_cache import BackboneSlot, BackboneSpec

        def load(net: nn.Module, head: nn.Module) -> None:
            self.encoder.backbone.load_state_dict(net.state_dict())
            if self.consensus == "avg":
                self.head.load_state_dict(head.state_dict())

        spec = BackboneSpec(self.encoder.backbone_name, (self.encoder.resolution,))
        return [BackboneSlot("encoder.backbone", spec, load, covers=("joint",) if self.consensus == "avg" else ())]

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """Every parameter; with a loaded cached backbone (LSTM consensus) the LSTM and classifier only."""
        if getattr(self, "backbone_pretrained", None) and self.consensus == "lstm":
            return [*self.rnn.parameters(), *self.head.parameters()]
        return [p for p in self.parameters() if p.requires_grad]

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the video logits over the method's T frames (TSN / LRCN training).

        With a loaded cached backbone (LSTM consensus) the backbone runs frozen in eval mode.
        """
        idx = evenly_spaced(x.shape[1], self.card.frames)
        if getattr(self, "backbone_pretrained", None) and self.consensus == "lstm":
            b = x.shape[0]
            self.encoder.eval()
            with torch.no_grad():
                feats = self.encoder(x[:, idx].flatten(0, 1)).reshape(b, len(idx), -1)
            h = feats.new_zeros(b, self.hidden)
            c = feats.new_zeros(b, self.hidden)
            for t in range(len(idx)):
                h, c = self.rnn(feats[:, t], (h, c))
            logits = self.head(self.dropout(h))
            loss = nn.functional.cross_entropy(logits, y)
            return loss, {"ce": loss.item(), "train_top1": (logits.argmax(1) == y).float().mean().item()}
        logits = self._logits(x, idx)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean().item()
        return loss, {"ce": loss.item(), "train_top1": acc}


def _card_fn(name: str, consensus: str, streaming: bool = False):
    def card(*, config: str, input_kind: str = "pixels", frames: int, backbone: str = "", resolution: int = 0,
             feature_dim: int = 0, **_: Any) -> MethodCard:
        is_lstm = consensus == "lstm"
        pixels = input_kind == "pixels"
        sweep = tuple(k for k in (1, 2, 4, 8, 16) if k < frames) + (0,)
        return MethodCard(
            action_space="uniform-frames",
            name=name,
            title=("LSTM over frames" if is_lstm else "TSN uniform") + (", frame by frame (streaming)" if streaming else "")
            + (f" ({backbone} @{resolution})" if pixels else " (features)"),
            paper=LRCN_PAPER if is_lstm else TSN_PAPER,
            doi=LRCN_DOI if is_lstm else TSN_DOI,
            code="https://github.com/yjxiong/temporal-segment-networks" if not is_lstm else "",
            input_kind=input_kind,
            frames=frames,
            resolution=resolution if pixels else 0,
            resolutions=(resolution,) if pixels else (),
            feature_dim=feature_dim if not pixels else 0,
            knobs=(KnobSpec("frames", 0, "process k evenly spaced frames of those given (0 = the card's T)", sweep,
                            low=0, high=frames),),
            stages=("joint",),
            config=config,
            notes="Random initialisation (no ImageNet download); dropout only in training."
            + (" Streaming: one backbone call per frame as a camera delivers them, logits averaged as they "
               "arrive; same network and GMACs as the batched baseline." if streaming else ""),
        )

    card.__doc__ = f"The {name} card of a configuration (no network is built); see :class:`Uniform`."
    return card


def _builder(name: str, consensus: str, streaming: bool = False):
    def build(*, num_classes: int, config: str = "paper", input_kind: str = "pixels", frames: int,
              backbone: str = "", resolution: int = 0, feature_dim: int = 0, gmacs_per_frame: float = 0.0,
              hidden: int = 512, dropout: float = 0.5) -> Uniform:
        return Uniform(name=name, num_classes=num_classes, config=config, input_kind=input_kind, consensus=consensus,
                       frames=frames, backbone=backbone, resolution=resolution, feature_dim=feature_dim,
                       gmacs_per_frame=gmacs_per_frame, hidden=hidden, dropout=dropout, streaming=streaming)

    build.__doc__ = (f"Uniform {consensus} baseline on pixels (B, T, 3, R, R) or features (B, T, D); "
                     "see :class:`Uniform`.")
    return build


build_uniform = register_method("uniform", configs=CONFIGS, card=_card_fn("uniform", "avg"),
                                summary="TSN: average of frame logits over uniform frames")(_builder("uniform", "avg"))
build_uniform_lstm = register_method("uniform_lstm", configs=CONFIGS, card=_card_fn("uniform_lstm", "lstm"),
                                     summary="LSTM over uniformly sampled frames")(_builder("uniform_lstm", "lstm"))
build_uniform_stream = register_method(
    "uniform_stream", configs=CONFIGS, card=_card_fn("uniform_stream", "avg", streaming=True),
    summary="TSN uniform frame by frame (one backbone call per frame, as a stream delivers them)",
)(_builder("uniform_stream", "avg", streaming=True))


# =============================================================================== converter

_TSN_RULES = [(r"^base_model\.", "encoder.backbone."), (r"^new_fc\.", "head.")]


def convert_official_tsn(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename an official TSN baseline state_dict (AR-Net's ``TSN_Ada`` without ``--ada_reso_skip``) to ``uniform`` keys.

    ``module.base_model.*`` (a torchvision backbone whose classifier is a
    ``Dropout``, no parameters) → ``encoder.backbone.*``; ``module.new_fc.*`` →
    ``head.*``.  Source: ``mengyuest/AR-Net`` ``ops/models_ada.py`` (the "uniform"
    baseline of AR-Net Table 1, ``full_test.sh`` exp7).
    """
    from evbench.methods.checkpoints import rename_keys, strip_prefix

    return rename_keys(strip_prefix(state, "module."), _TSN_RULES)


def load_official_tsn(method: Uniform, source: Any) -> Uniform:
    """Load an official TSN baseline checkpoint (path or state_dict) into a pixel ``uniform`` method.

    Raises:
        CheckpointError: Missing/unexpected keys or shape mismatches, all listed.
        TypeError: ``method`` is not an average-consensus pixel :class:`Uniform`.
    """
    from evbench.methods.checkpoints import load_converted, read_state_dict

    if not isinstance(method, Uniform) or method.consensus != "avg" or method.card.input_kind != "pixels":
        raise TypeError("load_official_tsn needs the pixel 'uniform' (TSN, average consensus) method")
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    load_converted(method, convert_official_tsn(state), source=str(source) if not isinstance(source, Mapping)
                   else "TSN state_dict")
    return method
