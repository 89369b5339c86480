"""The verdict of a claim given a measurement — a pure function."""

from __future__ import annotations

import math
from typing import Any

from evbench.harness.claims.format import num, signed
from evbench.harness.claims.schema import Claim, Measurement

__all__ = ["judge"]


def judge(claim: Claim, m: Measurement) -> dict[str, Any]:
    """The verdict row for ``claim`` given what was measured — a pure function.

    Order of precedence: an ``error`` measurement gives ``"error"``; a
    ``needs`` gives ``"needs device"`` / ``"needs dataset"``; a value within
    ``claim.tolerance.allowed(claimed)`` of the claimed one gives
    ``"reproduced"``, else ``"not reproduced"``.

    Args:
        claim: The claim.
        m: The measurement (value in the claim's unit, or why there is none).

    Returns:
        A JSON-serialisable dict: ``id``, ``paper``, ``paper_title``,
        ``citation``, ``doi``, ``source``, ``quantity``, ``claimed``, ``unit``,
        ``tolerance`` (text), ``tolerance_abs``, ``tolerance_rel``,
        ``tolerance_basis``, ``allowed``, ``verdict`` (one of :data:`VERDICTS`),
        ``verdict_text`` (e.g. "needs device NVIDIA Jetson Nano"), ``measured``
        (None when not measured, then ``reason`` says why), ``difference``
        (measured − claimed, claim's unit), ``rel_difference`` (fraction),
        ``needs``, ``reason``, ``caveat`` (claim's and measurement's joined, or
        None), ``info``, ``measured_by``, ``kind``; for a claim with a
        ``realised`` table also the realised speed-up fields
        (:data:`evbench.harness.claims.realised.REALISED_FIELDS`: ``gmac_ratio``,
        ``realised_speedup``, ``realised_speedup_ci``, ``device``, ``backend``,
        ``threads``, ``realised_verdict``, ``realised``) — they do not change
        ``verdict``.
    """
    allowed = claim.tolerance.allowed(claim.claimed)
    value = m.value
    diff = rel = None
    if m.error is not None:
        verdict, text = "error", f"error: {m.error}"
        value = None
    elif m.needs in ("device", "dataset"):
        verdict = f"needs {m.needs}"
        text = f"{verdict} {m.requirement}" if m.requirement else verdict
        value = None
    elif value is None or not math.isfinite(value):
        verdict, text = "error", "error: no value measured"
        value = None
    else:
        diff = value - claim.claimed
        rel = diff / claim.claimed if claim.claimed else None
        verdict = "reproduced" if abs(diff) <= allowed + 1e-12 else "not reproduced"
        text = verdict if verdict == "reproduced" else (
            f"not reproduced: measured {num(value)} {claim.unit}, {signed(diff)} {claim.unit} "
            f"({signed(100 * rel, '.1f') if rel is not None else '?'} %) vs tolerance ±{num(allowed)}")
    caveats = [c for c in [claim.caveat, *m.caveats] if c]
    row = {
        "id": claim.id, "paper": claim.paper.key, "paper_title": claim.paper.title,
        "citation": claim.paper.citation, "doi": claim.paper.doi, "source": claim.source,
        "quantity": claim.quantity, "claimed": claim.claimed, "unit": claim.unit,
        "tolerance": claim.tolerance.describe(claim.claimed, claim.unit),
        "tolerance_abs": claim.tolerance.abs, "tolerance_rel": claim.tolerance.rel,
        "tolerance_basis": claim.tolerance.basis, "allowed": allowed,
        "verdict": verdict, "verdict_text": text, "measured": value,
        "difference": diff, "rel_difference": rel, "needs": m.requirement if m.needs else None,
        "reason": m.reason or (text if value is None else None),
        "caveat": " ".join(caveats) if caveats else None,
        "info": dict(m.info), "measured_by": m.measured_by if value is not None else "", "kind": claim.kind,
    }
    if claim.realised is not None:
        from evbench.harness.claims.realised import not_measured

        row.update(m.realised if m.realised is not None else not_measured("no realised measurement given"))
    return row
