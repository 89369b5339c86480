"""The recurrent policy network shared by AR-Net and RSEE.

AR-Net (Meng et al., ECCV 2020, official ``ops/models_ada.py``) and RSEE (Wang
et al., BDMA 2025, official ``ops/rsee.py``) decide per frame with the same
network: a lite CNN (MobileNetV2) on the low-resolution frame → an
``LSTMCell(D → H)`` → a linear layer to the action logits.  The lite CNN's
feature also feeds the "policy's own classifier head" action of AR-Net.
"""

from __future__ import annotations

import math

import torch
from evbench.harness.api import CostEntry, TraceStep
from evbench.methods.common import PixelEncoder, lstm_cell_entry
from torch import nn

__all__ = ["RecurrentPolicy", "gumbel_tau", "gumbel_straight_through"]


def gumbel_tau(epoch: int, *, tau0: float = 5.0, decay: float = 0.045) -> float:
    """Gumbel-softmax temperature ``tau0 · exp(−decay · epoch)`` (AR-Net §3.3, RSEE training scripts)."""
    return tau0 * math.exp(-decay * epoch)


def gumbel_straight_through(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """One-hot samples ``(..., A)`` with straight-through Gumbel-softmax gradients.

    Forward: hard one-hot of ``argmax(logits + Gumbel noise)``; backward: the
    gradient of ``softmax((logits + noise) / tau)`` (Jang et al., ICLR 2017).
    """
    return nn.functional.gumbel_softmax(logits, tau=tau, hard=True, dim=-1)


class RecurrentPolicy(nn.Module):
    """Lite CNN → LSTMCell → linear action logits, one step per frame.

    Args:
        num_actions: A, number of action logits.
        backbone: Lite CNN name (``mobilenet_v2`` in both papers).
        resolution: Side in px the policy sees (84 in both papers).
        hidden: LSTM hidden size H (512 in both papers).
        prefix: Attribute path of this module in the owning method (for cost keys),
            e.g. ``"policy"``.

    Shapes:
        ``encode``: ``(N, 3, R, R)`` → ``(N, D)`` (D = 1280 for MobileNetV2);
        ``step``: ``(N, D)`` and state ``((N, H), (N, H))`` → logits ``(N, A)``, new state.
    """

    def __init__(self, *, num_actions: int, backbone: str = "mobilenet_v2", resolution: int = 84,
                 hidden: int = 512, prefix: str = "policy") -> None:
        super().__init__()
        self.prefix = prefix
        self.encoder = PixelEncoder(backbone, resolution, module_name=f"{prefix}.encoder.backbone")
        self.rnn = nn.LSTMCell(self.encoder.dim, hidden)
        self.linear = nn.Linear(hidden, num_actions)
        self.hidden = hidden
        self.num_actions = num_actions

    @property
    def dim(self) -> int:
        """Feature width D of the lite CNN."""
        return self.encoder.dim

    def init_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero LSTM state ``((B, H), (B, H))`` on ``like``'s device/dtype."""
        z = like.new_zeros(batch, self.hidden)
        return z, z.clone()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Lite-CNN features of ``(N, 3, H, W)`` frames (resized to the policy resolution)."""
        return self.encoder(frames)

    def step(self, feat: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One recurrent step: ``(N, D)`` features → ``(N, A)`` action logits and the new state."""
        h, c = self.rnn(feat, state)
        return self.linear(h), (h, c)

    def cost_entries(self) -> list[CostEntry]:
        """Lite CNN, LSTM cell and action layer, role ``policy``."""
        return [
            CostEntry(self.encoder.module_name, self.encoder.input_shape, role="policy"),
            lstm_cell_entry(f"{self.prefix}.rnn", self.dim, self.hidden, role="policy"),
            CostEntry(f"{self.prefix}.linear", (self.hidden,), role="policy"),
        ]

    def steps(self, frame: int) -> list[TraceStep]:
        """Trace steps of one policy step on frame ``frame``."""
        return [
            TraceStep(frame, self.encoder.module_name, self.encoder.input_shape, role="policy"),
            TraceStep(frame, f"{self.prefix}.rnn", (self.dim,), role="policy"),
            TraceStep(frame, f"{self.prefix}.linear", (self.hidden,), role="policy"),
        ]
