"""Realised speed-ups of compute-saving claims: the paper's decision mix timed here against its baseline.

A claim of a compute saving (``84.72 % less computation``), a speed-up
(``3.18x``) or an adaptive method's GMACs per video (``33.47`` vs the uniform
``65.76``) says how much computation the method's decisions save.  Whether
that saving is *realised* as time depends on the hardware and software stack:
small policy networks, per-frame Python control flow and batch-1 kernels cost
time that GMACs do not count.  A claim's ``[claims.realised]`` table names

``baseline``
    the method the paper compares with (usually a uniform TSN baseline) —
    ``method``, ``config``, ``overrides``, ``label``, optionally its own
    ``schedules`` and target;
``adaptive``
    the method's configuration (``paper``) and its **forced decision schedules**
    (``schedules = [{ knobs = {...}, weight = w }, ...]``, knobs from the card's
    ``force_options`` so the decisions do not depend on untrained weights);
``mix_source``
    where the decision mix comes from (the table / figure printing usage
    fractions) or, where the paper prints only a mean cost, that the mix is a
    schedule with that mean cost.

The mix over videos is given either by the ``weight`` of each schedule
(published usage fractions) or by a target: ``target_gmacs`` (a published mean
GMACs/video) or ``target_saving_pct`` (a published saving relative to the
baseline's measured GMACs/video).  With a target, every listed schedule's
GMACs/video is measured first (:meth:`Measurer.video`, the one measurement
path without timing) and the weight goes to the two schedules whose costs
bracket the target, so that the mix's mean cost equals it
(:func:`solve_weights`); only schedules with a weight > 0 are timed.

Every timed schedule is one :func:`evbench.harness.measure.measure_cell` row at
batch 1 on one seeded random-normal clip (:class:`RealisedSettings`: a few
latency queries, no offline FPS, no breakdown, a per-cell time budget).  The
mix's latency is ``Σ wᵢ · p50ᵢ`` (the expected per-video time when each
schedule takes its median time; for a single schedule this is its p50), and

``gmac_ratio``
    baseline GMACs/video ÷ adaptive mix GMACs/video (evbench's counting,
    fvcore cost table summed over each schedule's trace);
``realised_speedup``
    mix p50 latency of the baseline ÷ that of the adaptive side, with a
    seeded percentile bootstrap interval over the raw latency samples of
    every timed schedule of both sides (:func:`speedup_interval`);
``realised_verdict``
    e.g. ``"compute saving 1.96× realised as 1.71× [1.66, 1.77] on AMD EPYC
    7B13, torch fp32, 2 threads"`` (:func:`verdict_text`).

The verdict of the claim itself (``reproduced``, ``needs dataset``, ...) is not
changed: the realised fields measure the hardware side of the saving only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RealisedSettings", "is_saving_claim", "validate_realised", "solve_weights", "mix_p50",
    "speedup_interval", "verdict_text", "measure_realised", "not_measured", "REALISED_FIELDS",
]

#: Fields every claim with a ``realised`` table carries in its verdict row.
REALISED_FIELDS = ("gmac_ratio", "realised_speedup", "realised_speedup_ci", "device", "backend", "threads",
                   "realised_verdict", "realised")

_BUILD_KEYS = ("method", "config", "overrides", "num_classes")


def is_saving_claim(claim: Any) -> bool:
    """Whether a claim states a compute saving or a speed-up (and so needs a ``realised`` table).

    A speed-up or GMACs ratio (unit ``x``), a reduction (unit containing
    ``less``), or an adaptive method's GMACs per video under its trained
    policy (kind ``data_gmacs``, unit ``GMACs/video``) — the number a paper sets
    against its baseline's cost.

    Args:
        claim: A :class:`~evbench.harness.claims.schema.Claim`.
    """
    unit = claim.unit.strip().lower()
    return unit == "x" or "less" in unit or (claim.kind == "data_gmacs" and unit == "gmacs/video")


@dataclass(frozen=True)
class RealisedSettings:
    """How the realised pass times each schedule.

    Attributes:
        queries: Timed latency queries per schedule (an odd count keeps the
            median a measured sample); MLPerf's 64 would take hours for the
            paper configurations on a small CPU, so the row records the count.
        max_seconds: Wall-time budget of each schedule's measurement, s
            (:class:`~evbench.harness.settings.MeasureSettings` ``max_seconds``:
            warm-up and latency window shrink to fit, the row says so);
            ``None``: unlimited.
        resamples: Bootstrap resamples of the speed-up interval.
        level: Confidence level of the interval.
        seed: Bootstrap seed.
        device: Where the schedules are timed (``"cpu"``, ``"cuda"``,
            ``"cuda:N"``; GMACs do not depend on it).  Modeled devices are
            refused: a realised speed-up is a measurement.
    """

    queries: int = 7
    max_seconds: float | None = 150.0
    resamples: int = 2000
    level: float = 0.95
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Validate.

        Raises:
            ValueError: ``queries < 1``, ``max_seconds <= 0``, ``resamples < 10``,
                ``level`` outside (0, 1), or a device other than cpu / cuda[:N].
        """
        if self.queries < 1:
            raise ValueError(f"realised queries must be >= 1, got {self.queries}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"realised max_seconds must be > 0, got {self.max_seconds}")
        if self.resamples < 10:
            raise ValueError(f"realised resamples must be >= 10, got {self.resamples}")
        if not 0 < self.level < 1:
            raise ValueError(f"realised level must be in (0, 1), got {self.level}")
        if self.device != "cpu" and not str(self.device).startswith("cuda"):
            raise ValueError(f"realised speed-ups are timed on cpu or cuda[:N], not {self.device!r} "
                             "(a modeled device's latency is an estimate, not a realised speed-up)")

    def measure_settings(self) -> Any:
        """The :class:`~evbench.harness.settings.MeasureSettings` of one timed schedule.

        Batch 1, one clip, ``queries`` timed queries (no minimum duration; the
        window may last up to the budget), one warm-up run per path, no
        offline FPS, executed-MAC count, energy or breakdown.
        """
        from evbench.harness.settings import MeasureSettings

        return MeasureSettings(min_queries=self.queries, min_duration_s=0.0,
                               max_duration_s=float(self.max_seconds or 600.0), warmup_runs=1, latency_clips=1,
                               offline=False, count_executed=False, energy=False, breakdown=False,
                               max_seconds=self.max_seconds)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in each row's ``realised.settings``)."""
        return {"queries": self.queries, "max_seconds": self.max_seconds, "resamples": self.resamples,
                "level": self.level, "seed": self.seed, "device": self.device}


# --------------------------------------------------------------------------- registry validation


def _validate_side(side: Any, where: str, *, adaptive: bool) -> None:
    from evbench.harness.claims.schema import ClaimRegistryError

    if not isinstance(side, Mapping) or not side.get("method"):
        raise ClaimRegistryError(f"{where}: needs a table with 'method'")
    unknown = set(side) - {*_BUILD_KEYS, "label", "schedules", "target_gmacs", "target_saving_pct"}
    if unknown:
        raise ClaimRegistryError(f"{where}: unknown keys {sorted(unknown)}")
    schedules = side.get("schedules", [{"knobs": {}}])
    if not isinstance(schedules, list) or not schedules or not all(
            isinstance(s, Mapping) and isinstance(s.get("knobs", {}), Mapping) and set(s) <= {"knobs", "weight"}
            for s in schedules):
        raise ClaimRegistryError(f"{where}: 'schedules' must be a non-empty list of {{ knobs = {{...}}, weight = w }}")
    targets = [k for k in ("target_gmacs", "target_saving_pct") if k in side]
    if "target_saving_pct" in side and not adaptive:
        raise ClaimRegistryError(f"{where}: 'target_saving_pct' is relative to the baseline; only the adaptive "
                                 "side may have it")
    if len(targets) > 1:
        raise ClaimRegistryError(f"{where}: give one of 'target_gmacs', 'target_saving_pct'")
    weights = [s.get("weight") for s in schedules]
    if targets:
        value = side[targets[0]]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok or (targets[0] == "target_saving_pct" and value >= 100):
            raise ClaimRegistryError(f"{where}: {targets[0]} must be a number > 0 (and < 100 for a saving), "
                                     f"got {value!r}")
        if len(schedules) < 2 or any(w is not None for w in weights):
            raise ClaimRegistryError(f"{where}: a target needs at least 2 schedules and no weights "
                                     "(the weights are solved from their GMACs)")
    elif any(w is not None for w in weights):
        if any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in weights):
            raise ClaimRegistryError(f"{where}: every schedule needs a weight >= 0 when one has it")
        if abs(sum(weights) - 1.0) > 1e-6:
            raise ClaimRegistryError(f"{where}: schedule weights must sum to 1, got {sum(weights):.6g}")
    elif len(schedules) != 1:
        raise ClaimRegistryError(f"{where}: several schedules need weights (published usage fractions) or a target")


