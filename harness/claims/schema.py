"""The claim registry's schema: papers, tolerances, claims, measurements, kinds and verdicts.

Data only; :mod:`evbench.harness.claims.registry` parses :file:`harness/claims.toml`
into these types, :mod:`evbench.harness.claims.judge` turns a
:class:`Measurement` into a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evbench.harness.claims.format import num

__all__ = ["ClaimRegistryError", "Paper", "Tolerance", "Claim", "Measurement", "MEASUREMENT_KINDS", "VERDICTS"]

#: Measurement kinds a claim may name.
MEASUREMENT_KINDS = ("cost_table", "gmacs_per_video", "data_gmacs", "ratio", "latency_ratio", "accuracy", "fps")
#: Every verdict, in the order the summary lists them.
VERDICTS = ("reproduced", "not reproduced", "needs device", "needs dataset", "error")

_REQUIRED = ("id", "paper", "source", "quantity", "claimed", "unit", "tolerance", "measurement")
_KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "cost_table": ("method", "modules"),
    "gmacs_per_video": ("method",),
    "data_gmacs": ("dataset",),
    "ratio": ("form", "numerator", "denominator"),
    "latency_ratio": ("numerator", "denominator"),
    "accuracy": ("method", "dataset", "metric"),
    "fps": ("device", "method"),
}
_RATIO_FORMS = ("ratio", "reduction_pct")


class ClaimRegistryError(ValueError):
    """A malformed claim registry; the message names the claim id (or its position) and the problem."""


@dataclass(frozen=True)
class Paper:
    """A paper that makes claims.

    Attributes:
        key: Registry key (e.g. ``"arnet"``), used by ``--paper``.
        title: Short name (e.g. ``"AR-Net"``).
        citation: Full citation (authors, title, venue, year).
        doi: DOI, or an arXiv id where the venue has none.
        code: Official repository URL, if any.
    """

    key: str
    title: str
    citation: str
    doi: str
    code: str = ""


@dataclass(frozen=True)
class Tolerance:
    """Allowed ``|measured − claimed|`` = ``abs + rel·|claimed|`` (in the claim's unit).

    Attributes:
        abs: Absolute part, in the claim's unit (e.g. half a unit of the last
            printed digit).
        rel: Relative part, a fraction of ``|claimed|`` (0.01 = 1 %).
        basis: Why this tolerance (rounding, counting convention, variation).
    """

    abs: float = 0.0
    rel: float = 0.0
    basis: str = ""

    def allowed(self, claimed: float) -> float:
        """The allowed absolute difference for ``claimed``.

        Args:
            claimed: The published value, in the claim's unit.

        Returns:
            ``abs + rel·|claimed|``, in the claim's unit.
        """
        return self.abs + self.rel * abs(claimed)

    def describe(self, claimed: float, unit: str) -> str:
        """Human-readable form.

        Args:
            claimed: The published value.
            unit: The claim's unit.

        Returns:
            E.g. ``"±(0.005 + 1 % of claimed) = ±0.046 GMACs"`` or ``"±0.5 % mAP"``.
        """
        parts = []
        if self.abs:
            parts.append(f"{self.abs:g}")
        if self.rel:
            parts.append(f"{self.rel * 100:g} % of claimed")
        if self.abs and not self.rel:
            return f"±{num(self.abs)} {unit}"
        body = " + ".join(parts) if parts else "0"
        if len(parts) > 1:
            body = f"({body})"
        return f"±{body} = ±{num(self.allowed(claimed))} {unit}"


@dataclass(frozen=True)
class Claim:
    """One published number and the measurement that checks it.

    Attributes:
        id: Unique id (``<paper>-<what>``).
        paper: The paper making the claim.
        source: Table / figure / section / file where the number is printed.
        quantity: What the number is (e.g. "GMACs per frame of ...").
        claimed: The published value, in ``unit``.
        unit: Unit of ``claimed`` (GMACs, GMACs/video, % mAP, x, fps, ...).
        tolerance: Within which a measurement reproduces it.
        measurement: The measurement spec (``kind`` + parameters, see module docstring).
        caveat: Why the claim's own measurement method may inflate it, or None.
        realised: For a compute-saving or speed-up claim, the ``[claims.realised]``
            table — baseline, adaptive side with its forced decision schedules,
            ``mix_source`` (see :mod:`evbench.harness.claims.realised`) — or None.
    """

    id: str
    paper: Paper
    source: str
    quantity: str
    claimed: float
    unit: str
    tolerance: Tolerance
    measurement: Mapping[str, Any]
    caveat: str | None = None
    realised: Mapping[str, Any] | None = None

    @property
    def kind(self) -> str:
        """The measurement kind."""
        return str(self.measurement["kind"])


@dataclass
class Measurement:
    """What this machine could measure for a claim.

    Attributes:
        value: The measured value in the claim's unit, or None when not measured.
        needs: ``"device"`` or ``"dataset"`` when the claim cannot be measured
            here for want of one, else None.
        requirement: The device or dataset needed (e.g. ``"NVIDIA Jetson Nano"``).
        reason: Why ``value`` is None (or how it was obtained when it came from
            stored results).
        error: The exception text when the measurement raised.
        info: Further measured numbers (bounds, modeled estimates, heads
            included), each key naming its unit.
        caveats: Caveats found while measuring (appended to the claim's own).
        measured_by: How ``value`` was measured (instrument, configuration).
        realised: The realised speed-up fields of a claim with a ``realised``
            table (:data:`evbench.harness.claims.realised.REALISED_FIELDS`), or None.
    """

    value: float | None = None
    needs: str | None = None
    requirement: str | None = None
    reason: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    measured_by: str = ""
    realised: dict[str, Any] | None = None
