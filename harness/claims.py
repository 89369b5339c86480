"""Published claims and ``evbench claims``: reproduced, not reproduced, needs device, needs dataset.

The registry (:file:`harness/claims.toml`, package data, parsed with
:mod:`tomllib`) lists published numbers — each with its paper, where it is
printed, the quantity and unit, the claimed value, a stated tolerance and the
measurement that checks it.  :func:`check_claims` measures what this machine
can measure with the harness's own instruments and :func:`judge` turns a
measurement into a verdict:

``reproduced``
    measured here, ``|measured − claimed| ≤ tolerance``;
``not reproduced``
    measured here, outside the tolerance (the row carries the measured value
    and the difference);
``needs device``
    a hardware claim (e.g. FPS on a Jetson Nano) for a device that is not
    attached; a roofline estimate from :mod:`evbench.harness.devices.modeled` is
    attached as information, labelled *modeled*, when that model is available —
    the verdict stays ``needs device``;
``needs dataset``
    accuracy, or a per-video cost that depends on a trained policy's decisions
    on a dataset that is not here; ``--results RUN`` answers it from a stored
    row of the same method (``paper`` configuration) on that dataset;
``error``
    the measurement raised; the row says why.

Measurement kinds (:data:`MEASUREMENT_KINDS`; GMACs = multiply-accumulates ×
1e-9, the unit the papers call GFLOPs):

``cost_table``
    the sum of cost-table entries (``modules``: ``[[name, shape], ...]``) of
    ``create_method(method, config=...)`` counted with fvcore
    (:func:`evbench.harness.costs.cost_table`), GMACs; ``also`` adds other sums as
    information.
``gmacs_per_video``
    one forward of a seeded random-normal clip with the given ``knobs``
    (a forced schedule, thresholds), GMACs/video as the trace sum
    (:func:`evbench.harness.costs.trace_gmacs`).
``data_gmacs``
    GMACs/video under a trained policy's decisions on ``dataset`` — needs that
    dataset; ``bounds`` (forced schedules) are measured as information and the
    claimed value is placed between them.
``ratio``
    ``numerator / denominator`` (``form = "ratio"``, ×) or
    ``100·(1 − numerator / denominator)`` (``form = "reduction_pct"``, %) of
    two nested measurements.
``latency_ratio``
    ``p50(numerator) / p50(denominator)`` of two schedules timed here with
    :func:`evbench.harness.measure.profile` at small settings (batch 1, a few queries);
    with ``requires_dataset`` the claim's own schedules are unknown, the timed
    pair is an illustration only and the verdict is ``needs dataset``.
``accuracy``
    top-1 / mAP on ``dataset`` — needs the dataset and a trained model, or a
    ``--results`` row.
``fps``
    frames/s on ``device`` — needs the device, or a ``--results`` row measured
    on it.

:func:`run_claims` is ``evbench claims`` (``--json``, ``--paper``, ``--out``,
``--results``, ``--registry``, ``--threads``).  Cost tables and forwards are
cached within a run; the whole shipped registry checks in about 25 s on a
2-core CPU (1 thread).

Numbers the shipped registry reproduces here (claimed → measured, GMACs;
the ``source`` of each claim in ``claims.toml`` says where it is printed):

* AR-Net (ECCV 2020): ResNet-50 @224 4.11 → 4.109 and uniform ResNet-50, 16
  frames, 65.76 → 65.758 GMACs/video (Table 1); ResNet-34 @168 2.25 → 2.249,
  ResNet-18 @112 0.49 → 0.486, MobileNetV2 @84 0.053 → 0.0524 (official thop
  cost function, values recorded in the AR-Net card).
* LiteEval (NeurIPS 2019): MobileNetV2 @112 0.08 → 0.0843, ResNet-101 @224
  7.82 → 7.832 (official ``evaluate.py``).
* TLEE (IoT-J 2023): exits after layer2 / layer3 / layer4 1.83 / 3.29 / 4.1 →
  1.830 / 3.299 / 4.109 (official config ``single_frame_mac``, backbone only).
* FrameExit (CVPR 2021): 4.12 per frame → 4.109 (official ``inference.py``);
  41.2 GMACs/video without exiting → 41.19 (state-of-the-art table, official
  README ``resources/results1.png``).
* RSEE (BDMA 2025): ResNet-50 at 224/168/112/84 px 4.13/2.53/1.09/0.69 →
  4.114/2.518/1.086/0.690 (official thop cost function, values recorded in
  the RSEE card).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ClaimRegistryError",
    "Paper",
    "Tolerance",
    "Claim",
    "Measurement",
    "MEASUREMENT_KINDS",
    "VERDICTS",
    "REGISTRY_PATH",
    "CLAIMS_FILE",
    "load_registry",
    "judge",
    "Measurer",
    "check_claims",
    "format_text",
    "append_rows",
    "load_claim_rows",
    "run_claims",
]

#: The registry shipped with evbench.
REGISTRY_PATH = Path(__file__).with_name("claims.toml")
#: File in a run directory that holds stored verdict rows (one JSON object per line).
CLAIMS_FILE = "claims.jsonl"
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
_DEFAULT_CLASSES = 200


class ClaimRegistryError(ValueError):
    """A malformed claim registry; the message names the claim id (or its position) and the problem."""


# --------------------------------------------------------------------------- data model


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
            return f"±{_num(self.abs)} {unit}"
        body = " + ".join(parts) if parts else "0"
        if len(parts) > 1:
            body = f"({body})"
        return f"±{body} = ±{_num(self.allowed(claimed))} {unit}"


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
    """

    value: float | None = None
    needs: str | None = None
    requirement: str | None = None
    reason: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    measured_by: str = ""