def validate_realised(spec: Any, where: str) -> None:
    """Check a claim's ``[claims.realised]`` table.

    Args:
        spec: The table.
        where: The claim's name for messages.

    Raises:
        ClaimRegistryError: Not a table; missing ``baseline`` / ``adaptive``
            (each a table with ``method``) or ``mix_source``; unknown keys;
            schedules that are not ``{knobs, weight}`` tables; weights that do
            not sum to 1; a target without two weight-less schedules.
    """
    from evbench.harness.claims.schema import ClaimRegistryError

    if not isinstance(spec, Mapping):
        raise ClaimRegistryError(f"{where}: 'realised' must be a table")
    unknown = set(spec) - {"baseline", "adaptive", "mix_source"}
    if unknown:
        raise ClaimRegistryError(f"{where}: unknown realised keys {sorted(unknown)}")
    if not spec.get("mix_source"):
        raise ClaimRegistryError(f"{where}: realised needs a 'mix_source' (the table / figure of the decision mix, "
                                 "or that only the mean cost is published)")
    _validate_side(spec.get("baseline"), f"{where} realised.baseline", adaptive=False)
    _validate_side(spec.get("adaptive"), f"{where} realised.adaptive", adaptive=True)


# --------------------------------------------------------------------------- the statistics (pure)


