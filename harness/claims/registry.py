"""Loading and validating the claims registry (:file:`harness/claims.toml`, package data, :mod:`tomllib`).

Also answers which claims a method configuration makes
(:func:`claim_ids_for`), which is how a method card references its published
numbers without holding a copy of them.
"""

from __future__ import annotations

import functools
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from evbench.harness.claims.realised import validate_realised
from evbench.harness.claims.schema import (
    _KIND_PARAMS,
    _RATIO_FORMS,
    _REQUIRED,
    MEASUREMENT_KINDS,
    Claim,
    ClaimRegistryError,
    Paper,
    Tolerance,
)

__all__ = ["REGISTRY_PATH", "load_registry", "shipped_claims", "claims_by_id", "claim_ids_for", "measured_methods"]

#: The registry shipped with evbench (package data of ``evbench.harness``).
REGISTRY_PATH = Path(__file__).resolve().parent.parent / "claims.toml"


def _need(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise ClaimRegistryError(f"{where}: missing '{key}'")
    return entry[key]


def _validate_measurement(spec: Any, where: str, *, nested: bool = False) -> None:
    if not isinstance(spec, Mapping):
        raise ClaimRegistryError(f"{where}: 'measurement' must be a table, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in MEASUREMENT_KINDS:
        raise ClaimRegistryError(f"{where}: unknown measurement kind {kind!r}; known: {', '.join(MEASUREMENT_KINDS)}")
    for key in _KIND_PARAMS[kind]:
        if kind == "data_gmacs" and nested and key == "method":
            continue
        if key not in spec:
            raise ClaimRegistryError(f"{where}: measurement kind {kind!r} needs '{key}'")
    if kind == "cost_table":
        mods = spec["modules"]
        if not isinstance(mods, list) or not mods or not all(
                isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], list) for m in mods):
            raise ClaimRegistryError(f"{where}: 'modules' must be a non-empty list of [name, [shape...]] pairs")
    if kind == "ratio":
        if spec["form"] not in _RATIO_FORMS:
            raise ClaimRegistryError(f"{where}: ratio form {spec['form']!r} not in {list(_RATIO_FORMS)}")
        for side in ("numerator", "denominator"):
            _validate_measurement(spec[side], f"{where} {side}", nested=True)
    if kind == "latency_ratio":
        for side in ("numerator", "denominator"):
            if not isinstance(spec[side], Mapping) or "method" not in spec[side]:
                raise ClaimRegistryError(f"{where}: latency_ratio {side} needs a table with 'method'")
    for b in spec.get("bounds", []) if kind == "data_gmacs" else []:
        if not isinstance(b, Mapping) or "label" not in b or ("knobs" in b) == ("modules" in b):
            raise ClaimRegistryError(f"{where}: each bound needs a 'label' and either 'knobs' or 'modules'")
        if "modules" in b and not all(isinstance(t, list) and len(t) == 3 for t in b["modules"]):
            raise ClaimRegistryError(f"{where}: bound 'modules' must be [name, [shape...], count] triples")
    if kind == "data_gmacs" and not nested and "method" not in spec:
        raise ClaimRegistryError(f"{where}: measurement kind 'data_gmacs' needs 'method'")


