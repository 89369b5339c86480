"""Measurements of one method: evaluation over a dataset and the cost/latency profile.

This module joins a :class:`~evbench.harness.api.Method` to the instruments
(:mod:`evbench.harness.costs`, :mod:`evbench.harness.timing`, :mod:`evbench.harness.memory`,
:mod:`evbench.harness.metrics`) through the method interface only — no method is
known by name.  Each function returns plain dicts whose keys are the column
names of :data:`evbench.harness.results.UNITS`.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from evbench.harness.training import iterate_batches

__all__ = ["EvalResult", "evaluate", "trace_stats", "count_profile", "profile", "frames_used"]


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


def evaluate(
    method: Method, dataset: Sequence[Any], *, device: str | torch.device = "cpu", knobs: Mapping[str, Any] | None = None,
    batch_size: int = 8, count_executed: bool = True, progress: bool = False,
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
        progress: tqdm bar.

    Returns:
        :class:`EvalResult`; clips that fail to load are listed in ``errors``.

    Raises:
        RuntimeError: If no clip could be evaluated.
    """
    from tqdm.auto import tqdm

    method.eval().to(device)
    table = cost_table(method)
    declared = _declared_keys(method)
    errors: list[dict[str, str]] = []
    logits_all, labels_all, traces, decisions, rows = [], [], [], [], []
    executed = 0.0
    frames_given = 0
    batches = iterate_batches(dataset, range(len(dataset)), batch_size, errors=errors)
    total = (len(dataset) + batch_size - 1) // batch_size
    for x, y, samples in tqdm(batches, total=total, desc=f"eval {method.card.name}", disable=not progress, leave=False):
        x = x.to(device)
        frames_given = int(x.shape[1])
        out, counted = _forward(method, x, knobs, count_executed)
        executed += counted
        logits = out.logits.float().cpu().numpy()
        dec = out.decisions or [{} for _ in samples]
        for i, s in enumerate(samples):
            tr = out.trace[i]
            g = trace_gmacs(tr, table)
            executed += sum(table[st.key] for st in tr if st.key in declared) if count_executed else 0.0
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
        frames_given=frames_given,
    )


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
    knobs: Mapping[str, Any] | None = None, min_queries: int = 64, min_duration_s: float = 1.0,
    max_duration_s: float = 120.0, offline: bool = True, offline_batches: Sequence[int] = (1, 2, 4, 8, 16),
    count_executed: bool = True, energy: bool = True,
) -> dict[str, Any]:
    """Cost table, per-video GMACs, executed MACs, single-stream latency, offline FPS, memory, energy.

    Args:
        method: The method (any backend: a torch module or one whose costed
            modules run in ONNX Runtime, see :mod:`evbench.harness.onnx_backend`).
        inputs: Batch-1 clips ``(1, T, ...)`` — real samples where available;
            adaptive methods' cost and latency depend on content, so queries
            cycle through them.
        device: Where to run.
        knobs: Operating point.
        min_queries: Latency queries at least (MLPerf SingleStream uses ≥ 1024
            on real systems; 64 is the floor here).
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
        (``p50/p90/p99/mean`` + ``samples``), ``fps`` (offline frames/s),
        ``peak_rss_mb``, ``peak_cuda_mb``, ``energy_j_per_clip`` (J, None when
        no counter is readable; ``energy_source`` says which) and the trace
        statistics.
    """
    from evbench.harness.devices.energy import open_meter
    from evbench.harness.memory import PeakMemory
    from evbench.harness.timing import measure_latency, measure_offline_fps

    dev = torch.device(device)
    method.eval().to(dev)
    xs = [x.to(dev) for x in inputs]
    knobs = dict(knobs or {})
    counted = count_profile(method, xs, knobs=knobs, count_executed=count_executed)
    counted.pop("traces")
    counted.pop("per_video_gmacs", None)

    cycle = itertools.cycle(xs)

    def query() -> None:
        with torch.inference_mode():
            method(next(cycle), knobs=knobs)

    warm = []
    for opt in method.card.force_options:
        warm.append(lambda o=opt: _forced(method, xs[0], knobs, o))
    for x in xs[: min(len(xs), 4)]:
        warm.append(lambda x=x: _forced(method, x, knobs, knobs.get("force")))
    meter = open_meter(str(dev)) if energy else None
    with PeakMemory(device=dev) as mem:
        lat = measure_latency(query, device=dev, warmup=warm, min_queries=min_queries,
                              min_duration_s=min_duration_s, max_duration_s=max_duration_s, energy_meter=meter)
    fps = None
    if offline:
        def run_batch(b: int) -> None:
            batch = torch.cat([xs[i % len(xs)] for i in range(b)])
            with torch.inference_mode():
                method(batch, knobs=knobs)

        fps = measure_offline_fps(run_batch, frames_per_item=max(1, round(counted["frames_used"])), device=dev,
                                  batch_sizes=offline_batches, min_duration_s=min(1.0, min_duration_s))
    lat_d = lat.to_dict()
    return {
        **counted,
        "latency_ms": {k: lat_d[k] for k in ("p50", "p90", "p99", "mean")} | {"samples": lat_d["samples_ms"]},
        "latency": lat_d,
        "fps": fps["fps"] if fps else None,
        "fps_offline_batch": fps["best_batch"] if fps else None,
        "offline": fps,
        "peak_rss_mb": mem.peak_rss_mb,
        "peak_cuda_mb": mem.peak_cuda_mb,
        "energy_j_per_clip": lat_d.get("energy_j_per_query"),
        "energy_source": lat_d.get("energy_source"),
        "threads": torch.get_num_threads(),
    }


def _forced(method: Method, x: torch.Tensor, knobs: Mapping[str, Any], force: Any) -> None:
    k = dict(knobs)
    if force is not None:
        k["force"] = force
    with torch.inference_mode():
        method(x, knobs=k)