def solve_weights(gmacs: Sequence[float], target: float, *, rel_tol: float = 1e-6) -> list[float]:
    """Weights over schedules whose weighted mean cost equals ``target``.

    The weight goes to the two schedules adjacent in cost that bracket the
    target (the mix of the least different per-video costs); the others get 0.

    Args:
        gmacs: GMACs/video of each schedule.
        target: The mean GMACs/video the mix must have.
        rel_tol: A target within this fraction of a schedule's cost takes that
            schedule alone.

    Returns:
        One weight per schedule, summing to 1.

    Raises:
        ValueError: No schedule, or ``target`` outside ``[min(gmacs), max(gmacs)]``.
    """
    if not gmacs:
        raise ValueError("no schedules to mix")
    order = sorted(range(len(gmacs)), key=lambda i: gmacs[i])
    weights = [0.0] * len(gmacs)
    for i in order:
        if abs(gmacs[i] - target) <= rel_tol * max(abs(target), 1e-12):
            weights[i] = 1.0
            return weights
    for a, b in zip(order, order[1:], strict=False):
        lo, hi = gmacs[a], gmacs[b]
        if lo < target < hi:
            weights[b] = (target - lo) / (hi - lo)
            weights[a] = 1.0 - weights[b]
            return weights
    raise ValueError(f"target {target:.4g} GMACs/video is outside the schedules' costs "
                     f"[{min(gmacs):.4g}, {max(gmacs):.4g}]; add a schedule beyond it")


