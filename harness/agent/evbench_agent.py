#!/usr/bin/env python3
# ruff: noqa: UP004, UP006, UP007, UP021, UP022, UP024, UP031, UP032, UP035, UP045, B905
# (pyupgrade rules and B905 are off on purpose: this script must stay valid Python 3.6 — JetPack
# 4.x on the Jetson Nano ships Python 3.6 — so it uses typing.Optional/Dict/List, no ``X | None``.)
"""evbench device agent: replay an exported ONNX bundle on a board, single-stream.

Standalone: Python 3.6+, numpy, onnxruntime and the standard library, plus
``jetson.py`` next to it (both copied into the bundle by
``evbench.harness.agent.write_agent``). Usage on the board::

    python3 evbench_agent.py BUNDLE_DIR --out RESULTS_DIR \\
        [--providers TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider] \\
        [--min-queries 64] [--min-duration 1.0]

What it does:

1. Reads ``BUNDLE_DIR/manifest.json`` (format ``evbench-onnx-bundle/1``) and
   opens one ``onnxruntime.InferenceSession`` per module file.
2. For every recorded schedule (one per example clip) prepares the module
   calls in order, with random float32 inputs of the recorded shapes (a
   ``null`` dimension is the call's ``batch``). The decisions (which modules
   ran, at which resolution, how many frames) were recorded on the host by the
   torch method on the bundle's example clips; they are replayed, not re-made.
3. Warm-up: every distinct (module, input shape, batch) call ``--warmup-runs``
   times, then every schedule once, untimed.
4. Single-stream latency (MLPerf LoadGen SingleStream): one clip = one query,
   batch 1, issued back to back cycling through the schedules until at least
   ``--min-queries`` clips **and** ``--min-duration`` seconds (or
   ``--max-duration``); wall clock ``time.perf_counter`` per clip, ms;
   p50/p90/p99 with numpy's ``linear`` method, mean, std (ddof=1), raw samples.
5. On a Jetson: the total-board INA3221 rail sampled every ``--interval`` s
   during the timed clips, integrated (trapezoid rule) -> joules per clip;
   power mode (``nvpmodel -q``) and clocks read before and after.
6. Appends one row to ``RESULTS_DIR/results.jsonl`` (one ``write`` of one line
   on an ``O_APPEND`` file, then ``fsync`` — the evbench results store's
   format), readable by ``evbench.harness.results.load`` and ``evbench report``. A
   failure appends a ``status: "failed"`` row naming the error.

Exit status: 0 when the row is ``ok``, 1 when it failed, 2 on bad arguments.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import socket
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

try:  # in a bundle: jetson.py sits next to this file
    import jetson  # type: ignore
except ImportError:  # in the evbench source tree
    from evbench.harness.devices import jetson  # type: ignore

BUNDLE_FORMAT = "evbench-onnx-bundle/1"
RESULTS_FILE = "results.jsonl"
AGENT_VERSION = "1"
#: Layout version of the rows written, = evbench.harness.row.SCHEMA_VERSION (its keys are CellResult's;
#: tests/test_agent.py checks both, since this file cannot import evbench).
SCHEMA_VERSION = 2
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
DECISIONS_SOURCE = (
    "replayed: decisions recorded on the host (torch) for the bundle's example clips; module inputs random"
)
LATENCY_CONVENTION = (
    "single-stream (MLPerf LoadGen SingleStream): batch 1, one clip = one query = the schedule's "
    "recorded module calls in order through onnxruntime, next query issued when the previous "
    "completes, cycling through the bundle's schedules; latency = host wall clock "
    "(time.perf_counter) per clip in ms; warm-up: every (module, shape, batch) then every "
    "schedule once, untimed; percentiles numpy method='linear'; std ddof=1"
)
ENERGY_CONVENTION = (
    "joules per clip = total-board INA3221 rail power sampled at a fixed interval during the "
    "timed clips, trapezoid rule, divided by the number of clips; includes the whole board "
    "(idle + host-side Python), not the accelerator alone"
)

_DTYPES = {"float32": "float32", "float": "float32", "float16": "float16", "float64": "float64",
           "int64": "int64", "int32": "int32", "bool": "bool"}


class AgentError(Exception):
    """A bundle or argument problem; the message names the file or setting."""


# --------------------------------------------------------------------------- bundle


def load_manifest(bundle_dir: str) -> Dict[str, Any]:
    """Read and check ``BUNDLE_DIR/manifest.json``.

    Raises:
        AgentError: Missing or unreadable manifest, wrong ``format``, no
            modules or schedules, a schedule calling an unknown module/shape,
            or a module file that does not exist.
    """
    path = os.path.join(bundle_dir, "manifest.json")
    try:
        with open(path) as fh:
            manifest = json.load(fh)
    except (OSError, IOError) as exc:
        raise AgentError("cannot read bundle manifest {}: {}".format(path, exc)) from exc
    except ValueError as exc:
        raise AgentError("bundle manifest {} is not valid JSON: {}".format(path, exc)) from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise AgentError("{}: format is {!r}, this agent reads {!r}".format(
            path, manifest.get("format"), BUNDLE_FORMAT))
    modules = manifest.get("modules") or []
    schedules = manifest.get("schedules") or []
    if not modules:
        raise AgentError("{}: no modules".format(path))
    if not schedules:
        raise AgentError("{}: no schedules (nothing to replay)".format(path))
    keys = set()
    for m in modules:
        f = os.path.join(bundle_dir, m.get("file", ""))
        if not m.get("file") or not os.path.isfile(f):
            raise AgentError("{}: module {!r} file {!r} not found in the bundle".format(
                path, m.get("module"), m.get("file")))
        keys.add(_key(m["module"], m.get("input_shape")))
    for s in schedules:
        for c in s.get("calls", []):
            if _key(c["module"], c.get("input_shape")) not in keys:
                raise AgentError("{}: schedule of clip {} calls {} @ {} which no module entry provides".format(
                    path, s.get("clip"), c["module"], c.get("input_shape")))
    return manifest


def _key(module: str, shape: Any) -> Tuple[str, Tuple[int, ...]]:
    return str(module), tuple(int(d) for d in (shape or []))


def _manifest_sha256(bundle_dir: str) -> str:
    h = hashlib.sha256()
    with open(os.path.join(bundle_dir, "manifest.json"), "rb") as fh:
        h.update(fh.read())
    return h.hexdigest()


def choose_providers(requested: Optional[Sequence[str]], available: Sequence[str]) -> List[str]:
    """Requested providers that this onnxruntime has, in the requested order.

    Args:
        requested: Provider names (None = TensorRT, CUDA, CPU).
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        AgentError: None of the requested providers is available.
    """
    wanted = list(requested) if requested else list(DEFAULT_PROVIDERS)
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise AgentError("--providers {}: none available in this onnxruntime (has {})".format(
            ",".join(wanted), ",".join(available)))
    return chosen


def open_sessions(bundle_dir: str, manifest: Dict[str, Any], providers: Sequence[str],
                  threads: int = 0) -> Dict[Tuple[str, Tuple[int, ...]], Any]:
    """One ``InferenceSession`` per module entry, keyed by (module, input_shape).

    Raises:
        AgentError: A module file fails to load (message names it).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    sessions = {}
    for m in manifest["modules"]:
        f = os.path.join(bundle_dir, m["file"])
        try:
            sessions[_key(m["module"], m.get("input_shape"))] = ort.InferenceSession(
                f, sess_options=opts, providers=list(providers))
        except Exception as exc:
            raise AgentError("cannot load module {} ({}): {}".format(m["module"], f, exc)) from exc
    return sessions


