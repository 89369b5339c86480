"""Modeled devices (placeholder API; implemented by the modeled-device work)."""

from __future__ import annotations

from typing import Any

__all__ = ["is_modeled_device", "model_latency"]


def is_modeled_device(device: str) -> bool:
    """True for a device name ending in ``-modeled``."""
    return str(device).endswith("-modeled")


def model_latency(method: Any, traces: Any, *, device: str, backend: str = "torch") -> dict[str, Any]:
    """Modeled single-stream latency of ``traces`` on ``device``."""
    raise NotImplementedError(device)
