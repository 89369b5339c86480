"""Energy per clip from the platform's counter (placeholder API; implemented by the energy work).

Until implemented, :func:`open_meter` returns None: energy is absent, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EnergyReading", "open_meter"]


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one measured window.

    Attributes:
        joules: Energy in J over the window, or None when the counter could not be read.
        source: Which counter (``"nvml"``, ``"rapl"``, ``"jetson-rails"``).
    """

    joules: float | None
    source: str


def open_meter(device: str):  # noqa: ANN201  (EnergyMeter | None)
    """An energy meter for ``device``, or None where no counter is readable."""
    return None