def build_clips(manifest: Dict[str, Any], sessions: Dict[Tuple[str, Tuple[int, ...]], Any],
                seed: int = 0) -> List[List[Tuple[Any, Dict[str, Any]]]]:
    """Per schedule, the list of ``(session, feed)`` calls with random inputs (generated once).

    Inputs: for every input listed in the module entry, its shape with
    ``null`` replaced by the call's ``batch``; float inputs are standard
    normal, integer/bool inputs zeros. Names come from the entry (else from
    the session).
    """
    import numpy as np

    rng = np.random.RandomState(seed)
    entries = {_key(m["module"], m.get("input_shape")): m for m in manifest["modules"]}
    clips = []
    for sched in manifest["schedules"]:
        calls = []
        for call in sched.get("calls", []):
            key = _key(call["module"], call.get("input_shape"))
            entry, sess = entries[key], sessions[key]
            batch = int(call.get("batch", 1))
            if batch == 0:  # an empty active set (e.g. every clip already exited): nothing runs
                continue
            specs = entry.get("inputs") or [
                {"name": i.name, "shape": [None] + list(key[1]), "dtype": "float32"} for i in sess.get_inputs()]
            feed = {}
            for spec in specs:
                shape = [batch if d is None else int(d) for d in spec.get("shape") or []]
                dtype = _DTYPES.get(str(spec.get("dtype", "float32")), "float32")
                if dtype.startswith("float"):
                    feed[spec["name"]] = rng.standard_normal(shape).astype(dtype)
                else:
                    feed[spec["name"]] = np.zeros(shape, dtype=dtype)
            calls.append((sess, feed))
        clips.append(calls)
    return clips