# --------------------------------------------------------------------------- registry


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
    extra = set(entry) - set(_REQUIRED) - {"caveat"}
    if extra:
        raise ClaimRegistryError(f"{where}: unknown keys {sorted(extra)}")
    seen.add(cid)
    return Claim(id=str(cid), paper=papers[entry["paper"]], source=str(entry["source"]),
                 quantity=str(entry["quantity"]), claimed=float(claimed), unit=str(entry["unit"]),
                 tolerance=Tolerance(float(t_abs), float(t_rel), str(tol["basis"])),
                 measurement=dict(entry["measurement"]), caveat=entry.get("caveat") or None)


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
            parameters — the message names the claim id.
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


# --------------------------------------------------------------------------- verdict (pure)


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
        None), ``info``, ``measured_by``, ``kind``.
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
            f"not reproduced: measured {_num(value)} {claim.unit}, {_signed(diff)} {claim.unit} "
            f"({_signed(100 * rel, '.1f') if rel is not None else '?'} %) vs tolerance ±{_num(allowed)}")
    caveats = [c for c in [claim.caveat, *m.caveats] if c]
    return {
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


def _num(x: float | None, spec: str = ".4g") -> str:
    return "—" if x is None else format(x, spec)


def _signed(x: float, spec: str = ".4g") -> str:
    return ("+" if x >= 0 else "") + format(x, spec)


# --------------------------------------------------------------------------- measuring


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


_DATASET_ALIASES = {
    "activitynet-v1.3": ("activitynet",), "ucf101": ("ucf101",), "hmdb51": ("hmdb51", "hmdb"),
    "fcvid": ("fcvid",), "mini-kinetics": ("mini-kinetics", "minikinetics", "mini_kinetics"),
}


def _dataset_match(claim_ds: str, row_ds: Any) -> bool:
    """True when a stored row's dataset name denotes ``claim_ds`` (case-insensitive prefix)."""
    if not isinstance(row_ds, str):
        return False
    prefixes = _DATASET_ALIASES.get(claim_ds.lower(), (claim_ds.lower(),))
    name = row_ds.lower()
    return any(name.startswith(p) for p in prefixes)


class Measurer:
    """Measures claim specs with the harness's instruments, caching within a run.

    Methods are built once per ``(method, config, overrides)`` with
    ``create_method(..., num_classes=200)`` (seeded), their cost tables once
    (fvcore, :func:`evbench.harness.costs.cost_table`), each forward once per knob
    setting, each latency once per schedule.

    Args:
        results: Stored results (``evbench.harness.results.load``) that may answer
            ``needs dataset`` / ``needs device`` claims, or None.
        results_path: Where ``results`` came from (for the row's reason text).
        latency_queries: Timed queries per schedule for ``latency_ratio``.
    """

    def __init__(self, results: Any = None, results_path: str | None = None, latency_queries: int = 3) -> None:
        self.results = results
        self.results_path = results_path
        self.latency_queries = latency_queries
        self._methods: dict[str, Any] = {}
        self._videos: dict[str, dict[str, Any]] = {}
        self._latency: dict[str, dict[str, Any]] = {}

    # -- building blocks ---------------------------------------------------------------
    def method(self, spec: Mapping[str, Any]) -> Any:
        """The cached method of a spec.

        Args:
            spec: ``method`` (registry name), ``config`` (default ``"paper"``),
                ``overrides`` (builder keyword arguments), ``num_classes``
                (default 200, ActivityNet).

        Returns:
            The :class:`evbench.harness.api.Method`, eval mode, built with seed 0.

        Raises:
            harness.registry.UnknownMethodError: Unknown method or configuration.
        """
        import torch
        from evbench.harness.registry import create_method

        key = _key(spec["method"], spec.get("config", "paper"), spec.get("overrides", {}), spec.get("num_classes"))
        if key not in self._methods:
            torch.manual_seed(0)
            self._methods[key] = create_method(spec["method"], config=spec.get("config", "paper"),
                                               num_classes=int(spec.get("num_classes", _DEFAULT_CLASSES)),
                                               **dict(spec.get("overrides", {}))).eval()
        return self._methods[key]

    def module_sum(self, spec: Mapping[str, Any], modules: Sequence[Sequence[Any]]) -> float:
        """Sum of cost-table entries of a spec's method.

        Args:
            spec: As for :meth:`method`.
            modules: ``[name, shape]`` pairs; a repeated pair is counted each time.

        Returns:
            GMACs (fvcore cost table, :func:`evbench.harness.costs.cost_table`).

        Raises:
            KeyError: If an entry is not in the method's cost table (the message lists the table).
        """
        from evbench.harness.costs import cost_table

        table = cost_table(self.method(spec))
        total = 0.0
        for name, shape in modules:
            k = (str(name), tuple(int(s) for s in shape))
            if k not in table:
                raise KeyError(f"{spec['method']} [{spec.get('config', 'paper')}]: no cost-table entry {k[0]}{k[1]}; "
                               f"entries: {', '.join(f'{n}{s}' for n, s in table)}")
            total += table[k]
        return total

    def video(self, spec: Mapping[str, Any], knobs: Mapping[str, Any] | None) -> dict[str, Any]:
        """One seeded random-normal batch-1 forward of a spec's method (cached per knobs).

        Args:
            spec: As for :meth:`method`.
            knobs: Inference knobs, e.g. a forced schedule ``{"force": 224}``.

        Returns:
            ``gmacs`` (GMACs/video, trace sum over the fvcore cost table),
            ``frames_used`` (frames processed), ``frames_total`` (frames
            given) and ``trace`` (the sample's trace steps).

        Raises:
            harness.api.KnobError: A knob the method does not declare.
        """
        import torch
        from evbench.harness.costs import cost_table, trace_gmacs
        from evbench.harness.measure import frames_used

        key = _key(spec["method"], spec.get("config", "paper"), spec.get("overrides", {}), dict(knobs or {}))
        if key not in self._videos:
            method = self.method(spec)
            g = torch.Generator().manual_seed(0)
            x = torch.randn(tuple(method.example_input(1).shape), generator=g)
            with torch.inference_mode():
                out = method(x, knobs=dict(knobs or {}) or None)
            trace = out.trace[0]
            self._videos[key] = {"gmacs": trace_gmacs(trace, cost_table(method)), "frames_used": frames_used(trace),
                                 "frames_total": int(x.shape[1]), "trace": trace}
        return self._videos[key]

    def bound(self, spec: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        """GMACs/video of one bounding schedule.

        Args:
            spec: As for :meth:`method`.
            b: ``{"knobs": ...}`` — a forward with those knobs (trace sum) — or,
                for schedules too dear to run here, ``{"modules": [[name, shape,
                count], ...]}`` composed from the cost table (the entries the
                trace of that schedule sums; ``tests/test_claims.py`` checks
                the compositions against forwards).

        Returns:
            GMACs per video.
        """
        if "knobs" in b:
            return float(self.video(spec, b["knobs"])["gmacs"])
        total = 0.0
        for name, shape, count in b["modules"]:
            total += int(count) * self.module_sum(spec, [[name, shape]])
        return total

    def latency(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Single-stream latency of one schedule on this CPU (cached).

        :func:`evbench.harness.measure.profile` at small settings: batch 1, the
        method's warm-up on every forced path, ``latency_queries`` timed
        queries, no offline FPS, no executed-MAC count, no energy.

        Args:
            spec: As for :meth:`method`, plus ``knobs``.

        Returns:
            ``p50_ms`` and ``mean_ms`` (ms per clip), ``queries``,
            ``gmacs_per_video`` (GMACs), ``frames_used``, ``threads``.
        """
        from evbench.harness.measure import profile

        key = _key(spec["method"], spec.get("config", "paper"), spec.get("overrides", {}), spec.get("knobs", {}))
        if key not in self._latency:
            method = self.method(spec)
            import torch

            g = torch.Generator().manual_seed(0)
            x = torch.randn(tuple(method.example_input(1).shape), generator=g)
            prof = profile(method, [x], device="cpu", knobs=dict(spec.get("knobs", {})),
                           min_queries=self.latency_queries, min_duration_s=0.0, max_duration_s=30.0,
                           offline=False, count_executed=False, energy=False)
            self._latency[key] = {"p50_ms": prof["latency_ms"]["p50"], "mean_ms": prof["latency_ms"]["mean"],
                                  "queries": len(prof["latency_ms"]["samples"]),
                                  "gmacs_per_video": prof["gmacs_per_video"], "frames_used": prof["frames_used"],
                                  "threads": prof["threads"]}
        return self._latency[key]

    # -- stored results ------------------------------------------------------------------
    def _stored_rows(self, method: str | None, config: str, dataset: str | None = None,
                     device: str | None = None) -> Any:
        df = self.results
        if df is None or getattr(df, "empty", True) or not method:
            return None
        rows = df
        if "status" in rows:
            rows = rows[rows["status"] == "ok"]
        rows = rows[(rows.get("method") == method)] if "method" in rows else rows.iloc[0:0]
        if "config" in rows:
            rows = rows[rows["config"] == config]
        if dataset is not None:
            rows = rows[rows["dataset"].map(lambda d: _dataset_match(dataset, d))] if "dataset" in rows else rows.iloc[0:0]
            if "dataset_synthetic" in rows:
                rows = rows[~rows["dataset_synthetic"].fillna(False).astype(bool)]
        if device is not None:
            dev = rows["device"].astype(str).str.lower() if "device" in rows else None
            rows = rows[dev.str.contains(device.lower(), regex=False)] if dev is not None else rows.iloc[0:0]
            if "modeled" in rows:
                rows = rows[~rows["modeled"].fillna(False).astype(bool)]
        return rows if len(rows) else None

    def _from_results(self, rows: Any, column: str, scale: float, what: str) -> Measurement | None:
        if rows is None or column not in rows:
            return None
        vals = rows[column].dropna()
        if vals.empty:
            return None
        row = rows.loc[vals.index[-1]]
        value = float(row[column]) * scale
        cell = row.get("cell_id", "?")
        m = Measurement(value=value, measured_by=f"stored result {self.results_path}: cell {cell} ({column})",
                        reason=f"from --results {self.results_path}, cell {cell}, dataset {row.get('dataset')}")
        if len(vals) > 1:
            m.info["stored_rows_matching"] = int(len(vals))
            m.caveats.append(f"{len(vals)} stored rows match ({what}); the last one is used.")
        return m

    # -- kinds -------------------------------------------------------------------------
    def measure(self, claim: Claim) -> Measurement:
        """Measure one claim.

        Args:
            claim: The claim.

        Returns:
            The :class:`Measurement`; an exception raised while measuring
            becomes an ``error`` measurement naming the claim, so the other
            claims still run.
        """
        try:
            return self._measure(claim.measurement, claim)
        except Exception as exc:  # noqa: BLE001 - one failing claim must not stop the others
            return Measurement(error=f"{type(exc).__name__}: {exc}", reason=f"measurement of {claim.id} raised")

    def _measure(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        kind = spec["kind"]
        return getattr(self, f"_m_{kind}")(spec, claim)

    def _m_cost_table(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        value = self.module_sum(spec, spec["modules"])
        m = Measurement(value=value, measured_by=(
            f"fvcore cost table of {spec['method']} [{spec.get('config', 'paper')}]: "
            + " + ".join(f"{n}{tuple(s)}" for n, s in spec["modules"])))
        for extra in spec.get("also", []):
            m.info[f"{extra['label']} (GMACs)"] = self.module_sum(spec, extra["modules"])
        return m

    def _m_gmacs_per_video(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        v = self.video(spec, spec.get("knobs"))
        m = Measurement(value=v["gmacs"], measured_by=(
            f"trace sum of one forward of {spec['method']} [{spec.get('config', 'paper')}] with knobs "
            f"{json.dumps(spec.get('knobs', {}), sort_keys=True)} (fvcore cost table)"))
        m.info["frames processed"] = v["frames_used"]
        m.info["frames given"] = v["frames_total"]
        return m

    def _m_data_gmacs(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        ds = spec["dataset"]
        method = spec.get("method")
        config = spec.get("config", "paper")
        stored = self._from_results(self._stored_rows(method, config, ds), "gmacs_per_video", 1.0,
                                    f"{method} [{config}] on {ds}")
        if stored is not None:
            return stored
        if method:
            reason = (f"GMACs/video depends on the decisions of a trained {method} [{config}] on {ds}, which is not "
                      f"here; --results RUN holding a row of {method} [{config}] on {ds} answers it")
        else:
            reason = f"{spec.get('description', 'the compared method')}: not identified, so not measurable"
        m = Measurement(needs="dataset", requirement=ds, reason=reason)
        if spec.get("description"):
            m.info["operand"] = spec["description"]
        bounds = []
        for b in spec.get("bounds", []):
            g = self.bound(spec, b)
            m.info[f"bound: {b['label']} (GMACs/video)"] = g
            bounds.append(g)
        if claim is not None and len(bounds) >= 2 and claim.unit.startswith("GMACs"):
            lo, hi = min(bounds), max(bounds)
            if hi > lo:
                m.info["claimed position between bounds (0 = cheapest, 1 = dearest)"] = (claim.claimed - lo) / (hi - lo)
        return m

    def _m_ratio(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        num = self._measure(spec["numerator"], None)
        den = self._measure(spec["denominator"], None)
        info = {f"numerator: {k}": v for k, v in num.info.items()} | {f"denominator: {k}": v for k, v in den.info.items()}
        for side in (num, den):
            if side.error:
                return Measurement(error=side.error, info=info)
        waiting = [(name, side) for name, side in (("numerator", num), ("denominator", den)) if side.needs]
        if waiting:
            first = waiting[0][1]
            return Measurement(needs=first.needs, requirement=first.requirement, info=info,
                               reason="; ".join(f"{name}: {side.reason}" for name, side in waiting),
                               caveats=[c for _, side in waiting for c in side.caveats])
        assert num.value is not None and den.value is not None
        r = num.value / den.value
        value = r if spec["form"] == "ratio" else 100.0 * (1.0 - r)
        return Measurement(value=value, info=info | {"numerator": num.value, "denominator": den.value},
                           measured_by=f"{spec['form']} of ({num.measured_by}) and ({den.measured_by})")

    def _m_latency_ratio(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        num, den = self.latency(spec["numerator"]), self.latency(spec["denominator"])
        ratio = num["p50_ms"] / den["p50_ms"]
        gratio = num["gmacs_per_video"] / den["gmacs_per_video"] if den["gmacs_per_video"] else None
        info = {"numerator p50 (ms)": num["p50_ms"], "denominator p50 (ms)": den["p50_ms"],
                "latency ratio here (x)": ratio, "GMACs ratio (x)": gratio,
                "queries per schedule": min(num["queries"], den["queries"]), "threads": num["threads"]}
        if spec.get("requires_dataset"):
            info = {f"illustration — {spec.get('illustration', 'forced schedules')}": "",
                    **{f"illustration: {k}": v for k, v in info.items()}}
            return Measurement(needs="dataset", requirement=str(spec["requires_dataset"]), info=info, reason=(
                f"the speed-up depends on the trained policy's decisions on {spec['requires_dataset']} and on the "
                "compared method, neither of which is here; the timed schedules in info are an illustration only"))
        return Measurement(value=ratio, info=info, measured_by=(
            f"p50 latency ratio on this CPU (evbench.harness.measure.profile, batch 1, {info['queries per schedule']} queries)"))

    def _m_accuracy(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        ds, method, config = spec["dataset"], spec["method"], spec.get("config", "paper")
        metric = spec["metric"]
        if spec.get("form", "value") == "value":
            column = {"map": "map", "top1": "top1", "top5": "top5"}[metric]
            stored = self._from_results(self._stored_rows(method, config, ds), column, 100.0,
                                        f"{method} [{config}] on {ds}")
            if stored is not None:
                stored.caveats.append("Stored results store fractions 0-1; shown here ×100.")
                return stored
        if spec.get("form") == "gain":
            reason = (f"{metric} gain on {ds} ({spec.get('split', 'test')}) over a prior method the claim does not "
                      f"name: needs {method} [{config}] and that method trained and evaluated on {ds}, which is "
                      "not here")
        else:
            reason = (f"{metric} on {ds} ({spec.get('split', 'test')}): needs {method} [{config}] trained (or an "
                      f"official checkpoint) and {ds}, which is not here; --results RUN holding a row of {method} "
                      f"[{config}] on {ds} answers it")
        m = Measurement(needs="dataset", requirement=ds, reason=reason)
        if self.results is not None:
            others = self._stored_rows(method, config, None)
            if others is not None and "dataset" in others:
                m.info["stored rows of this method on other datasets"] = sorted({str(d) for d in others["dataset"]})
        return m

    def _m_fps(self, spec: Mapping[str, Any], claim: Claim | None) -> Measurement:
        device, label = spec["device"], spec.get("device_label", spec["device"])
        config = spec.get("config", "paper")
        stored = self._from_results(self._stored_rows(spec["method"], config, None, device=device),
                                    "fps_stream_processed", 1.0, f"{spec['method']} on {device}")
        if stored is not None:
            stored.caveats.append("Measured value is frames actually processed per second (fps_stream_processed).")
            return stored
        m = Measurement(needs="device", requirement=label, reason=f"needs an attached {label}; none here")
        m.info["operating point"] = spec.get("schedule", json.dumps(spec.get("knobs", {}), sort_keys=True))
        m.info.update(self._modeled_fps(spec))
        return m

    def _modeled_fps(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A roofline FPS estimate (``evbench.harness.devices.modeled``), labelled MODELED; a note when unavailable.

        The model is probed with no traces first, so a model that is not
        implemented yet costs no forward.
        """
        name = spec.get("modeled_device", f"{spec['device']}-modeled")
        unavailable = "modeled estimate"
        try:
            from evbench.harness.devices.modeled import model_latency

            method = self.method(spec)
            try:
                model_latency(method, [], device=name, backend="torch")
            except NotImplementedError:
                raise
            except Exception:  # noqa: BLE001,S110 - an empty probe need not be meaningful to an implemented model
                pass
            v = self.video(spec, spec.get("knobs"))
            out = model_latency(method, [v["trace"]], device=name, backend="torch")
        except NotImplementedError:
            return {unavailable: f"not available (evbench.harness.devices.modeled.model_latency for {name} is not "
                                 "implemented yet)"}
        except Exception as exc:  # noqa: BLE001 - the model is information only
            return {unavailable: f"not available ({type(exc).__name__}: {exc})"}
        ms = _latency_ms(out)
        if ms is None or ms <= 0:
            return {unavailable: f"not available (no latency in the model's answer: {sorted(out)})"}
        return {f"MODELED {name}: backend": str(out.get("backend", "modeled")),
                f"MODELED {name}: latency per clip (ms)": ms,
                f"MODELED {name}: fps processed (frames run / s)": v["frames_used"] / (ms / 1e3),
                f"MODELED {name}: fps covered (frames of video / s)": v["frames_total"] / (ms / 1e3)}


def _latency_ms(out: Mapping[str, Any]) -> float | None:
    """The per-clip latency in ms from a modeled-latency answer (``latency_ms`` dict or flat keys)."""
    lat = out.get("latency_ms")
    if isinstance(lat, Mapping):
        for k in ("p50", "mean"):
            if isinstance(lat.get(k), (int, float)):
                return float(lat[k])
    if isinstance(lat, (int, float)):
        return float(lat)
    for k in ("latency_ms_p50", "latency_ms_mean", "modeled_latency_ms"):
        if isinstance(out.get(k), (int, float)):
            return float(out[k])
    return None


# --------------------------------------------------------------------------- running


def check_claims(claims: Iterable[Claim], *, results: Any = None, results_path: str | None = None,
                 measurer: Measurer | None = None) -> list[dict[str, Any]]:
    """Measure and judge every claim.

    Args:
        claims: Claims to check.
        results: Stored results (a ``evbench.harness.results.load`` DataFrame) that may
            answer accuracy / per-video-cost / FPS claims, or None.
        results_path: Where ``results`` came from.
        measurer: A :class:`Measurer` to reuse (its caches), or None.

    Returns:
        One :func:`judge` row per claim, in order, each with ``seconds`` (wall
        time spent measuring it, s; cached work is not counted twice).
    """
    meas = measurer or Measurer(results, results_path)
    rows = []
    for claim in claims:
        t0 = time.perf_counter()
        row = judge(claim, meas.measure(claim))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
    return rows


def format_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """A readable table grouped by paper, then a count per verdict.

    Args:
        rows: :func:`judge` rows.

    Returns:
        Text: per paper its citation, then per claim the id, claimed and
        measured values, the difference (claim's unit) and the verdict; below
        it, indented, the quantity and tolerance, the source, how it was
        measured or why not, information and the caveat.  Last line: the
        count of claims, papers and each verdict.
    """
    lines: list[str] = []
    by_paper: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_paper.setdefault(r["paper"], []).append(r)
    for group in by_paper.values():
        head = group[0]
        lines.append(f"== {head['paper_title']} — {head['citation']} (doi:{head['doi']})")
        lines.append(f"   {'claim':40s} {'claimed':>12s} {'measured':>12s} {'diff':>10s}  verdict")
        for r in group:
            diff = _signed(r["difference"]) if r.get("difference") is not None else "—"
            verdict = r["verdict"] + (f" {r['needs']}" if r.get("needs") else "")
            lines.append(f"   {r['id']:40s} {_num(r['claimed']):>12s} {_num(r.get('measured')):>12s} "
                         f"{diff:>10s}  {verdict}  [{r['unit']}]")
            lines.append(f"      {r['quantity']}; tolerance {r['tolerance']}")
            lines.append(f"      source: {r['source']}")
            if r.get("measured") is None and r.get("reason"):
                lines.append(f"      why not measured: {r['reason']}")
            elif r.get("measured_by"):
                lines.append(f"      measured: {r['measured_by']}")
            for k, v in (r.get("info") or {}).items():
                lines.append(f"      info: {k}{': ' + (_num(v) if isinstance(v, float) else str(v)) if v != '' else ''}")
            if r.get("caveat"):
                lines.append(f"      caveat: {r['caveat']}")
        lines.append("")
    counts = Counter(r["verdict"] for r in rows)
    lines.append(f"{len(rows)} claim{'s' if len(rows) != 1 else ''} from {len(by_paper)} "
                 f"paper{'s' if len(by_paper) != 1 else ''}: "
                 + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    return "\n".join(lines)


def append_rows(out_dir: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                extra: Mapping[str, Any] | None = None) -> Path:
    """Append verdict rows to ``out_dir/claims.jsonl``, one atomic line write each.

    Each row is one ``\\n``-terminated JSON line written with a single
    ``os.write`` on a file opened with ``O_APPEND``, then ``fsync`` — a crash
    leaves whole rows only (as :class:`evbench.harness.results.ResultStore`).

    Args:
        out_dir: Run directory (created if absent).
        rows: :func:`judge` rows.
        extra: Fields added to every row (e.g. ``checked_at``, ``env``).

    Returns:
        The path of ``claims.jsonl``.
    """
    from evbench.harness.results import append_jsonl

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / CLAIMS_FILE
    append_jsonl(path, ({**dict(r), **dict(extra or {})} for r in rows))
    return path


def load_claim_rows(path: str | os.PathLike[str], *, latest_only: bool = True) -> list[dict[str, Any]]:
    """Stored verdict rows of a run directory (or a ``claims.jsonl`` file).

    Args:
        path: Run directory or the file itself.
        latest_only: Keep the last stored row per claim id (a re-check replaces
            an older one), in first-seen order.

    Returns:
        The rows; empty when there is no ``claims.jsonl``.  A torn or
        unreadable line is skipped with a warning (:func:`evbench.harness.results.read_jsonl`).
    """
    from evbench.harness.results import read_jsonl

    p = Path(path)
    f = p if p.is_file() else p / CLAIMS_FILE

    rows = [r for r in read_jsonl(f) if isinstance(r, dict) and "id" in r]
    if not latest_only:
        return rows
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        last.pop(r["id"], None)
        last[r["id"]] = r
    return list(last.values())


def run_claims(args: Any) -> int:
    """``evbench claims``: measure, judge and print every registered claim.

    Args:
        args: Parsed arguments with ``json`` (print a JSON list of rows),
            ``paper`` (only this paper key, or None), ``out`` (append the rows
            to ``OUT/claims.jsonl`` for the HTML report, or None), ``results``
            (a stored run answering accuracy / per-video-cost / FPS claims, or
            None) and optionally ``registry`` (another TOML file) and
            ``threads`` (torch intra-op threads for the run).

    Returns:
        0; 2 when the registry is malformed or missing (the message, printed
        to stderr, names the claim id), ``--paper`` names no paper of it, or
        ``--results`` holds no results file.
    """
    try:
        claims = load_registry(getattr(args, "registry", None))
    except (ClaimRegistryError, FileNotFoundError) as exc:
        print(f"evbench claims: {exc}", file=sys.stderr)
        return 2
    if args.paper:
        keys = sorted({c.paper.key for c in claims})
        claims = [c for c in claims if c.paper.key == args.paper.lower()]
        if not claims:
            print(f"evbench claims: no claims of paper {args.paper!r}; papers: {', '.join(keys)}", file=sys.stderr)
            return 2
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    results = None
    if args.results:
        from evbench.harness.results import load

        try:
            results = load(args.results)
        except FileNotFoundError as exc:
            print(f"evbench claims: --results: {exc}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    rows = check_claims(claims, results=results, results_path=args.results)
    elapsed = time.perf_counter() - t0
    if args.out:
        from evbench.harness.env import fingerprint

        path = append_rows(args.out, rows, {"checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                            "env": fingerprint(device="cpu", backend="torch")})
        print(f"claims: {len(rows)} verdict rows appended to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(format_text(rows))
        print(f"checked in {elapsed:.1f} s")
    return 0
