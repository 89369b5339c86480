"""Measurements of one method: :func:`measure_cell`, the one measurement path, and its parts.

This module joins a :class:`~evbench.harness.api.Method` to the instruments
(:mod:`evbench.harness.costs`, :mod:`evbench.harness.timing`, :mod:`evbench.harness.memory`,
:mod:`evbench.harness.metrics`, :mod:`evbench.harness.devices`) through the method
interface only — no method is known by name.  :func:`measure_cell` (method,
dataset, :class:`~evbench.harness.settings.MeasureSettings`) evaluates, counts,
times and returns a :class:`~evbench.harness.row.CellResult`; the runner's
cells and ``evbench profile`` both go through it.  The lower-level helpers
(:func:`evaluate`, :func:`trace_stats`, :func:`count_profile`, :func:`profile`)
return plain dicts whose keys are column names of :class:`~evbench.harness.row.CellResult`.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from evbench.harness.api import Method, Output, TraceStep
from evbench.harness.costs import (
    cost_table,
    cost_table_rows,
    executed_gmacs,
    trace_gmacs,
    trace_gmacs_by_role,
)
from evbench.harness.row import CellResult
from evbench.harness.settings import DEFAULT_SETTINGS, MeasureSettings
from evbench.harness.training import iterate_batches

if TYPE_CHECKING:
    from evbench.harness.eval_memo import EvalMemoStore

__all__ = [
    "EvalResult", "evaluate", "trace_stats", "count_profile", "profile", "frames_used", "measure_cell",
    "decode_times", "ptflops_crosscheck", "stream_fps", "CONVENTIONS",
]


def frames_used(trace: Sequence[TraceStep]) -> int:
    """Distinct frames (index ≥ 0) on which any step ran — the frames a sample processed."""
    return len({s.frame for s in trace if s.frame >= 0})


def _exit_of(trace: Sequence[TraceStep]) -> str:
    for step in reversed(trace):
        if step.exit:
            return step.exit
    return "none"


def _declared_keys(method: Method) -> set[tuple[str, tuple[int, ...]]]:
    return {e.key for e in method.cost_entries() if e.declared_gmacs is not None}


def trace_stats(method: Method, traces: Sequence[Sequence[TraceStep]], frames_total: int) -> dict[str, Any]:
    """GMACs and decision statistics over per-sample traces.

    Returns:
        ``gmacs_per_video`` (mean), ``_p5``, ``_p95``, role split
        (``gmacs_policy_per_video``, ``gmacs_backbone_per_video``,
        ``gmacs_input_per_video``), ``gmacs_per_frame`` (per processed frame),
        ``frames_used`` (mean), ``frames_total``, ``exit_hist``,
        ``frames_used_hist``, ``gmacs_per_slot`` (mean GMACs spent on each frame
        slot, list of length ``frames_total``), and ``per_video_gmacs``.
    """
    table = cost_table(method)
    per_video = np.array([trace_gmacs(t, table) for t in traces], dtype=float)
    used = np.array([frames_used(t) for t in traces], dtype=float)
    roles: dict[str, float] = {}
    slot = np.zeros(max(frames_total, 1))
    for t in traces:
        for role, g in trace_gmacs_by_role(t, table).items():
            roles[role] = roles.get(role, 0.0) + g
        for s in t:
            if 0 <= s.frame < len(slot):
                slot[s.frame] += table[s.key]
    n = max(len(traces), 1)
    mean_used = float(used.mean()) if len(used) else float("nan")
    mean_g = float(per_video.mean()) if len(per_video) else float("nan")
    return {
        "gmacs_per_video": mean_g,
        "gmacs_per_video_p5": float(np.percentile(per_video, 5)) if len(per_video) else None,
        "gmacs_per_video_p95": float(np.percentile(per_video, 95)) if len(per_video) else None,
        "gmacs_policy_per_video": roles.get("policy", 0.0) / n,
        "gmacs_backbone_per_video": (roles.get("backbone", 0.0) + roles.get("head", 0.0)) / n,
        "gmacs_input_per_video": roles.get("input", 0.0) / n,
        "gmacs_per_frame": mean_g / mean_used if mean_used else None,
        "frames_used": mean_used,
        "frames_total": frames_total,
        "exit_hist": dict(Counter(_exit_of(t) for t in traces)),
        "frames_used_hist": {str(k): v for k, v in sorted(Counter(int(u) for u in used).items())},
        "gmacs_per_slot": (slot / n).tolist(),
        "per_video_gmacs": per_video.tolist(),
    }


def _decision_hist(decisions: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for d in decisions:
        v = d.get(key)
        if isinstance(v, (list, tuple)):
            counts.update(str(e) for e in v)
        elif v is not None:
            counts[str(v)] += 1
    return dict(counts)


def upper_bound_gmacs(method: Method, example: torch.Tensor) -> float:
    """Static upper bound of GMACs/video: a forward with ``card.upper_bound_knobs``."""
    with torch.inference_mode():
        out = method(example, knobs=dict(method.card.upper_bound_knobs) or None)
    return trace_gmacs(out.trace[0], cost_table(method))


@dataclass
class EvalResult:
    """Evaluation of one method over one dataset split.

    Attributes:
        logits: ``(N, C)`` float array.
        labels: ``(N,)`` int array.
        samples: Per-video rows (id, path, label, pred, gmacs, frames_used, exit,
            decisions JSON, decode_ms, preprocess_ms, scores).
        traces: Per-video traces.
        executed_gmacs_total: GMACs counted while the forwards ran, all videos,
            plus declared (not executed here) input costs from the traces.
        errors: ``{"path", "error"}`` of clips that could not be loaded.
        decisions: Per-video decision dicts from ``Output.decisions``.
        frames_given: T of the clips given to the method.
    """

    logits: np.ndarray
    labels: np.ndarray
    samples: pd.DataFrame
    traces: list[list[TraceStep]]
    executed_gmacs_total: float | None
    errors: list[dict[str, str]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    frames_given: int = 0
    executed_clips: int = 0
    executed_trace_gmacs_total: float = 0.0


def evaluate(
    method: Method, dataset: Sequence[Any], *, device: str | torch.device = "cpu", knobs: Mapping[str, Any] | None = None,
    batch_size: int = 8, count_executed: bool = True, count_clips: int | None = None, progress: bool = False,
) -> EvalResult:
    """Run ``method`` over every clip of ``dataset`` (its test split).

    Args:
        method: The method (eval mode is set here).
        dataset: Items with ``.x``, ``.label``, ``.id``, ``.path``, ``.decode_ms``,
            ``.preprocess_ms``.
        device: Inference device.
        knobs: Operating point.
        batch_size: Clips per forward (traces are per sample, so batching does
            not change costs or decisions).
        count_executed: Also count MACs while the forward executes
            (``FlopCounterMode``; slower).
        count_clips: Count them only in ``ceil(count_clips / batch_size)``
            batches evenly spaced over the split (:func:`counted_batches`;
            ``None``: every batch).
        progress: tqdm bar.

    Returns:
        :class:`EvalResult`; clips that fail to load are listed in ``errors``;
        ``executed_gmacs_total`` sums the counted clips (``executed_clips``),
        ``executed_trace_gmacs_total`` their trace GMACs.

    Raises:
        RuntimeError: If no clip could be evaluated.
    """
    from tqdm.auto import tqdm

    method.eval().to(device)
    table = cost_table(method)
    declared = _declared_keys(method)
    errors: list[dict[str, str]] = []
    logits_all, labels_all, traces, decisions, rows = [], [], [], [], []
    executed = executed_trace = 0.0
    executed_clips = frames_given = 0
    batches = iterate_batches(dataset, range(len(dataset)), batch_size, errors=errors)
    total = (len(dataset) + batch_size - 1) // batch_size
    counting = counted_batches(total, batch_size, count_clips) if count_executed else set()
    for b, (x, y, samples) in enumerate(tqdm(batches, total=total, desc=f"eval {method.card.name}",
                                             disable=not progress, leave=False)):
        x = x.to(device)
        frames_given = int(x.shape[1])
        count = b in counting
        out, counted = _forward(method, x, knobs, count)
        executed += counted
        logits = out.logits.float().cpu().numpy()
        dec = out.decisions or [{} for _ in samples]
        for i, s in enumerate(samples):
            tr = out.trace[i]
            g = trace_gmacs(tr, table)
            if count:
                executed += sum(table[st.key] for st in tr if st.key in declared)
                executed_trace += g
                executed_clips += 1
            rows.append({
                "id": s.id, "path": s.path, "label": int(s.label), "pred": int(np.argmax(logits[i])),
                "gmacs": g, "frames_used": frames_used(tr), "exit": _exit_of(tr),
                "decisions": json.dumps(dec[i], sort_keys=True, default=str),
                "decode_ms": float(s.decode_ms), "preprocess_ms": float(s.preprocess_ms),
                "cached": bool(getattr(s, "cached", False)), "scores": logits[i].tolist(),
            })
            traces.append(list(tr))
            decisions.append(dec[i])
        logits_all.append(logits)
        labels_all.append(y.numpy())
    if not rows:
        raise RuntimeError(f"no clip of {getattr(dataset, 'name', 'the dataset')} could be evaluated "
                           f"({len(errors)} failed; first: {errors[0] if errors else '-'})")
    return EvalResult(
        logits=np.concatenate(logits_all), labels=np.concatenate(labels_all), samples=pd.DataFrame(rows),
        traces=traces, executed_gmacs_total=executed if count_executed else None, errors=errors, decisions=decisions,
        frames_given=frames_given, executed_clips=executed_clips, executed_trace_gmacs_total=executed_trace,
    )


def counted_batches(n_batches: int, batch_size: int, count_clips: int | None) -> set[int]:
    """Indices of the evaluation batches whose MACs are counted: ``ceil(count_clips / batch_size)`` of the
    ``n_batches``, evenly spaced (batch ``round(j · n_batches / k)``); every batch when ``count_clips`` is None
    or covers the split."""
    if count_clips is None:
        return set(range(n_batches))
    return set(_spread(n_batches, max(1, math.ceil(count_clips / batch_size))))


def _spread(n: int, k: int) -> list[int]:
    """``k`` positions of ``range(n)`` evenly spaced from the first, ``round(j · n / k)`` (all ``n`` when
    ``k >= n``): the latency clips and the counted evaluation batches."""
    if k >= n:
        return list(range(n))
    return [round(j * n / k) for j in range(k)]


def _forward(method: Method, x: torch.Tensor, knobs: Mapping[str, Any] | None, count: bool) -> tuple[Output, float]:
    """One inference-mode forward and the GMACs counted while it ran (0.0 when not counting)."""
    holder: list[Output] = []
    with torch.inference_mode():
        if count:
            executed = executed_gmacs(lambda: holder.append(method(x, knobs=knobs)))
        else:
            executed = 0.0
            holder.append(method(x, knobs=knobs))
    return holder[0], executed


def decision_histograms(decisions: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """``resolution_hist`` / ``action_hist`` from per-video decision dicts (keys ``resolutions``/``actions``)."""
    out = {}
    for key, col in (("resolutions", "resolution_hist"), ("actions", "action_hist")):
        h = _decision_hist(decisions, key)
        if h:
            out[col] = h
    return out


def count_profile(
    method: Method, inputs: Sequence[torch.Tensor], *, knobs: Mapping[str, Any] | None = None,
    count_executed: bool = True,
) -> dict[str, Any]:
    """Cost table, per-video GMACs from the traces, executed MACs — no timing.

    Args:
        method: The method, already on the inputs' device.
        inputs: Batch-1 clips ``(1, T, ...)``.
        knobs: Operating point.
        count_executed: Count MACs while each forward runs (``FlopCounterMode``);
            off for backends whose kernels run outside PyTorch's dispatcher
            (ONNX Runtime), where the count would read 0.

    Returns:
        The trace statistics of :func:`trace_stats` (without ``per_video_gmacs``)
        plus ``cost_table`` (rows), ``gmacs_static_upper``,
        ``executed_gmacs_per_video`` (None when not counted), ``traces`` (the
        per-clip traces) and ``per_video_gmacs``.
    """
    knobs = dict(knobs or {})
    table_rows = cost_table_rows(method)
    declared = _declared_keys(method)
    table = cost_table(method)
    traces, executed = [], 0.0
    for x in inputs:
        out, counted = _forward(method, x, knobs, count_executed)
        executed += counted
        tr = out.trace[0]
        executed += sum(table[s.key] for s in tr if s.key in declared)
        traces.append(tr)
    stats = trace_stats(method, traces, int(inputs[0].shape[1]))
    return {
        **stats,
        "cost_table": table_rows,
        "gmacs_static_upper": upper_bound_gmacs(method, inputs[0]),
        "executed_gmacs_per_video": executed / len(inputs) if count_executed else None,
        "traces": traces,
    }


def profile(
    method: Method, inputs: Sequence[torch.Tensor], *, device: str | torch.device = "cpu",
    knobs: Mapping[str, Any] | None = None, min_queries: int = DEFAULT_SETTINGS.min_queries,
    min_duration_s: float = DEFAULT_SETTINGS.min_duration_s, max_duration_s: float = DEFAULT_SETTINGS.max_duration_s,
    offline: bool = DEFAULT_SETTINGS.offline, offline_batches: Sequence[int] = DEFAULT_SETTINGS.offline_batches,
    count_executed: bool = DEFAULT_SETTINGS.count_executed, energy: bool = DEFAULT_SETTINGS.energy,
) -> dict[str, Any]:
    """Cost table, per-video GMACs, executed MACs, single-stream latency, offline FPS, memory, energy of given clips.

    A lower-level helper (no dataset, no row): :func:`measure_cell` is the one
    measurement path that builds result rows.  Defaults are
    :class:`~evbench.harness.settings.MeasureSettings`'s.

    Args:
        method: The method (any backend: a torch module or one whose costed
            modules run in ONNX Runtime, see :mod:`evbench.harness.onnx_backend`).
        inputs: Batch-1 clips ``(1, T, ...)`` — real samples where available;
            adaptive methods' cost and latency depend on content, so queries
            cycle through them.
        device: Where to run.
        knobs: Operating point.
        min_queries: Latency queries at least.
        min_duration_s: Latency measurement lasts at least this long, s.
        max_duration_s: ...and at most this long, s.
        offline: Also measure offline throughput.
        offline_batches: Batch sizes tried for offline FPS.
        count_executed: See :func:`count_profile`.
        energy: Read the platform's energy counter (NVML, RAPL, Jetson rails)
            around the latency queries, when one is readable.

    Returns:
        A dict with ``cost_table`` (rows), ``gmacs_per_video``, ``gmacs_per_frame``,
        ``gmacs_static_upper``, ``executed_gmacs_per_video``, ``latency_ms``
        (``p50/p90/p99/mean`` + ``samples``), ``latency`` (every field of
        :class:`~evbench.harness.timing.LatencyStats`), ``fps`` (offline
        frames/s), ``fps_offline_batch``, ``peak_rss_mb``, ``peak_cuda_mb``,
        ``energy_j_per_clip`` (J, None when no counter is readable;
        ``energy_source`` says which), ``threads`` and the trace statistics.
    """
    dev = torch.device(device)
    method.eval().to(dev)
    xs = [x.to(dev) for x in inputs]
    knobs = dict(knobs or {})
    counted = count_profile(method, xs, knobs=knobs, count_executed=count_executed)
    counted.pop("traces")
    counted.pop("per_video_gmacs", None)
    settings = DEFAULT_SETTINGS.replace(source="measure.profile", min_queries=min_queries,
                                        min_duration_s=float(min_duration_s), max_duration_s=float(max_duration_s),
                                        offline=offline, offline_batches=list(offline_batches), energy=energy,
                                        breakdown=False, max_seconds=None)
    timed = _timed(method, xs, settings, device=dev, knobs=knobs, frames_used=counted["frames_used"])
    lat_d = timed["latency"]
    return {
        **counted,
        "latency_ms": {k: lat_d[k] for k in ("p50", "p90", "p99", "mean")} | {"samples": lat_d["samples_ms"]},
        "latency": lat_d,
        "fps": timed["fps"],
        "fps_offline_batch": timed["fps_offline_batch"],
        "offline": timed["offline"],
        "peak_rss_mb": timed["peak_rss_mb"],
        "peak_cuda_mb": timed["peak_cuda_mb"],
        "energy_j_per_clip": lat_d.get("energy_j_per_query"),
        "energy_source": lat_d.get("energy_source"),
        "threads": torch.get_num_threads(),
    }


def _timed(method: Method, xs: Sequence[torch.Tensor], settings: MeasureSettings, *, device: torch.device,
           knobs: Mapping[str, Any], frames_used: float, budget: Any = None, progress: bool = False) -> dict[str, Any]:
    """Single-stream latency (with memory and energy), latency breakdown and offline FPS of batch-1 clips ``xs``.

    Warm-up runs every forced path of the card (``card.force_options``) and
    the first clips, then the timed queries cycle through ``xs`` (MLPerf
    SingleStream; :func:`evbench.harness.timing.measure_latency`); then, when
    ``settings.breakdown``, a separate set of hooked queries
    (:func:`evbench.harness.breakdown.measure_breakdown`) and the no-op
    harness overhead; offline FPS tries ``settings.offline_batches``
    (:func:`evbench.harness.timing.measure_offline_fps`).  A ``budget``
    (:class:`evbench.harness.budget.Budget`) lowers the warm-up runs, caps
    the latency window, the breakdown queries and skips offline batches that
    would not fit, from a per-clip cost estimate (one un-timed query first).

    Returns:
        ``latency`` (:class:`~evbench.harness.timing.LatencyStats` as a dict,
        plus ``machine_state``/``noisy`` when the timing module records them),
        ``fps`` (frames/s or None), ``fps_offline_batch``, ``offline`` (the
        offline result dict or None), ``peak_rss_mb``, ``peak_cuda_mb`` (MiB),
        ``breakdown`` (dict or None), ``harness_overhead_ms``,
        ``latency_budget_limited``, ``fps_offline_skipped_batches`` and
        ``budget_notes``.
    """
    from evbench.harness.breakdown import harness_overhead_ms, make_query, measure_breakdown
    from evbench.harness.budget import Budget
    from evbench.harness.devices.energy import open_meter
    from evbench.harness.memory import PeakMemory
    from evbench.harness.timing import measure_latency, measure_offline_fps
    from tqdm.auto import tqdm

    budget = budget if budget is not None else Budget(None)
    query = make_query(method, xs, knobs)
    t0 = time.perf_counter()
    query()  # un-timed: the per-clip cost estimate the budget plans with
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    est_s = time.perf_counter() - t0

    warm = []
    for opt in method.card.force_options:
        warm.append(lambda o=opt: _forced(method, xs[0], knobs, o))
    clip_paths = budget.warmup_clips(min(len(xs), 4), len(warm) + 1, est_s)  # >= 1; fewer when over budget
    for x in xs[:clip_paths]:
        warm.append(lambda x=x: _forced(method, x, knobs, knobs.get("force")))
    warmup_runs = budget.warmup_runs(settings.warmup_runs, len(warm) + 1, est_s)
    n_reserved = min(3, settings.breakdown_queries) if settings.breakdown else 0  # a minimal breakdown fits
    min_d, max_d, capped = budget.latency_window(
        settings.min_duration_s, settings.max_duration_s,
        reserve_s=(warmup_runs * (len(warm) + 1) + n_reserved) * est_s)
    name = method.card.name
    bar = tqdm(total=settings.min_queries, desc=f"latency {name}", disable=not progress, leave=False)
    meter = open_meter(str(device)) if settings.energy else None
    with PeakMemory(device=device, sample_with_hwm=False) as mem:  # no sampler thread beside the timed queries
        lat = measure_latency(query, device=device, warmup=warm, warmup_runs=warmup_runs,
                              min_queries=settings.min_queries, min_duration_s=min_d,
                              max_duration_s=max_d, energy_meter=meter,
                              on_query=(lambda n: bar.update(1)) if progress else None)
    bar.close()
    limited = bool(capped and lat.n < settings.min_queries)
    query_s = lat.mean / 1000.0
    breakdown, overhead = None, None
    if settings.breakdown:
        n_bd = budget.breakdown_queries(min(settings.breakdown_queries, settings.min_queries), query_s)
        if n_bd >= 1:
            with tqdm(total=1, desc=f"breakdown {name} ({n_bd} hooked queries)", disable=not progress,
                      leave=False) as b2:
                breakdown = measure_breakdown(method, xs, knobs=knobs, device=device, queries=n_bd)
                overhead = harness_overhead_ms(xs, device=device)
                b2.update(1)
    fps, skipped = None, None
    if settings.offline:
        def run_batch(b: int) -> None:
            batch = torch.cat([xs[i % len(xs)] for i in range(b)])
            with torch.inference_mode():
                method(batch, knobs=knobs)

        off_min_s = min(1.0, settings.min_duration_s)
        kept, skipped = budget.offline_batches(settings.offline_batches, query_s, off_min_s)
        if kept:
            with tqdm(total=len(kept), desc=f"offline {name}", disable=not progress, leave=False) as b3:
                fps = measure_offline_fps(run_batch, frames_per_item=max(1, round(frames_used)), device=device,
                                          batch_sizes=kept, min_duration_s=off_min_s,
                                          on_batch=lambda b: b3.update(1))
    return {"latency": lat.to_dict(), "fps": fps["fps"] if fps else None,
            "fps_offline_batch": fps["best_batch"] if fps else None, "offline": fps,
            "peak_rss_mb": mem.peak_rss_mb, "peak_cuda_mb": mem.peak_cuda_mb,
            "breakdown": breakdown, "harness_overhead_ms": overhead, "latency_budget_limited": limited,
            "fps_offline_skipped_batches": skipped if settings.offline else None,
            "budget_notes": dict(budget.notes) if budget.limited else None}


def _forced(method: Method, x: torch.Tensor, knobs: Mapping[str, Any], force: Any) -> None:
    k = dict(knobs)
    if force is not None:
        k["force"] = force
    with torch.inference_mode():
        method(x, knobs=k)


# --------------------------------------------------------------------------- the one measurement path

#: How the counted and accuracy columns of a measured row were obtained (stored in ``conventions``).
CONVENTIONS = {
    "gmacs": "multiply-accumulates x 1e-9 (fvcore cost table, summed over each video's trace)",
    "executed": "FlopCounterMode/2 + fused-RNN/BN/pool formulas, plus declared input costs",
    "accuracy": "top-1/top-5 over test videos, 95 % bootstrap (1000 resamples, seed 0); "
                "mAP = mean per-class AP of softmax scores",
}


def stream_fps(frames_used: float | None, frames_total: int | None, mean_ms: float | None) -> dict[str, float | None]:
    """Honest single-stream FPS: frames actually processed vs frames the clip spans, per mean latency (ms).

    Early-exit papers often report the second as if it were the first.

    Returns:
        ``fps_stream_processed`` and ``fps_stream_covered`` (frames/s), None
        where an input is missing or the latency is not positive.
    """
    ok = mean_ms is not None and mean_ms > 0
    return {"fps_stream_processed": 1000.0 * frames_used / mean_ms if ok and frames_used is not None else None,
            "fps_stream_covered": 1000.0 * frames_total / mean_ms if ok and frames_total is not None else None}


def decode_times(dataset: Any) -> list[dict[str, Any]]:
    """Decode every clip of a pixel dataset once, bypassing the frame cache, timing each (memoised on ``dataset``).

    Returns:
        One ``{"id", "path", "frames", "decode_ms"}`` per file (``"error"`` instead
        of ``decode_ms`` for a file that fails), ``decode_ms`` in ms of PyAV /
        JPEG decoding of the sampled frames only (no resize or normalisation).
    """
    from evbench.harness.data import decode_frames
    from evbench.harness.timing import Stopwatch

    memo = getattr(dataset, "_evbench_decode_times", None)
    if memo is not None:
        return memo
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(dataset.entries):
        rec: dict[str, Any] = {"id": entry.id, "path": entry.path}
        try:
            idx = dataset.indices(i)
            with Stopwatch() as sw:
                decode_frames(entry.path, idx)
            rec.update(frames=len(idx), decode_ms=sw.ms)
        except Exception as exc:  # noqa: BLE001 — a bad file is reported, not fatal
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
    try:
        dataset._evbench_decode_times = out
    except AttributeError:  # a dataset without a __dict__: no memo
        pass
    return out


def ptflops_crosscheck(method: Method) -> list[dict[str, Any]]:
    """fvcore vs ptflops (both backends, explicit) on every static single-input module of ``method``.

    Returns:
        One ``{"module", "input_shape", "fvcore", "ptflops_pytorch",
        "ptflops_aten", "rel_diff_pytorch", "rel_diff_aten"}`` per static
        cost entry (GMACs; relative differences as fractions).
    """
    from evbench.harness.costs import ptflops_gmacs

    table = cost_table(method)
    out = []
    for entry in method.cost_entries():
        if entry.declared_gmacs is not None or entry.make_inputs is not None:
            continue
        sub = method.get_submodule(entry.module)
        pt = ptflops_gmacs(sub, entry.input_shape, backend="pytorch")
        at = ptflops_gmacs(sub, entry.input_shape, backend="aten")
        fv = table[entry.key]
        out.append({"module": entry.module, "input_shape": list(entry.input_shape), "fvcore": fv,
                    "ptflops_pytorch": pt, "ptflops_aten": at,
                    "rel_diff_pytorch": (pt - fv) / fv if fv else None,
                    "rel_diff_aten": (at - fv) / fv if fv else None})
    return out


class _Head:
    """The first ``n`` items of a dataset, every other attribute delegated to it (``MeasureSettings.max_clips``)."""

    def __init__(self, dataset: Any, n: int) -> None:
        self._ds = dataset
        self._n = min(int(n), len(dataset))
        if hasattr(dataset, "entries"):
            self.entries = list(dataset.entries)[: self._n]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= int(i) < self._n:
            raise IndexError(f"index {i} out of range for {self._n} clips")
        return self._ds[int(i)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)


def _loadable(dataset: Any, ok_ids: Sequence[str], k: int) -> list[int]:
    """Indices of ``k`` clips that loaded during evaluation, evenly spaced over the dataset's order.

    A dataset in class order (UCF101 lists, the generated dataset) would give
    ``k`` clips of its first class from the first ``k`` indices; an adaptive
    method's latency depends on content, so the latency queries cycle through
    clips spread over the whole test split instead: the loaded clip at
    position ``round(j · n / k)`` for ``j < k`` (``n`` loaded clips; all of them
    when ``n <= k``).  ``[0]`` when none is known.
    """
    entries = getattr(dataset, "entries", None)
    if entries is None:
        ok = list(range(len(dataset)))
    else:
        ids = set(ok_ids)
        ok = [i for i, entry in enumerate(entries) if entry.id in ids]
    if not ok:
        return [0]
    return [ok[i] for i in _spread(len(ok), k)]


def _modeled_fields(method: Method, traces: list, device: str, backend: str, frames_used: float | None,
                    frames_total: int | None) -> dict[str, Any]:
    """Latency columns of a modeled device from every evaluated video's trace (``modeled: true``).

    Accuracy and GMACs are device-independent and were measured on the CPU;
    only the latency is the roofline model's (:func:`evbench.harness.devices.modeled.model_latency`).
    """
    from evbench.harness.devices.modeled import model_latency

    mod = model_latency(method, traces, device=device, backend=backend)
    lat = mod["latency_ms"]
    return {
        "latency_ms_p50": lat["p50"], "latency_ms_p90": lat["p90"], "latency_ms_p99": lat["p99"],
        "latency_ms_mean": lat["mean"], "latency_samples_ms": lat["samples"], "latency_clips": len(traces),
        "latency_convention": mod["modeled_note"], "backend": mod["backend"],
        **stream_fps(frames_used, frames_total, lat["mean"]),
        "modeled_device": mod["device_profile"],
        "modeled_calibration": {k: v for k, v in mod["calibration"].items() if k != "points"},
        "modeled_validation": mod["validation"],
    }


def _accuracy_fields(ev: EvalResult, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy columns (:func:`evbench.harness.metrics.accuracy_report`) under their row names."""
    from evbench.harness.metrics import accuracy_report

    rep = accuracy_report(ev.logits, ev.labels, list(class_names))
    rep["bootstrap_seed"] = rep.pop("seed")
    rep["accuracy_convention"] = rep.pop("convention")
    return rep