def _parse_claim(entry: Any, i: int, papers: Mapping[str, Paper], seen: set[str]) -> Claim:
    if not isinstance(entry, Mapping):
        raise ClaimRegistryError(f"claim #{i + 1}: must be a table")
    cid = entry.get("id")
    where = f"claim {cid!r}" if cid else f"claim #{i + 1} (no id)"
    for key in _REQUIRED:
        _need(entry, key, where)
    if cid in seen:
        raise ClaimRegistryError(f"{where}: duplicate id")
    if entry["paper"] not in papers:
        raise ClaimRegistryError(f"{where}: unknown paper {entry['paper']!r}; papers: {', '.join(sorted(papers))}")
    claimed = entry["claimed"]
    if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or not math.isfinite(claimed):
        raise ClaimRegistryError(f"{where}: 'claimed' must be a finite number, got {claimed!r}")
    tol = entry["tolerance"]
    if not isinstance(tol, Mapping):
        raise ClaimRegistryError(f"{where}: 'tolerance' must be a table {{abs = ..., rel = ..., basis = ...}}")
    unknown = set(tol) - {"abs", "rel", "basis"}
    if unknown:
        raise ClaimRegistryError(f"{where}: unknown tolerance keys {sorted(unknown)}")
    t_abs, t_rel = tol.get("abs", 0.0), tol.get("rel", 0.0)
    for name, value in (("abs", t_abs), ("rel", t_rel)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ClaimRegistryError(f"{where}: tolerance {name} must be a number >= 0, got {value!r}")
    if t_abs == 0 and t_rel == 0:
        raise ClaimRegistryError(f"{where}: tolerance needs abs > 0 or rel > 0")
    if not tol.get("basis"):
        raise ClaimRegistryError(f"{where}: tolerance needs a 'basis' saying why")
    _validate_measurement(entry["measurement"], where)
    if "realised" in entry:
        validate_realised(entry["realised"], where)
    extra = set(entry) - set(_REQUIRED) - {"caveat", "realised"}
    if extra:
        raise ClaimRegistryError(f"{where}: unknown keys {sorted(extra)}")
    seen.add(cid)
    return Claim(id=str(cid), paper=papers[entry["paper"]], source=str(entry["source"]),
                 quantity=str(entry["quantity"]), claimed=float(claimed), unit=str(entry["unit"]),
                 tolerance=Tolerance(float(t_abs), float(t_rel), str(tol["basis"])),
                 measurement=dict(entry["measurement"]), caveat=entry.get("caveat") or None,
                 realised=dict(entry["realised"]) if "realised" in entry else None)


def load_registry(path: str | os.PathLike[str] | None = None, *, text: str | None = None) -> list[Claim]:
    """Parse and validate a claim registry.

    Args:
        path: A TOML file; default :data:`REGISTRY_PATH` (the shipped registry).
        text: TOML text to parse instead of a file (tests).

    Returns:
        The claims, in file order.

    Raises:
        ClaimRegistryError: On invalid TOML, a paper without citation/DOI, or a
            claim lacking id, paper, source, quantity, claimed, unit, tolerance
            (abs/rel with a basis) or a known measurement kind with its
            parameters, or a malformed ``realised`` table
            (:func:`evbench.harness.claims.realised.validate_realised`) — the
            message names the claim id.
        FileNotFoundError: If ``path`` does not exist.
    """
    where = "<text>" if text is not None else str(path or REGISTRY_PATH)
    try:
        data = tomllib.loads(text) if text is not None else tomllib.loads(Path(path or REGISTRY_PATH).read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ClaimRegistryError(f"{where}: invalid TOML: {exc}") from None
    papers: dict[str, Paper] = {}
    for key, p in (data.get("papers") or {}).items():
        if not isinstance(p, Mapping):
            raise ClaimRegistryError(f"paper {key!r}: must be a table")
        papers[key] = Paper(key=key, title=str(p.get("title") or key),
                            citation=str(_need(p, "citation", f"paper {key!r}")),
                            doi=str(_need(p, "doi", f"paper {key!r}")), code=str(p.get("code") or ""))
    entries = data.get("claims")
    if not isinstance(entries, list) or not entries:
        raise ClaimRegistryError(f"{where}: no [[claims]] entries")
    seen: set[str] = set()
    return [_parse_claim(e, i, papers, seen) for i, e in enumerate(entries)]


@functools.lru_cache(maxsize=1)
def shipped_claims() -> tuple[Claim, ...]:
    """The shipped registry (:data:`REGISTRY_PATH`), parsed once per process.

    Raises:
        ClaimRegistryError: If the shipped registry is malformed.
    """
    return tuple(load_registry())


def claims_by_id(ids: Iterator[str] | tuple[str, ...] | list[str] | None = None) -> dict[str, Claim]:
    """Shipped claims by id, in registry order.

    Args:
        ids: Only these ids (e.g. a card's ``claims``), or None for all.

    Returns:
        Id -> :class:`Claim`.

    Raises:
        KeyError: An id that is not in the shipped registry.
    """
    everything = {c.id: c for c in shipped_claims()}
    if ids is None:
        return everything
    missing = [i for i in ids if i not in everything]
    if missing:
        raise KeyError(f"no claims {missing} in {REGISTRY_PATH}")
    return {i: everything[i] for i in ids}


def measured_methods(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every ``(method, config)`` a measurement spec (and its nested numerator/denominator) measures.

    Args:
        spec: A claim's ``measurement`` table.

    Yields:
        ``(method name, configuration)`` pairs; ``config`` defaults to ``"paper"``.
    """
    if spec.get("method"):
        yield str(spec["method"]), str(spec.get("config", "paper"))
    for side in ("numerator", "denominator"):
        if isinstance(spec.get(side), Mapping):
            yield from measured_methods(spec[side])


def claim_ids_for(method: str, config: str) -> tuple[str, ...]:
    """Ids of the shipped claims whose measurement measures ``method`` in ``config``.

    Args:
        method: Registered method name.
        config: Configuration name.

    Returns:
        Claim ids in registry order (empty when the configuration makes no claim).
    """
    return tuple(c.id for c in shipped_claims() if (method, config) in set(measured_methods(c.measurement)))