def run_clip(calls: Sequence[Tuple[Any, Dict[str, Any]]]) -> None:
    """Run one clip's module calls in order (outputs discarded)."""
    for sess, feed in calls:
        sess.run(None, feed)


# --------------------------------------------------------------------------- timing


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """``q``-th percentile (0-100) with linear interpolation between closest ranks (numpy 'linear')."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def measure(clips: Sequence[Sequence[Tuple[Any, Dict[str, Any]]]], min_queries: int, min_duration_s: float,
            max_duration_s: float, warmup_runs: int = 1, sampler: Any = None,
            clock: Callable[[], float] = time.perf_counter) -> Dict[str, Any]:
    """Warm up, then time clips single-stream; optional rail sampler around the timed phase.

    Args:
        clips: Prepared calls per schedule (:func:`build_clips`).
        min_queries: At least this many timed clips (>= 1).
        min_duration_s: ...and at least this long, s (>= 0).
        max_duration_s: Stop after this long even below ``min_queries``, s.
        warmup_runs: Untimed runs of every distinct call before timing.
        sampler: A ``jetson.RailSampler`` started/stopped around the timed clips, or None.
        clock: Seconds clock (tests).

    Returns:
        ``{"samples_ms", "p50", "p90", "p99", "mean", "std", "n", "duration_s",
        "stopped_by", "per_schedule_mean_ms", "energy_samples"}``.

    Raises:
        AgentError: Inconsistent limits.
    """
    if min_queries < 1:
        raise AgentError("--min-queries must be >= 1, got {}".format(min_queries))
    if min_duration_s < 0 or max_duration_s <= 0 or max_duration_s < min_duration_s:
        raise AgentError("need 0 <= --min-duration <= --max-duration, got {} and {}".format(
            min_duration_s, max_duration_s))
    seen = set()
    for calls in clips:
        for sess, feed in calls:
            k = (id(sess), tuple((n, v.shape) for n, v in sorted(feed.items())))
            if k in seen:
                continue
            seen.add(k)
            for _ in range(max(0, warmup_runs)):
                sess.run(None, feed)
    for calls in clips:
        run_clip(calls)

    samples = []  # type: List[float]
    which = []  # type: List[int]
    if sampler is not None:
        sampler.start()
    t_start = clock()
    elapsed = 0.0
    i = 0
    stopped_by = "targets_met"
    while True:
        if len(samples) >= min_queries and elapsed >= min_duration_s:
            break
        if elapsed >= max_duration_s:
            stopped_by = "max_duration"
            break
        k = i % len(clips)
        t0 = clock()
        run_clip(clips[k])
        t1 = clock()
        samples.append((t1 - t0) * 1e3)
        which.append(k)
        elapsed = t1 - t_start
        i += 1
    energy_samples = sampler.stop() if sampler is not None else None

    ordered = sorted(samples)
    n = len(samples)
    mean = sum(samples) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in samples) / (n - 1)) if n > 1 else 0.0
    per = []
    for k in range(len(clips)):
        xs = [s for s, w in zip(samples, which) if w == k]
        per.append(sum(xs) / len(xs) if xs else None)
    return {
        "samples_ms": samples, "p50": percentile(ordered, 50), "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99), "mean": mean, "std": std, "n": n, "duration_s": elapsed,
        "stopped_by": stopped_by, "per_schedule_mean_ms": per, "energy_samples": energy_samples,
    }


# --------------------------------------------------------------------------- environment


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except (OSError, IOError):
        pass
    return platform.processor() or platform.machine() or None


def _memory_gb() -> Optional[float]:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2.0 ** 20, 2)
    except (OSError, IOError, ValueError):
        pass
    return None


def environment(device: str, backend: str, threads: Optional[int], jetson_state: Optional[Dict[str, Any]],
                providers: Sequence[str]) -> Dict[str, Any]:
    """The fingerprint keys the agent can fill (the rest of evbench's fingerprint is None)."""
    import numpy as np
    import onnxruntime as ort

    try:
        affinity = len(os.sched_getaffinity(0))  # type: Optional[int]
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_model": _cpu_model(), "cpu_arch": platform.machine() or None,
        "cpu_cores_logical": os.cpu_count(), "cpu_cores_physical": None, "cpu_cores_available": affinity,
        "memory_gb": _memory_gb(), "os": platform.platform(), "kernel": platform.release(),
        "python": platform.python_version(), "hostname": socket.gethostname(),
        "gpu_name": (jetson_state or {}).get("model"), "gpu_count": None, "gpu_memory_gb": None,
        "gpu_driver": None, "cuda_version": None, "cudnn_version": None,
        "torch": None, "torchvision": None, "numpy": np.__version__, "onnxruntime": ort.__version__,
        "onnxruntime_providers": list(ort.get_available_providers()), "onnxruntime_providers_used": list(providers),
        "av": None, "fvcore": None, "ptflops": None,
        "backend": backend, "precision": "fp32", "device": device, "threads": threads, "interop_threads": None,
        "jetson": jetson_state, "git_commit": None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "+00:00",
        "runner": "evbench_agent.py v" + AGENT_VERSION,
    }


