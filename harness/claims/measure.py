"""The claims' own measurer: cost tables, forwards, latencies and stored results per measurement kind.

:class:`Measurer` measures a claim's ``measurement`` spec with the harness's
instruments (see :mod:`evbench.harness.claims` for the kinds), caching within
a run; :func:`check_claims` measures and judges a list of claims.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from evbench.harness.claims.judge import judge
from evbench.harness.claims.query import from_results, stored_rows
from evbench.harness.claims.realised import RealisedSettings, measure_realised, not_measured
from evbench.harness.claims.schema import Claim, Measurement

__all__ = ["Measurer", "check_claims"]

#: Classes of the methods the measurer builds (ActivityNet-v1.3's 200) unless a spec says otherwise.
_DEFAULT_CLASSES = 200


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


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
        realised: How the realised speed-ups of claims with a ``realised``
            table are timed (:class:`~evbench.harness.claims.realised.RealisedSettings`),
            or None to skip that pass (their rows then say "not measured").
        log: Called with one progress line per timed realised schedule, or None.
    """

    def __init__(self, results: Any = None, results_path: str | None = None, latency_queries: int = 3,
                 realised: RealisedSettings | None = None, log: Callable[[str], None] | None = None) -> None:
        self.results = results
        self.results_path = results_path
        self.latency_queries = latency_queries
        self.realised = realised
        self.log = log
        self._methods: dict[str, Any] = {}
        self._videos: dict[str, dict[str, Any]] = {}
        self._cells: dict[str, Any] = {}

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
        """GMACs/video of one seeded random-normal batch-1 clip through the one measurement path (cached per knobs).

        :meth:`cell` with latency off (:func:`evbench.harness.measure.measure_cell`
        evaluates the clip and sums its trace over the fvcore cost table; no
        timing, no executed-MAC count).

        Args:
            spec: As for :meth:`method`.
            knobs: Inference knobs, e.g. a forced schedule ``{"force": 224}``.

        Returns:
            ``gmacs`` (GMACs/video, the row's ``gmacs_per_video``),
            ``frames_used`` (frames processed) and ``frames_total`` (frames given).

        Raises:
            harness.api.KnobError: A knob the method does not declare.
        """
        from evbench.harness.settings import MeasureSettings

        key = _key(spec["method"], spec.get("config", "paper"), spec.get("overrides", {}), spec.get("num_classes"),
                   dict(knobs or {}))
        if key not in self._videos:
            row = self.cell(spec, knobs, settings=MeasureSettings(
                latency=False, count_executed=False, offline=False, energy=False, breakdown=False, max_seconds=None))
            used = row.frames_used
            self._videos[key] = {"gmacs": float(row.gmacs_per_video),
                                 "frames_used": int(used) if used is not None and float(used).is_integer() else used,
                                 "frames_total": row.frames_total}
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

    def cell(self, spec: Mapping[str, Any], knobs: Mapping[str, Any] | None, *, device: str = "cpu",
             settings: Any = None) -> Any:
        """One measured cell of a spec's method, through the harness's one measurement path (cached).

        :func:`evbench.harness.measure.measure_cell` on one seeded random-normal
        clip (:class:`evbench.harness.data.RandomClips`, seed 0 — the clip
        :meth:`video` runs) at small :class:`~evbench.harness.settings.MeasureSettings`:
        batch 1, the method's warm-up on every forced path, ``latency_queries``
        timed queries, no offline FPS, no executed-MAC count, no energy — or
        the given ``settings``.  On a modeled device (``*-modeled``) the latency
        is the roofline model's.

        Args:
            spec: As for :meth:`method`.
            knobs: Operating point.
            device: ``"cpu"`` or a modeled device name.
            settings: :class:`~evbench.harness.settings.MeasureSettings` instead of
                the small default (part of the cache key).

        Returns:
            The :class:`~evbench.harness.row.CellResult`.
        """
        from evbench.harness.data import RandomClips
        from evbench.harness.measure import measure_cell
        from evbench.harness.settings import MeasureSettings

        if settings is None:
            settings = MeasureSettings(min_queries=self.latency_queries, min_duration_s=0.0, max_duration_s=30.0,
                                       latency_clips=1, offline=False, count_executed=False, energy=False)
        key = self._cell_key(spec, knobs, device, settings)
        if key not in self._cells:
            method = self.method(spec)
            clips = RandomClips(tuple(method.example_input(1).shape[1:]), 1, seed=0)
            self._cells[key] = measure_cell(method, clips, settings, knobs=dict(knobs or {}), device=device)
        return self._cells[key]

    @staticmethod
    def _cell_key(spec: Mapping[str, Any], knobs: Mapping[str, Any] | None, device: str, settings: Any) -> str:
        return _key(spec["method"], spec.get("config", "paper"), spec.get("overrides", {}), spec.get("num_classes"),
                    dict(knobs or {}), device, settings.to_dict())

    def has_cell(self, spec: Mapping[str, Any], knobs: Mapping[str, Any] | None, *, device: str = "cpu",
                 settings: Any) -> bool:
        """Whether :meth:`cell` of these arguments is already measured (cached) in this run."""
        return self._cell_key(spec, knobs, device, settings) in self._cells

    def latency(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Single-stream latency of one schedule on this CPU (:meth:`cell`, cached).

        Args:
            spec: As for :meth:`method`, plus ``knobs``.

        Returns:
            ``p50_ms`` and ``mean_ms`` (the row's ``latency_ms_p50`` /
            ``latency_ms_mean``, ms per clip), ``queries``, ``gmacs_per_video``
            (GMACs), ``frames_used``, ``threads``.
        """
        row = self.cell(spec, spec.get("knobs"))
        return {"p50_ms": row.latency_ms_p50, "mean_ms": row.latency_ms_mean, "queries": row.latency_queries,
                "gmacs_per_video": row.gmacs_per_video, "frames_used": row.frames_used, "threads": row.threads}

    # -- stored results ------------------------------------------------------------------
    def _stored_rows(self, method: str | None, config: str, dataset: str | None = None,
                     device: str | None = None) -> Any:
        return stored_rows(self.results, method, config, dataset, device)

    def _from_results(self, rows: Any, column: str, scale: float, what: str) -> Measurement | None:
        return from_results(rows, column, scale, what, self.results_path)

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
            m = self._measure(claim.measurement, claim)
        except Exception as exc:  # noqa: BLE001 - one failing claim must not stop the others
            m = Measurement(error=f"{type(exc).__name__}: {exc}", reason=f"measurement of {claim.id} raised")
        if claim.realised is not None:
            m.realised = self.realised_fields(claim)
        return m

    def realised_fields(self, claim: Claim) -> dict[str, Any]:
        """The realised speed-up fields of a claim with a ``realised`` table.

        :func:`evbench.harness.claims.realised.measure_realised` with this
        measurer's caches and :attr:`realised` settings; an exception becomes
        ``realised_verdict = "not measured: <error>"`` (the claim's own verdict
        is unaffected).

        Args:
            claim: The claim.

        Returns:
            :data:`evbench.harness.claims.realised.REALISED_FIELDS`.
        """
        if self.realised is None:
            return not_measured("realised pass off (evbench claims --no-realised)")
        try:
            return measure_realised(self, claim, self.realised, log=self.log)
        except Exception as exc:  # noqa: BLE001 - one failing schedule must not stop the other claims
            return not_measured(f"{type(exc).__name__}: {exc}")

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
            f"{json.dumps(spec.get('knobs', {}), sort_keys=True)} (fvcore cost table, measure_cell without timing)"))
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
            f"p50 latency ratio on this CPU (evbench.harness.measure.measure_cell, batch 1, "
            f"{info['queries per schedule']} queries)"))

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
        """A roofline FPS estimate, labelled MODELED; a note when unavailable.

        The cell of the spec's operating point measured on the modeled device
        (:meth:`cell`, ``device="<device>-modeled"``): its ``latency_ms_p50``
        and ``fps_stream_processed`` / ``fps_stream_covered``.
        """
        name = spec.get("modeled_device", f"{spec['device']}-modeled")
        unavailable = "modeled estimate"
        try:
            row = self.cell(spec, spec.get("knobs"), device=name)
        except Exception as exc:  # noqa: BLE001 - the model is information only
            return {unavailable: f"not available ({type(exc).__name__}: {exc})"}
        ms = row.latency_ms_p50
        if ms is None or not ms > 0:
            return {unavailable: f"not available (modeled latency {ms} ms)"}
        return {f"MODELED {name}: backend": str(row.backend),
                f"MODELED {name}: latency per clip (ms)": float(ms),
                f"MODELED {name}: fps processed (frames run / s)": row.fps_stream_processed,
                f"MODELED {name}: fps covered (frames of video / s)": row.fps_stream_covered}


def check_claims(claims: Iterable[Claim], *, results: Any = None, results_path: str | None = None,
                 measurer: Measurer | None = None, realised: RealisedSettings | None = None,
                 log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Measure and judge every claim.

    Args:
        claims: Claims to check.
        results: Stored results (a ``evbench.harness.results.load`` DataFrame) that may
            answer accuracy / per-video-cost / FPS claims, or None.
        results_path: Where ``results`` came from.
        measurer: A :class:`Measurer` to reuse (its caches), or None.
        realised: Time the realised speed-ups of claims with a ``realised``
            table with these settings (ignored when ``measurer`` is given);
            None skips that pass.
        log: Progress lines of the realised pass (ignored when ``measurer`` is given).

    Returns:
        One :func:`judge` row per claim, in order, each with ``seconds`` (wall
        time spent measuring it, s; cached work is not counted twice).
    """
    meas = measurer or Measurer(results, results_path, realised=realised, log=log)
    rows = []
    for claim in claims:
        t0 = time.perf_counter()
        row = judge(claim, meas.measure(claim))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
    return rows