def measure_cell(
    method: Method, dataset: Sequence[Any], settings: MeasureSettings = DEFAULT_SETTINGS, *,
    knobs: Mapping[str, Any] | None = None, device: str = "cpu", backend: str = "torch",
    providers: Sequence[str] | None = None, bundle_dir: str | None = None, trained: bool = False,
    progress: bool = False, eval_memo: EvalMemoStore | None = None,
) -> CellResult:
    """Measure one method at one operating point on one dataset: the one path every result row takes.

    In order: evaluation over ``dataset`` (every clip, or the first
    ``settings.max_clips``; per-video traces, logits, decisions, decode and
    pre-process times), accuracy when ``trained``, trace statistics (GMACs
    per video / frame / slot, role split, frames used, exit and decision
    histograms), the executed-MAC cross-check, the cost table, the static
    upper bound, optionally the ptflops cross-check and per-file decode
    times; then — when ``settings.latency`` — batch-1 single-stream latency,
    offline FPS, peak memory and energy on ``settings.latency_clips`` clips
    that loaded, evenly spaced over the test split (:func:`_loadable`), or,
    on a modeled device (``*-modeled``), the roofline latency of every
    evaluated trace.  With ``backend="onnxruntime"`` every
    costed module runs in ONNX Runtime (control flow in Python), the executed
    MACs are counted on the torch forward with the same inputs, and
    ``max_abs_logit_diff``/``decisions_match`` compare it to torch eager;
    with a GPU execution provider first (CUDA, TensorRT) the row's
    ``backend`` names it (``onnxruntime-cuda``, ``onnxruntime-tensorrt``).
    ``settings.precision`` fp16/bf16 runs every torch forward here —
    evaluation, upper bound, latency, breakdown, offline — under
    ``torch.autocast`` (:mod:`evbench.harness.precision`).

    Args:
        method: A torch method (built, weights loaded).  It is moved to the
            run device and set to eval mode.
        dataset: Items with ``.x`` (``(T, 3, S, S)`` pixels or ``(T, D)``
            features), ``.label``, ``.id``, ``.path``, ``.decode_ms``,
            ``.preprocess_ms``; attributes ``name``, ``class_names``,
            ``synthetic``, ``note`` (e.g. an opened dataset, or
            :class:`evbench.harness.data.RandomClips` for random inputs).
        settings: How to measure.
        knobs: Operating point (validated by the method).
        device: ``"cpu"``, ``"cuda[:N]"`` or a modeled device (then the torch
            work runs on the CPU and ``modeled`` is True).
        backend: ``"torch"`` (eager) or ``"onnxruntime"``.
        providers: ONNX Runtime execution providers (``None``: CUDA then CPU
            on a ``cuda`` device, else CPU).
        bundle_dir: ONNX Runtime: keep the exported modules in this directory.
        trained: Whether the weights are trained on this data's train split;
            accuracy is measured only then (untrained accuracy is chance).
        progress: Progress bar during evaluation.
        eval_memo: Serve the evaluation's backbone slots the outputs earlier
            cells of the run stored (:class:`evbench.harness.eval_memo.EvalMemoStore`;
            torch backend only, freed before the timed phase); ``None``: compute every call.

    Returns:
        The :class:`~evbench.harness.row.CellResult` with every identity,
        counted, accuracy and timing field this measurement produces, the
        environment fingerprint, ``data_errors`` (clips that failed to load,
        ``stage="eval"``) and ``samples`` (per-video table); run-level fields
        (cell id, suite, training, timestamps) are the caller's.

    Raises:
        RuntimeError: No clip of ``dataset`` could be evaluated.
        evbench.harness.api.KnobError: A knob the method does not declare.
        ValueError: Unknown backend or modeled device; NaN logits.
        evbench.harness.settings.SettingsError: ``settings.precision`` the
            device or backend cannot run (fp16 off CUDA, a lower precision on
            ONNX Runtime without TensorRT; :func:`evbench.harness.precision.check_precision`).
    """
    from evbench.harness.budget import Budget
    from evbench.harness.devices.modeled import is_modeled_device
    from evbench.harness.env import fingerprint
    from evbench.harness.precision import autocast, check_precision, precision_convention

    budget = Budget(settings.max_seconds)  # settings.max_seconds: the whole measurement, from here
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend {backend!r}: choose from torch, onnxruntime")
    knobs = dict(knobs or {})
    method.resolve_knobs(knobs)
    card = method.card
    modeled = is_modeled_device(device)
    run_device = "cpu" if modeled else device
    if providers is None and backend == "onnxruntime" and str(run_device).startswith("cuda"):
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # a cuda cell runs ONNX Runtime on the GPU
    precision = settings.precision
    check_precision(precision, device, backend=backend, providers=providers, source="precision")
    # fp16/bf16: autocast around every torch forward below; ONNX Runtime's TensorRT fp16 is a provider option
    amp = lambda: autocast(precision if backend == "torch" else "fp32", run_device)  # noqa: E731
    method.to(run_device).eval()
    ds = _Head(dataset, settings.max_clips) if settings.max_clips is not None else dataset
    class_names = list(getattr(dataset, "class_names", []))
    res = CellResult(
        method=card.name, title=card.title, paper=card.paper, doi=card.doi, input_kind=card.input_kind,
        action_space=card.action_space or None,
        knobs=knobs, dataset=getattr(dataset, "name", None), dataset_synthetic=bool(getattr(dataset, "synthetic", False)),
        dataset_note=getattr(dataset, "note", "") or "", device=device, backend=backend, precision=precision,
        modeled=modeled, resolution=card.resolution, measure_settings=settings.to_dict(), trained=bool(trained),
        inference_settings=dict(getattr(method, "inference_settings", None) or {}) or None,
    )
    measured, on_ort = method, backend == "onnxruntime" and not modeled
    if on_ort:
        from evbench.harness.onnx_backend import backend_info, to_onnxruntime

        measured = to_onnxruntime(method.cpu(), providers=list(providers) if providers else None,
                                  bundle_dir=bundle_dir, fp16=precision == "fp16")
        res.backend_detail = backend_info(measured)  # "onnxruntime-cpu", providers, versions (also env.backend)
        if res.backend_detail["providers"][0] != "CPUExecutionProvider":  # a GPU provider names the row's backend
            res.backend = res.backend_detail["backend"]  # "onnxruntime-cuda" / "onnxruntime-tensorrt"

    cost_table(measured)  # cached on the method: fvcore's jit trace cannot run under autocast (cast weights)
    low = backend == "torch" and precision != "fp32"  # FlopCounterMode cannot run under autocast: counted apart
    serving = eval_memo.serving(measured) if eval_memo is not None and not on_ort else contextlib.nullcontext()
    with amp(), serving as memo:  # the memo is freed here, before the timed phase
        ev = evaluate(measured, ds, device=run_device, knobs=knobs, batch_size=settings.eval_batch_size,
                      count_executed=settings.count_executed and not on_ort and not low,
                      count_clips=settings.count_clips, progress=progress)
    res.eval_memo = memo.stats.to_dict() if memo is not None else None
    n = len(ev.samples)
    res.num_videos = n
    res.data_errors = [{**e, "stage": "eval"} for e in ev.errors]
    if trained:
        for k, v in _accuracy_fields(ev, class_names).items():
            setattr(res, k, v)
    else:
        res.accuracy_note = ("not measured: random inputs with placeholder labels"
                             if getattr(dataset, "name", "") == "random" else
                             "not measured: untrained weights (no training split given), accuracy would be chance")
    stats = trace_stats(measured, ev.traces, ev.frames_given)
    for k, v in stats.items():
        if k != "per_video_gmacs":
            setattr(res, k, v)
    for k, v in decision_histograms(ev.decisions).items():
        setattr(res, k, v)
    counted, how = ev, None  # the evaluation whose forwards were counted, and how, if not this one
    if ev.executed_gmacs_total is None and settings.count_executed and (on_ort or low):
        counted = evaluate(method if on_ort else measured, ds, device="cpu" if on_ort else run_device, knobs=knobs,
                           batch_size=settings.eval_batch_size, count_executed=True, count_clips=settings.count_clips)
        how = ("counted on the torch forward with the same clips and knobs "
               "(ONNX Runtime kernels run outside PyTorch's dispatcher)" if on_ort else
               f"counted on an fp32 forward of the same clips and knobs (PyTorch's FlopCounterMode does not run "
               f"under autocast); an adaptive method's fp32 decisions may differ from its {precision} ones")
    if counted.executed_gmacs_total is not None:
        k = max(counted.executed_clips, 1)
        res.executed_gmacs_per_video = counted.executed_gmacs_total / k
        res.executed_gmacs_clips = counted.executed_clips
        subset = (f"counted on {counted.executed_clips} of {len(counted.samples)} test clips (evaluation batches "
                  f"evenly spaced over the split, count_clips = {settings.count_clips}); their trace GMACs/video: "
                  f"{counted.executed_trace_gmacs_total / k:.4f}"
                  if counted.executed_clips < len(counted.samples) else None)
        res.executed_gmacs_note = "; ".join(part for part in (how, subset) if part) or None
    res.decode_ms_mean = float(ev.samples["decode_ms"].mean())
    res.preprocess_ms_mean = float(ev.samples["preprocess_ms"].mean())
    res.cache_hit_fraction = float(ev.samples["cached"].mean())
    if settings.per_file and hasattr(dataset, "indices") and hasattr(dataset, "entries"):
        res.per_file = decode_times(dataset)
    res.cost_table = cost_table_rows(measured)
    clip_idx = _loadable(ds, ev.samples["id"].tolist(), settings.latency_clips)
    clips = [ds[i].x[None] for i in clip_idx]
    with amp():
        res.gmacs_static_upper = upper_bound_gmacs(measured, clips[0].to(run_device))
    from evbench.harness.oracle import (
        oracle_fields,  # generated dataset only; elsewhere None + the reason
    )

    for k, v in oracle_fields(method, dataset, ev.samples["id"].tolist(), ev.traces, clips[0],
                              res.gmacs_per_video).items():
        setattr(res, k, v)
    if settings.crosscheck:
        res.ptflops_crosscheck = ptflops_crosscheck(method)
    if on_ort:
        from evbench.harness.onnx_backend import max_abs_logit_diff

        # both on the run device: on cuda the copy's non-exported parts (parameters, glue) live there
        check = max_abs_logit_diff(method.to(run_device), measured, [c.to(run_device) for c in clips], knobs=knobs)
        res.max_abs_logit_diff = check["max_abs_logit_diff"]
        res.decisions_match = check["decisions_match"]
        res.logit_diff_clips = check["clips"]
        res.mismatched_clips = check["mismatched_clips"]

    if settings.latency and modeled:
        for k, v in _modeled_fields(measured, ev.traces, device, backend, res.frames_used, res.frames_total).items():
            setattr(res, k, v)
    elif settings.latency:
        dev = torch.device(run_device)
        xs = [c.to(dev) for c in clips]
        res.timed_start = time.time()
        with amp():  # one autocast region for the timed phases (weights cast once, not per query)
            timed = _timed(measured, xs, settings, device=dev, knobs=knobs, frames_used=res.frames_used or 1.0,
                           budget=budget, progress=progress)
        res.timed_end = time.time()
        lat = timed["latency"]
        res.latency_ms_p50, res.latency_ms_p90, res.latency_ms_p99 = lat["p50"], lat["p90"], lat["p99"]
        res.latency_ms_mean, res.latency_ms_std, res.latency_queries = lat["mean"], lat["std"], lat["n"]
        res.latency_samples_ms, res.latency_convention = lat["samples_ms"], lat["convention"]
        res.latency_stopped_by, res.latency_clips = lat.get("stopped_by"), len(clips)
        res.noisy, res.machine_state = lat.get("noisy"), lat.get("machine_state")
        res.fps_offline, res.fps_offline_batch = timed["fps"], timed["fps_offline_batch"]
        res.peak_rss_mb, res.peak_cuda_mb = timed["peak_rss_mb"], timed["peak_cuda_mb"]
        res.energy_j_per_clip, res.energy_source = lat.get("energy_j_per_query"), lat.get("energy_source")
        energy = lat.get("energy_detail") or {}  # the meter's reading (NVML counter / sampled power / RAPL)
        res.energy_interval_s, res.energy_samples = energy.get("interval_s"), energy.get("samples")
        res.threads = torch.get_num_threads()
        bd = timed["breakdown"] or {}  # harness/breakdown.py: hooked queries after the latency window
        res.latency_breakdown_ms, res.latency_breakdown_mean_ms = bd.get("latency_breakdown_ms"), bd.get(
            "latency_breakdown_mean_ms")
        res.latency_breakdown_queries, res.harness_overhead_ms = bd.get("latency_breakdown_queries"), timed[
            "harness_overhead_ms"]
        res.latency_budget_limited, res.budget_notes = timed["latency_budget_limited"], timed["budget_notes"]
        res.fps_offline_skipped_batches = timed["fps_offline_skipped_batches"]
        for k, v in stream_fps(res.frames_used, res.frames_total, lat["mean"]).items():
            setattr(res, k, v)
    res.conventions = {**CONVENTIONS, "precision": precision_convention(precision, run_device, backend)}
    env_backend = (res.backend_detail or {}).get("backend", backend)
    res.env = fingerprint(device=run_device, backend=env_backend, precision=precision)
    res.samples = ev.samples
    return res
