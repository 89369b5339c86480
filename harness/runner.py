"""The runner: measure every cell of a run, append one row per finished cell.

For each :class:`~evbench.harness.suites.Cell` not already finished (``--resume``):

1. build the method with ``create_method`` (the runner knows no method by name);
2. train it through its ``training_loss`` on the *train* split, or reuse the
   checkpoint of a sibling cell with the same build (knob sweeps share one);
3. evaluate it on the *test* split (accuracy, per-video GMACs from traces, the
   executed-MAC cross-check, decisions, decode/pre-process times);
4. profile it batch-1 on real test clips (single-stream latency, offline FPS,
   peak memory);
5. write the per-video Parquet, then append the row atomically.

A cell that fails (bad checkpoint, NaN logits, out of memory, no readable clip)
is recorded with ``status="failed"`` and its error; the run goes on.  Cells run
one at a time through an executor with the ``concurrent.futures`` shape
(:class:`SerialExecutor` by default): timed cells need the device to
themselves.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evbench.harness.api import Method
from evbench.harness.costs import cost_table_rows
from evbench.harness.devices.modeled import is_modeled_device
from evbench.harness.env import fingerprint
from evbench.harness.measure import decision_histograms, evaluate, profile, trace_stats
from evbench.harness.metrics import accuracy_report
from evbench.harness.registry import create_method
from evbench.harness.results import ResultStore
from evbench.harness.suites import Cell
from evbench.harness.training import TrainSpec, load_checkpoint, save_checkpoint, train_method

__all__ = ["SerialExecutor", "RunContext", "measure_cell", "run_cells"]

DEFAULT_MEASURE = {
    "latency": True, "min_queries": 64, "min_duration_s": 1.0, "max_duration_s": 120.0,
    "offline": True, "offline_batches": [1, 4, 16], "latency_clips": 8, "eval_batch_size": 8,
    "count_executed": True, "per_file": False,
}


class SerialExecutor(Executor):
    """``concurrent.futures.Executor`` that runs each task at ``submit`` time, in this process.

    The default executor: latency cells need exclusive use of the device, and a
    2-core CPU has nothing to spare.  Any ``Executor`` (a process pool, Ray's or
    submitit's) can be passed to :func:`run_cells` instead.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # noqa: D102
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 — delivered through the future
            fut.set_exception(exc)
        return fut


@dataclass
class RunContext:
    """Shared state of one run.

    Attributes:
        out: Run directory.
        cache_dir: Decoded-frame cache and generated datasets.
        progress: Show progress bars.
        gmacs_per_frame: Declared GMACs of one input feature frame, when the
            feature file does not carry it (``--gmacs-per-frame``).
        datasets: In-process memo of opened datasets.
    """

    out: Path
    cache_dir: str | None = None
    progress: bool = False
    gmacs_per_frame: float | None = None
    datasets: dict[tuple, Any] = field(default_factory=dict)

    def decode_times(self, dataset: Any, source: str) -> list[dict[str, Any]]:
        """Per-file decode times of ``dataset`` (memoised per source and sampling; see :func:`decode_times`)."""
        key = (source, getattr(dataset, "frames", 0), "decode")
        if key not in self.datasets:
            self.datasets[key] = decode_times(dataset)
        return self.datasets[key]

    def dataset(self, source: str, *, split: str, frames: int, size: int, train: bool) -> Any:
        """Open (memoised) ``source`` for ``split`` sampled at ``frames`` × ``size`` px."""
        from evbench.harness.data import open_dataset

        key = (source, split, frames, size, train)
        if source.endswith(".npz"):
            key = (source, split, 0, 0, train)
        if key not in self.datasets:
            self.datasets[key] = open_dataset(source, split=split, frames=max(frames, 1), size=max(size, 1),
                                              train=train, cache_dir=self.cache_dir,
                                              gmacs_per_frame=self.gmacs_per_frame)
        return self.datasets[key]


def decode_times(dataset: Any) -> list[dict[str, Any]]:
    """Decode every clip of a pixel dataset once, bypassing the frame cache, timing each.

    Returns:
        One ``{"id", "path", "frames", "decode_ms"}`` per file (``"error"`` instead
        of ``decode_ms`` for a file that fails), ``decode_ms`` in ms of PyAV /
        JPEG decoding of the sampled frames only (no resize or normalisation).
    """
    from evbench.harness.data import decode_frames
    from evbench.harness.timing import Stopwatch

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
    return out


def _build(cell: Cell, num_classes: int, dataset: Any) -> tuple[Method, dict[str, Any]]:
    """Build the cell's method; feature methods take D and the per-frame input cost from the data.

    Returns:
        The method and the overrides actually applied.
    """
    overrides = dict(cell.overrides)
    method = create_method(cell.method, config=cell.config, num_classes=num_classes, **overrides)
    if method.card.input_kind == "features" and len(dataset):
        dim = int(dataset[0].x.shape[-1])
        data_cost = getattr(dataset, "gmacs_per_frame", None)
        extra = {"feature_dim": dim} if dim != method.card.feature_dim else {}
        if data_cost is not None:
            extra["gmacs_per_frame"] = float(data_cost)
        if extra:
            overrides = {**overrides, **extra}
            method = create_method(cell.method, config=cell.config, num_classes=num_classes, **overrides)
    return method, overrides


def _trained(cell: Cell, method: Method, ctx: RunContext, class_names: Sequence[str]) -> tuple[dict[str, Any], list]:
    """Train (or load the sibling's checkpoint); returns training info and skipped-clip errors."""
    ckpt = ctx.out / "checkpoints" / f"{cell.build_id}.pt"
    if ckpt.exists():
        payload = load_checkpoint(ckpt)
        if list(payload["class_names"]) != list(class_names):
            raise ValueError(f"{ckpt}: classes differ from the test data's")
        method.load_state_dict(payload["state_dict"])
        return {"trained": True, "train_s": 0.0, "checkpoint": str(ckpt), "train_reused": True,
                "train_seconds_original": payload.get("train_seconds")}, []
    spec = TrainSpec(**cell.train)
    train_ds = ctx.dataset(cell.train_data, split=cell.train_split, frames=method.card.frames,
                           size=method.card.resolution, train=True)
    if list(train_ds.class_names) != list(class_names):
        raise ValueError(f"train data {cell.train_data} has classes {train_ds.class_names[:5]}... "
                         f"but test data has {list(class_names)[:5]}...")
    report = train_method(method, train_ds, spec, device=_run_device(cell), progress=ctx.progress)
    save_checkpoint(ckpt, method, build={"method": cell.method, "config": cell.config,
                                         "num_classes": len(class_names), "overrides": cell.overrides},
                    train={**spec.to_dict(), "data": cell.train_data, "split": cell.train_split},
                    class_names=class_names, report=report)
    return {"trained": True, "train_s": report.seconds, "checkpoint": str(ckpt), "train_reused": False,
            "train_clips": len(train_ds), "train_logs": report.logs[-1:] if report.logs else []}, report.skipped


def measure_cell(cell: Cell, ctx: RunContext) -> dict[str, Any]:
    """Measure one cell; returns its result row (``status="ok"``).

    Raises:
        Exception: Whatever failed; :func:`run_cells` records it as a failed row.
    """
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m = {**DEFAULT_MEASURE, **cell.measure}
    probe = ctx.dataset(cell.test_data, split=cell.test_split, frames=1, size=1, train=False)
    class_names = list(probe.class_names)
    method, applied = _build(cell, len(class_names), probe)
    card = method.card
    test_ds = ctx.dataset(cell.test_data, split=cell.test_split, frames=card.frames, size=card.resolution, train=False)
    row: dict[str, Any] = {
        "cell_id": cell.id, "suite": cell.suite, "method": cell.method, "title": card.title, "config": cell.config,
        "overrides": cell.overrides, "knobs": cell.knobs, "label": cell.label, "paper": card.paper, "doi": card.doi,
        "input_kind": card.input_kind, "dataset": test_ds.name, "dataset_source": cell.test_data,
        "dataset_split": cell.test_split, "dataset_synthetic": bool(test_ds.synthetic),
        "dataset_note": getattr(test_ds, "note", ""), "device": cell.device, "backend": cell.backend,
        "precision": "fp32", "modeled": False, "frames_total": card.frames, "resolution": card.resolution,
        "applied_overrides": applied,
    }
    errors: list[dict[str, str]] = []
    if cell.train is not None and cell.train_data is not None:
        info, skipped = _trained(cell, method, ctx, class_names)
        errors += [{**e, "stage": "train"} for e in skipped]
        row.update({k: v for k, v in info.items() if k != "train_logs"})
        row["train_last_epoch"] = info.get("train_logs")
        row["train_data"] = cell.train_data
    else:
        row.update({"trained": False, "train_s": 0.0})
    run_device, modeled = _run_device(cell), is_modeled_device(cell.device)
    row["modeled"] = modeled
    method.to(run_device).eval()
    torch_method, on_ort = method, cell.backend == "onnxruntime" and not modeled
    if on_ort:
        from evbench.harness.onnx_backend import backend_info, to_onnxruntime

        method = to_onnxruntime(method.cpu())
        row["backend_detail"] = backend_info(method)

    ev = evaluate(method, test_ds, device=run_device, knobs=cell.knobs, batch_size=int(m["eval_batch_size"]),
                  count_executed=bool(m["count_executed"]) and not on_ort, progress=ctx.progress)
    errors += [{**e, "stage": "eval"} for e in ev.errors]
    n = len(ev.samples)
    row["num_videos"] = n
    if row["trained"]:
        row.update(accuracy_report(ev.logits, ev.labels, class_names))
    else:
        row["accuracy_note"] = "not measured: untrained weights (no training split given), accuracy would be chance"
    stats = trace_stats(method, ev.traces, ev.frames_given)
    row.update({k: v for k, v in stats.items() if k not in ("per_video_gmacs",)})
    row.update(decision_histograms(ev.decisions))
    if ev.executed_gmacs_total is not None:
        row["executed_gmacs_per_video"] = ev.executed_gmacs_total / n
    row["decode_ms_mean"] = float(ev.samples["decode_ms"].mean())
    row["preprocess_ms_mean"] = float(ev.samples["preprocess_ms"].mean())
    row["cache_hit_fraction"] = float(ev.samples["cached"].mean())
    if m["per_file"] and hasattr(test_ds, "indices"):
        row["per_file"] = ctx.decode_times(test_ds, cell.test_data)
    row["cost_table"] = cost_table_rows(method)

    if m["latency"] and modeled:
        row.update(_modeled_latency(method, ev.traces, cell, row))
    elif m["latency"]:
        clips = [test_ds[i].x[None] for i in _loadable(test_ds, ev.samples["id"].tolist(), int(m["latency_clips"]))]
        prof = profile(method, clips, device=run_device, knobs=cell.knobs, min_queries=int(m["min_queries"]),
                       min_duration_s=float(m["min_duration_s"]), max_duration_s=float(m["max_duration_s"]),
                       offline=bool(m["offline"]), offline_batches=tuple(m["offline_batches"]),
                       count_executed=not on_ort)
        if on_ort:
            from evbench.harness.onnx_backend import max_abs_logit_diff

            row.update(max_abs_logit_diff(torch_method, method, clips, knobs=cell.knobs))
        lat = prof["latency"]
        row.update({
            "latency_ms_p50": lat["p50"], "latency_ms_p90": lat["p90"], "latency_ms_p99": lat["p99"],
            "latency_ms_mean": lat["mean"], "latency_ms_std": lat["std"], "latency_queries": lat["n"],
            "latency_samples_ms": lat["samples_ms"], "latency_convention": lat["convention"],
            "latency_stopped_by": lat.get("stopped_by"), "latency_clips": len(clips),
            "fps_offline": prof["fps"], "fps_offline_batch": prof["fps_offline_batch"],
            "peak_rss_mb": prof["peak_rss_mb"], "peak_cuda_mb": prof["peak_cuda_mb"],
            "energy_j_per_clip": prof["energy_j_per_clip"], "energy_source": prof["energy_source"],
            "gmacs_static_upper": prof["gmacs_static_upper"], "threads": prof["threads"],
            **_stream_fps(row, lat["mean"]),
        })
    row["data_errors"] = errors
    row["conventions"] = {
        "gmacs": "multiply-accumulates x 1e-9 (fvcore cost table, summed over each video's trace)",
        "executed": "FlopCounterMode/2 + fused-RNN/BN/pool formulas, plus declared input costs",
        "accuracy": "top-1/top-5 over test videos, 95 % bootstrap (1000 resamples, seed 0); mAP = mean per-class AP of softmax scores",
    }
    row["env"] = fingerprint(device=run_device, backend=row.get("backend_detail", {}).get("backend", cell.backend),
                             precision="fp32")
    row["status"] = "ok"
    row["started"] = started
    row["wall_s"] = time.perf_counter() - t0
    row["_samples"] = ev.samples.assign(cell_id=cell.id)
    return row


def _stream_fps(row: dict[str, Any], mean_ms: float) -> dict[str, float]:
    """Honest single-stream FPS: frames actually processed vs frames the clip spans, per mean latency (ms).

    Early-exit papers often report the second as if it were the first.
    """
    return {"fps_stream_processed": 1000.0 * row["frames_used"] / mean_ms,
            "fps_stream_covered": 1000.0 * row["frames_total"] / mean_ms}


def _run_device(cell: Cell) -> str:
    """Where the cell's torch work runs: its device, or the CPU for a modeled device."""
    return "cpu" if is_modeled_device(cell.device) else cell.device


def _modeled_latency(method: Method, traces: list, cell: Cell, row: dict[str, Any]) -> dict[str, Any]:
    """Latency columns of a modeled device from every evaluated video's trace (``modeled: true``).

    Accuracy and GMACs are device-independent and were measured on the CPU;
    only the latency is the roofline model's (:func:`evbench.harness.devices.modeled.model_latency`).
    """
    from evbench.harness.devices.modeled import model_latency

    mod = model_latency(method, traces, device=cell.device, backend=cell.backend)
    lat = mod["latency_ms"]
    return {
        "latency_ms_p50": lat["p50"], "latency_ms_p90": lat["p90"], "latency_ms_p99": lat["p99"],
        "latency_ms_mean": lat["mean"], "latency_samples_ms": lat["samples"], "latency_clips": len(traces),
        "latency_convention": mod["modeled_note"], "backend": mod["backend"],
        **_stream_fps(row, lat["mean"]),
        "modeled_device": mod["device_profile"], "modeled_calibration": {
            k: v for k, v in mod["calibration"].items() if k != "points"},
        "modeled_validation": mod["validation"],
    }


def _loadable(dataset: Any, ok_ids: list[str], k: int) -> list[int]:
    """Indices of the first ``k`` clips that loaded during evaluation."""
    ids = set(ok_ids)
    out = []
    for i, entry in enumerate(getattr(dataset, "entries", [])):
        if entry.id in ids:
            out.append(i)
        if len(out) == k:
            break
    return out or [0]


def _failed_row(cell: Cell, exc: BaseException) -> dict[str, Any]:
    return {
        "cell_id": cell.id, "suite": cell.suite, "method": cell.method, "config": cell.config,
        "overrides": cell.overrides, "knobs": cell.knobs, "label": cell.label, "dataset_source": cell.test_data,
        "device": cell.device, "backend": cell.backend, "status": "failed",
        "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8),
        "env": fingerprint(device=_run_device(cell), backend=cell.backend),
    }


@dataclass
class RunSummary:
    """Counts of a run: cells ``done`` now, ``skipped`` (finished before), ``failed``."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def run_cells(cells: Iterable[Cell], *, out: str | Path, resume: bool = False, progress: bool = True,
              cache_dir: str | None = None, executor: Executor | None = None,
              gmacs_per_frame: float | None = None) -> RunSummary:
    """Measure ``cells`` into the store at ``out``.

    Args:
        cells: Cells to run (duplicates by id are run once).
        out: Run directory.
        resume: Skip cells already finished with status ok (failed ones rerun).
        progress: Progress bars.
        cache_dir: Frame cache / generated data location.
        executor: Where cells run (default :class:`SerialExecutor`).
        gmacs_per_frame: Declared per-frame input cost for feature files without one.

    Returns:
        :class:`RunSummary`.

    Raises:
        FileExistsError: ``out`` already has results and ``resume`` is False.
    """
    from tqdm.auto import tqdm

    store = ResultStore(out)
    if store.path.exists() and store.rows() and not resume:
        raise FileExistsError(f"{out} already holds results; pass --resume to continue it or choose another --out")
    finished = store.finished_ids() if resume else set()
    ctx = RunContext(out=Path(out), cache_dir=cache_dir, progress=progress, gmacs_per_frame=gmacs_per_frame)
    executor = executor or SerialExecutor()
    summary = RunSummary()
    unique = list({c.id: c for c in cells}.values())
    for cell in tqdm(unique, desc="cells", disable=not progress):
        if cell.id in finished:
            summary.skipped += 1
            continue
        fut = executor.submit(measure_cell, cell, ctx)
        try:
            row = fut.result()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 — recorded, the run goes on
            store.append(_failed_row(cell, exc))
            summary.failed += 1
            summary.failures.append(f"{cell.label}: {type(exc).__name__}: {exc}")
            continue
        samples = row.pop("_samples")
        store.write_samples(cell.id, samples)
        store.append(row)
        summary.done += 1
    return summary


def knob_sweep(method_name: str, config: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Knob settings of the card's sweeps: the default, then one knob varied at a time."""
    method = create_method(method_name, config=config, num_classes=2, **(overrides or {}))
    settings: list[dict[str, Any]] = [{}]
    for knob in method.card.knobs:
        settings += [{knob.name: v} for v in knob.sweep if v != knob.default]
    return settings