def mix_p50(parts: Sequence[tuple[float, Sequence[float]]]) -> float:
    """``Σ wᵢ · median(samplesᵢ)`` — a mix's per-video latency (ms).

    Args:
        parts: ``(weight, latency samples in ms)`` per schedule; weight-0 parts
            are ignored.

    Raises:
        ValueError: No part with a weight > 0, or such a part without samples.
    """
    used = [(w, s) for w, s in parts if w > 0]
    if not used:
        raise ValueError("no schedule with a weight > 0")
    total = 0.0
    for w, s in used:
        if len(s) == 0:
            raise ValueError("a schedule with a weight > 0 has no latency samples")
        total += w * float(np.median(np.asarray(s, dtype=float)))
    return total


def _boot_mix(parts: Sequence[tuple[float, Sequence[float]]], resamples: int,
              rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(resamples)
    for w, s in parts:
        if w <= 0:
            continue
        arr = np.asarray(s, dtype=float)
        idx = rng.integers(0, len(arr), size=(resamples, len(arr)))
        out += w * np.median(arr[idx], axis=1)
    return out


def speedup_interval(baseline: Sequence[tuple[float, Sequence[float]]],
                     adaptive: Sequence[tuple[float, Sequence[float]]], *, resamples: int = 2000,
                     level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Realised speed-up ``mix_p50(baseline) / mix_p50(adaptive)`` with a bootstrap interval.

    Percentile bootstrap: every timed schedule's raw latency samples (both
    sides) are resampled with replacement, independently, ``resamples`` times
    from one seeded :func:`numpy.random.default_rng`; the interval is the
    ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the resampled ratio.

    Args:
        baseline: ``(weight, samples ms)`` per baseline schedule.
        adaptive: ``(weight, samples ms)`` per adaptive schedule.
        resamples: Bootstrap resamples.
        level: Confidence level.
        seed: Generator seed.

    Returns:
        ``speedup`` (×), ``ci`` ``[low, high]`` (×), ``level``, ``resamples``,
        ``seed``, ``baseline_p50_ms``, ``adaptive_p50_ms`` (mix latencies, ms)
        and ``method`` (text).

    Raises:
        ValueError: See :func:`mix_p50`; a non-positive mix latency.
    """
    base, adapt = mix_p50(baseline), mix_p50(adaptive)
    if not base > 0 or not adapt > 0:
        raise ValueError(f"mix latencies must be > 0 ms, got baseline {base}, adaptive {adapt}")
    rng = np.random.default_rng(seed)
    ratios = _boot_mix(baseline, resamples, rng) / _boot_mix(adaptive, resamples, rng)
    lo, hi = np.quantile(ratios, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return {"speedup": base / adapt, "ci": [float(lo), float(hi)], "level": level, "resamples": resamples,
            "seed": seed, "baseline_p50_ms": base, "adaptive_p50_ms": adapt,
            "method": (f"percentile bootstrap ({resamples} resamples, numpy seed {seed}) over the raw latency "
                       "samples of every timed schedule of both sides; mix latency = Σ weight × p50")}


def verdict_text(gmac_ratio: float, speedup: float, ci: Sequence[float], *, device: str, backend: str,
                 precision: str, threads: int | None, claimed: float | None = None, claimed_unit: str = "",
                 under_load: bool = False, fewest_queries: int | None = None) -> str:
    """The realised verdict sentence.

    Args:
        gmac_ratio: Baseline ÷ adaptive GMACs/video (×).
        speedup: Realised p50 speed-up (×).
        ci: Its interval ``[low, high]``.
        device: Device (CPU model).
        backend: Execution backend (``torch``).
        precision: ``fp32`` etc.
        threads: Intra-op threads.
        claimed: The claimed speed-up when the claim is one (unit ``x``), else None.
        claimed_unit: The claim's unit (``x`` prefixes "claimed 3.18×; ").
        under_load: Any timed schedule was flagged noisy (machine under load).
        fewest_queries: The fewest timed queries of any schedule when the time
            budget cut it below the asked count, else None.

    Returns:
        E.g. ``"compute saving 1.96× realised as 1.71× [1.66, 1.77] on AMD EPYC
        7B13, torch fp32, 2 threads"``.
    """
    n = "?" if threads is None else str(threads)
    text = (f"compute saving {gmac_ratio:.2f}× realised as {speedup:.2f}× [{ci[0]:.2f}, {ci[1]:.2f}] "
            f"on {device}, {backend} {precision}, {n} thread{'' if threads == 1 else 's'}")
    if claimed is not None and claimed_unit.strip() == "x":
        text = f"claimed {claimed:g}×; " + text
    if fewest_queries is not None:
        text += f" (budget-limited: a schedule got only {fewest_queries} quer{'y' if fewest_queries == 1 else 'ies'})"
    if under_load:
        text += " (timed under load: not a result)"
    return text


# --------------------------------------------------------------------------- measuring


def _build(side: Mapping[str, Any]) -> dict[str, Any]:
    return {k: side[k] for k in _BUILD_KEYS if k in side}


def _side(measurer: Any, side: Mapping[str, Any], settings: RealisedSettings, baseline_gmacs: float | None,
          log: Callable[[str], None] | None) -> dict[str, Any]:
    """Weights, timed cells and the mix cost of one side (``baseline`` or ``adaptive``)."""
    build = _build(side)
    listed = list(side.get("schedules", [{"knobs": {}}]))
    schedules = [dict(s.get("knobs", {})) for s in listed]
    target, how = None, "one schedule"
    if "target_gmacs" in side:
        target = float(side["target_gmacs"])
        how = f"mix with a mean of {target:g} GMACs/video"
    elif "target_saving_pct" in side:
        if baseline_gmacs is None:
            raise ValueError("target_saving_pct needs the baseline's GMACs/video")
        pct = float(side["target_saving_pct"])
        target = baseline_gmacs * (1.0 - pct / 100.0)
        how = f"mix with {pct:g} % less GMACs/video than the baseline ({target:.4g} GMACs/video)"
    if target is not None:
        costs = [float(measurer.video(build, k)["gmacs"]) for k in schedules]
        weights = solve_weights(costs, target)
    elif any("weight" in s for s in listed):
        weights = [float(s["weight"]) for s in listed]
        how = "published usage fractions"
    else:
        weights = [1.0]
    ms = settings.measure_settings()
    records: list[dict[str, Any]] = []
    parts: list[tuple[float, list[float]]] = []
    timed = []
    for knobs, w in zip(schedules, weights, strict=True):
        rec: dict[str, Any] = {"knobs": knobs, "weight": w, "timed": w > 0}
        if w > 0:
            if log is not None and not measurer.has_cell(build, knobs, device=settings.device, settings=ms):
                log(f"realised: timing {build['method']} [{build.get('config', 'paper')}]"
                    f"{' ' + str(build['overrides']) if build.get('overrides') else ''} knobs {knobs} "
                    f"(weight {w:.3f})")
            row = measurer.cell(build, knobs, device=settings.device, settings=ms)
            samples = [float(v) for v in (row.latency_samples_ms or [])]
            rec.update(gmacs_per_video=row.gmacs_per_video, frames_used=row.frames_used,
                       latency_ms_p50=row.latency_ms_p50, latency_queries=row.latency_queries,
                       latency_budget_limited=row.latency_budget_limited, budget_notes=row.budget_notes,
                       noisy=row.noisy, latency_samples_ms=samples)
            parts.append((w, samples))
            timed.append(row)
        else:
            rec["gmacs_per_video"] = float(measurer.video(build, knobs)["gmacs"])
        records.append(rec)
    gmacs = sum(r["weight"] * float(r["gmacs_per_video"]) for r in records if r["timed"])
    if len(records) > 1 or records[0]["knobs"]:
        how += ": " + " + ".join(f"{r['weight']:.2f} × " + (",".join(f"{k}={v}" for k, v in r["knobs"].items())
                                                              or "default") for r in records if r["timed"])
    return {"method": build["method"], "config": build.get("config", "paper"),
            "overrides": dict(build.get("overrides") or {}), "label": side.get("label", build["method"]),
            "mix": how, "target_gmacs": target, "gmacs_per_video": gmacs, "schedules": records,
            "_parts": parts, "_rows": timed}


def measure_realised(measurer: Any, claim: Any, settings: RealisedSettings,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The realised fields of one claim with a ``realised`` table.

    Args:
        measurer: The claims :class:`~evbench.harness.claims.measure.Measurer`
            (its ``video`` and ``cell`` caches are shared between claims).
        claim: The claim (``claim.realised`` is its table).
        settings: How each schedule is timed.
        log: Called with one progress line per timed schedule (stderr), or None.

    Returns:
        :data:`REALISED_FIELDS`: ``gmac_ratio`` (×), ``realised_speedup`` (×),
        ``realised_speedup_ci`` (``[low, high]``, ×), ``device`` (CPU model),
        ``backend`` (e.g. ``"torch fp32"``), ``threads``, ``realised_verdict``
        (text) and ``realised`` (both sides: label, mix, target, GMACs/video,
        per schedule its knobs, weight, GMACs, p50, queries, budget notes and
        raw samples; the interval's method; the settings; ``mix_source``).

    Raises:
        ValueError: A target outside the listed schedules' costs, missing
            latency samples.
        harness.api.KnobError: A schedule's knob the method does not declare.
    """
    spec = claim.realised
    base = _side(measurer, spec["baseline"], settings, None, log)
    adapt = _side(measurer, spec["adaptive"], settings, base["gmacs_per_video"], log)
    if not adapt["gmacs_per_video"] > 0:
        raise ValueError(f"adaptive mix of {claim.id} has {adapt['gmacs_per_video']} GMACs/video")
    gmac_ratio = base["gmacs_per_video"] / adapt["gmacs_per_video"]
    interval = speedup_interval(base.pop("_parts"), adapt.pop("_parts"), resamples=settings.resamples,
                                level=settings.level, seed=settings.seed)
    rows = base.pop("_rows") + adapt.pop("_rows")
    env = rows[0].env or {}
    if str(rows[0].device).startswith("cuda"):
        device = f"{env.get('gpu_name') or 'CUDA GPU'} ({rows[0].device})"
    else:
        device = str(env.get("cpu_model") or rows[0].device or "cpu")
    backend, precision = str(rows[0].backend or "torch"), str(rows[0].precision or "fp32")
    threads = rows[0].threads
    under_load = any(bool(r.noisy) for r in rows)
    limited = [int(r.latency_queries or 0) for r in rows if r.latency_budget_limited]
    text = verdict_text(gmac_ratio, interval["speedup"], interval["ci"], device=device, backend=backend,
                        precision=precision, threads=threads, claimed=claim.claimed, claimed_unit=claim.unit,
                        under_load=under_load, fewest_queries=min(limited) if limited else None)
    return {
        "gmac_ratio": gmac_ratio, "realised_speedup": interval["speedup"], "realised_speedup_ci": interval["ci"],
        "device": device, "backend": f"{backend} {precision}", "threads": threads, "realised_verdict": text,
        "realised": {"baseline": base, "adaptive": adapt, "mix_source": spec["mix_source"],
                     "interval": {k: v for k, v in interval.items() if k not in ("speedup", "ci")},
                     "under_load": under_load, "budget_limited": bool(limited), "settings": settings.to_dict(),
                     "batch": 1, "clip": "one seeded random-normal clip (RandomClips seed 0), SYNTHETIC"},
    }


def not_measured(reason: str) -> dict[str, Any]:
    """The realised fields of a claim whose realised pass did not run or failed.

    Args:
        reason: Why (``"realised pass off (--no-realised)"``, the error).

    Returns:
        :data:`REALISED_FIELDS` with None values and ``realised_verdict`` =
        ``"not measured: <reason>"``.
    """
    return {"gmac_ratio": None, "realised_speedup": None, "realised_speedup_ci": None, "device": None,
            "backend": None, "threads": None, "realised_verdict": f"not measured: {reason}", "realised": None}