def _backend(active_provider: str) -> str:
    short = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda",
             "CPUExecutionProvider": "cpu"}
    return "onnxruntime-" + short.get(active_provider, active_provider.replace("ExecutionProvider", "").lower())


# --------------------------------------------------------------------------- results store


def _clean(value: Any) -> Any:
    """Strict-JSON value: NaN/inf -> None, tuples -> lists, numpy scalars -> Python."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return dict((str(k), _clean(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _clean(value.item())
    return value


def append_row(out_dir: str, row: Dict[str, Any]) -> str:
    """Append one row to ``OUT/results.jsonl``: one ``write`` + ``fsync`` on an ``O_APPEND`` file.

    Raises:
        AgentError: The row has no ``cell_id``.
    """
    if "cell_id" not in row:
        raise AgentError("result row needs a cell_id")
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    path = os.path.join(out_dir, RESULTS_FILE)
    line = (json.dumps(_clean(row), sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


# --------------------------------------------------------------------------- main


def _stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return {"mean": None, "p5": None, "p95": None}
    return {"mean": sum(vals) / len(vals), "p5": percentile(vals, 5), "p95": percentile(vals, 95)}


def _common_knobs(schedules: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    first = schedules[0].get("knobs") or {}
    return first if all((s.get("knobs") or {}) == first for s in schedules) else {}


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Measure the bundle and return the result row (raises on failure)."""
    import onnxruntime as ort

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    bundle = os.path.abspath(args.bundle)
    manifest = load_manifest(bundle)
    requested = [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None
    providers = choose_providers(requested, ort.get_available_providers())
    state_before = jetson.jetson_info(root=args.root)
    sessions = open_sessions(bundle, manifest, providers, threads=args.threads)
    active = next(iter(sessions.values())).get_providers()
    clips = build_clips(manifest, sessions, seed=args.seed)

    sampler = None
    rail = None
    if state_before is not None:
        found = jetson.total_rail_reader(args.root)
        if found is not None:
            rail, read_mw, _info = found
            sampler = jetson.RailSampler(read_mw, interval_s=args.interval)
    lat = measure(clips, args.min_queries, args.min_duration, args.max_duration,
                  warmup_runs=args.warmup_runs, sampler=sampler)
    state_after = jetson.jetson_info(root=args.root) if state_before is not None else None

    energy = None
    if lat["energy_samples"] is not None:
        joules = jetson.integrate_trapezoid_j([(t, p) for t, p in lat["energy_samples"] if p is not None])
        energy = None if joules is None else joules / lat["n"]

    schedules = manifest["schedules"]
    card = manifest.get("card") or {}
    device = (state_before or {}).get("model") or (
        "cpu" if active[0] == "CPUExecutionProvider" else "cuda:0")
    backend = _backend(active[0])
    gm = _stats([s.get("gmacs") for s in schedules])
    frames_used = _stats([s.get("frames_used") for s in schedules])["mean"]
    frames_total = card.get("frames")
    sha = _manifest_sha256(bundle)
    cell_id = "agent-{}-{}-{}".format(
        manifest.get("method"), manifest.get("config"),
        hashlib.sha256("|".join([sha, device, backend, ",".join(providers)]).encode()).hexdigest()[:12])
    row = {
        "schema_version": SCHEMA_VERSION, "cell_id": cell_id, "suite": "agent", "status": "ok",
        "method": manifest.get("method"), "config": manifest.get("config"), "title": card.get("title"),
        "paper": card.get("paper"), "doi": card.get("doi"), "input_kind": card.get("input_kind"),
        "label": manifest.get("label"), "knobs": _common_knobs(schedules), "overrides": manifest.get("overrides") or {},
        "dataset": manifest.get("dataset") or "bundle example clips",
        "dataset_synthetic": manifest.get("dataset_synthetic"),
        "dataset_note": "latency on the bundle's recorded schedules; inputs random, accuracy not measured here",
        "device": device, "backend": backend, "precision": "fp32", "modeled": False,
        "trained": None, "accuracy_note": "not measured: the agent replays recorded schedules on random inputs",
        "decisions_source": DECISIONS_SOURCE,
        "frames_total": frames_total, "resolution": card.get("resolution"),
        "gmacs_per_video": gm["mean"], "gmacs_per_video_p5": gm["p5"], "gmacs_per_video_p95": gm["p95"],
        "gmacs_per_frame": (gm["mean"] / frames_used) if gm["mean"] is not None and frames_used else None,
        "frames_used": frames_used,
        "latency_ms_p50": lat["p50"], "latency_ms_p90": lat["p90"], "latency_ms_p99": lat["p99"],
        "latency_ms_mean": lat["mean"], "latency_ms_std": lat["std"], "latency_queries": lat["n"],
        "latency_samples_ms": lat["samples_ms"], "latency_convention": LATENCY_CONVENTION,
        "latency_stopped_by": lat["stopped_by"], "latency_clips": len(clips),
        "latency_setup": {"duration_s": lat["duration_s"], "min_queries": args.min_queries,
                          "min_duration_s": args.min_duration, "max_duration_s": args.max_duration,
                          "warmup_runs": args.warmup_runs, "seed": args.seed},
        "latency_per_schedule_mean_ms": lat["per_schedule_mean_ms"],
        "fps_stream_processed": (1000.0 * frames_used / lat["mean"]) if frames_used and lat["mean"] > 0 else None,
        "fps_stream_covered": (1000.0 * frames_total / lat["mean"]) if frames_total and lat["mean"] > 0 else None,
        "energy_j_per_clip": energy,
        "energy_source": "jetson-rails" if energy is not None else None,
        "energy_rail": rail if energy is not None else None,
        "energy_interval_s": args.interval if sampler is not None else None,
        "energy_samples": len(lat["energy_samples"]) if lat["energy_samples"] is not None else None,
        "energy_note": (ENERGY_CONVENTION if energy is not None else
                        "not measured: no readable power rail on this device"),
        "threads": args.threads or None,
        "providers_requested": requested or list(DEFAULT_PROVIDERS), "providers": list(providers),
        "providers_active": list(active),
        "power_mode": (state_before or {}).get("power_mode"),
        "jetson_clocks": (state_before or {}).get("jetson_clocks"),
        "jetson_state_after": state_after,
        "bundle": {"path": bundle, "format": manifest.get("format"), "manifest_sha256": sha,
                   "exported": manifest.get("exported"), "torch": manifest.get("torch"),
                   "opset": manifest.get("opset"), "modules": len(manifest["modules"]),
                   "num_classes": manifest.get("num_classes"),
                   "schedules": len(schedules), "build": manifest.get("build"),
                   "verification": manifest.get("verification")},
        "conventions": {"latency": LATENCY_CONVENTION, "energy": ENERGY_CONVENTION,
                        "gmacs": "multiply-accumulates x 1e-9 recorded per schedule by the exporter (mean over schedules)",
                        "decisions": DECISIONS_SOURCE},
        "data_errors": [],
        "env": environment(device, backend, args.threads or None, state_before, active),
        "started": started,
    }
    row["wall_s"] = time.perf_counter() - t0
    return row


def _failed_row(args: argparse.Namespace, exc: BaseException) -> Dict[str, Any]:
    manifest = {}  # type: Dict[str, Any]
    try:
        with open(os.path.join(args.bundle, "manifest.json")) as fh:
            manifest = json.load(fh)
    except Exception:
        pass
    key = "|".join([os.path.abspath(args.bundle), str(args.providers)])
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": "agent-{}-{}-{}".format(manifest.get("method"), manifest.get("config"),
                                           hashlib.sha256(key.encode()).hexdigest()[:12]),
        "suite": "agent", "status": "failed", "method": manifest.get("method"), "config": manifest.get("config"),
        "device": (jetson.detect(args.root) or {}).get("model") or "cpu", "backend": "onnxruntime",
        "error": "{}: {}".format(type(exc).__name__, exc), "traceback": traceback.format_exc(limit=8),
        "decisions_source": DECISIONS_SOURCE,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(description="Replay an evbench ONNX bundle on this device, single-stream.")
    p.add_argument("bundle", help="bundle directory (holds manifest.json and modules/)")
    p.add_argument("--out", required=True, help="results directory; rows are appended to OUT/results.jsonl")
    p.add_argument("--providers", default=None,
                   help="comma-separated onnxruntime execution providers in preference order "
                        "(default: {}; unavailable ones are dropped)".format(",".join(DEFAULT_PROVIDERS)))
    p.add_argument("--min-queries", type=int, default=64, help="timed clips at least (default 64)")
    p.add_argument("--min-duration", type=float, default=1.0, help="timed phase at least this long, s (default 1.0)")
    p.add_argument("--max-duration", type=float, default=120.0, help="timed phase at most this long, s (default 120)")
    p.add_argument("--warmup-runs", type=int, default=3, help="untimed runs per distinct module call (default 3)")
    p.add_argument("--interval", type=float, default=0.05, help="power-rail sampling interval, s (default 0.05)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random module inputs")
    p.add_argument("--root", default="/", help="filesystem root for Jetson detection and power rails "
                                               "(default /; tests point it at a fake tree)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the agent; returns the exit status (0 ok, 1 failed)."""
    args = parse_args(argv)
    try:
        row = run(args)
    except Exception as exc:
        row = _failed_row(args, exc)
        path = append_row(args.out, row)
        sys.stderr.write("evbench agent: FAILED ({}); row appended to {}\n".format(row["error"], path))
        return 1
    path = append_row(args.out, row)
    sys.stdout.write("evbench agent: {} {} on {} ({}): p50 {:.3f} ms, p90 {:.3f} ms, {} clips{}; row appended to {}\n".format(
        row["method"], row["config"], row["device"], row["backend"], row["latency_ms_p50"], row["latency_ms_p90"],
        row["latency_queries"],
        ", {:.4f} J/clip".format(row["energy_j_per_clip"]) if row["energy_j_per_clip"] is not None else "", path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
