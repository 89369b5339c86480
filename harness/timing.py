"""Latency and throughput measurement: the harness's stopwatch.

Three measurements, each after an MLPerf LoadGen scenario, and each stamped
with the convention it followed so that a stored row can be read without this
source file:

* :func:`measure_latency` — **single-stream latency** (MLPerf LoadGen
  *SingleStream*): one query (a batch-1 clip) at a time, the next query issued
  as soon as the previous one completed; wall time per query in ms; p50, p90,
  p99, mean and the raw samples.
* :func:`measure_offline_fps` — **offline throughput** (MLPerf LoadGen
  *Offline*): all work available up front; the largest useful batch is found
  by a search over batch sizes; reported as *sampled frames processed per
  second* (items/s x frames per item).
* :func:`measure_stream` — **online stream**: frames arrive at a fixed camera
  rate on a simulated clock, the model processes the latest arrived frame when
  it is free (older waiting frames are dropped); sustained frames/s,
  arrival-to-result latency per frame and dropped frames.

:class:`Stopwatch` times decode and pre-processing separately from the model.

What the harness does **not** do for the caller: it does not enter
``torch.inference_mode()`` / ``torch.no_grad()``, does not put the module in
``eval()`` mode, does not move inputs to the device and does not fix the
thread count. The callables passed in are timed exactly as given; build them
so that one call is one query (e.g. ``lambda: model(x)`` inside
``with torch.inference_mode():``).

CUDA: on a ``cuda`` device, per-query latency uses a pair of
``torch.cuda.Event(enable_timing=True)`` recorded around the call and
``torch.cuda.synchronize()`` after it; throughput and stream timing use the
host clock with ``torch.cuda.synchronize()`` so that asynchronous kernel
launches are counted. On CPU the clock is ``time.perf_counter_ns``.

Every function takes an optional ``clock`` (a zero-argument callable returning
integer nanoseconds, default ``time.perf_counter_ns`` looked up at call time)
so the statistics can be tested with a fake clock.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from evbench.harness.machine_state import TimedWindow

__all__ = [
    "LatencyStats",
    "Stopwatch",
    "is_oom_error",
    "measure_latency",
    "measure_offline_fps",
    "measure_stream",
]

Clock = Callable[[], int]
"""A monotonic clock returning integer nanoseconds (``time.perf_counter_ns``)."""

PERCENTILE_METHOD = "linear"
"""``numpy.percentile`` method used for every percentile here (linear
interpolation between closest ranks, numpy's default; Hyndman & Fan type 7)."""

_NS_PER_MS = 1e6
_NS_PER_S = 1e9

#: Relative throughput gain below which a larger batch counts as "not improving".
OFFLINE_IMPROVEMENT = 0.05
#: Consecutive non-improving batch sizes after which the offline search stops.
OFFLINE_PATIENCE = 2


# --------------------------------------------------------------------------- helpers


def _clock(clock: Clock | None) -> Clock:
    """The clock to use: the injected one or ``time.perf_counter_ns`` (looked up now)."""
    return clock if clock is not None else time.perf_counter_ns


def _as_device(device: str | torch.device) -> torch.device:
    """Parse ``device``; raise if it is CUDA and CUDA is not available.

    Raises:
        RuntimeError: ``device`` is a CUDA device but ``torch.cuda.is_available()``
            is false.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {dev} requested but torch.cuda.is_available() is False")
    return dev


def _synchronize(dev: torch.device) -> None:
    """Wait for all queued work on ``dev`` (no-op off CUDA)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _cuda_device_ctx(dev: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Make ``dev`` the current CUDA device when it names an index."""
    if dev.type == "cuda" and dev.index is not None:
        return torch.cuda.device(dev.index)
    return contextlib.nullcontext()


def _percentiles_ms(samples_ms: Sequence[float]) -> tuple[float, float, float]:
    """p50, p90, p99 of ``samples_ms`` (ms) with numpy's ``linear`` method."""
    p = np.percentile(
        np.asarray(samples_ms, dtype=np.float64), [50, 90, 99], method=PERCENTILE_METHOD
    )
    return float(p[0]), float(p[1]), float(p[2])


def _sample_std(samples_ms: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1) in ms; 0.0 for fewer than two samples."""
    if len(samples_ms) < 2:
        return 0.0
    return float(np.std(np.asarray(samples_ms, dtype=np.float64), ddof=1))


# torch.OutOfMemoryError is top-level since torch 2.5; torch.cuda's alias is older.
_TORCH_OOM: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def is_oom_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory failure of an allocation.

    Recognises ``torch.OutOfMemoryError`` (CUDA caching allocator), Python's
    ``MemoryError`` (e.g. numpy) and ``RuntimeError`` whose message contains
    "out of memory" (CUDA/cuDNN/cuBLAS, MPS) or "can't allocate memory"
    (torch's ``DefaultCPUAllocator``).

    Args:
        exc: The exception raised by the measured call.

    Returns:
        True for an out-of-memory error, False otherwise.
    """
    if isinstance(exc, (_TORCH_OOM, MemoryError)):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return "out of memory" in msg or "can't allocate memory" in msg
    return False


# --------------------------------------------------------------------------- Stopwatch


class Stopwatch:
    """Wall-clock timer for one block, in ms (``time.perf_counter_ns``).

    Used to time decode and pre-processing separately from the model::

        with Stopwatch() as sw:
            frames = decode(path)
        row["decode_ms"] = sw.ms

    On a CUDA ``device`` the block is bracketed by ``torch.cuda.synchronize``
    so that queued kernels are counted. The stopwatch can be re-entered; each
    ``with`` restarts it.

    Args:
        device: Device whose queued work is waited for at entry and exit;
            ``None`` (default) or a CPU device waits for nothing.
        clock: Nanosecond clock (tests); default ``time.perf_counter_ns``.

    Attributes:
        ns: Elapsed integer nanoseconds of the last completed block (``None``
            before the first block ends).
    """

    def __init__(
        self, device: str | torch.device | None = None, *, clock: Clock | None = None
    ) -> None:
        self._dev = torch.device(device) if device is not None else torch.device("cpu")
        self._clock = clock
        self._t0: int | None = None
        self.ns: int | None = None

    def __enter__(self) -> Stopwatch:
        _synchronize(self._dev)
        self.ns = None
        self._t0 = _clock(self._clock)()
        return self

    def __exit__(self, *exc: object) -> None:
        _synchronize(self._dev)
        assert self._t0 is not None
        self.ns = _clock(self._clock)() - self._t0

    @property
    def ms(self) -> float:
        """Elapsed milliseconds: of the finished block, or so far while inside it.

        Raises:
            RuntimeError: The stopwatch was never started.
        """
        if self.ns is not None:
            return self.ns / _NS_PER_MS
        if self._t0 is None:
            raise RuntimeError("Stopwatch was never started; use it as a context manager")
        return (_clock(self._clock)() - self._t0) / _NS_PER_MS

    @property
    def s(self) -> float:
        """Elapsed seconds (see :attr:`ms`)."""
        return self.ms / 1e3


# --------------------------------------------------------------------------- latency

_SINGLE_STREAM_CPU = (
    "single-stream (MLPerf LoadGen SingleStream): batch 1, one query at a time, next query "
    "issued when the previous completes; latency = host wall clock per query "
    "(time.perf_counter_ns) in ms; percentiles numpy method='linear'; std ddof=1"
)
_SINGLE_STREAM_CUDA = (
    "single-stream (MLPerf LoadGen SingleStream): batch 1, one query at a time, next query "
    "issued when the previous completes; latency = torch.cuda.Event(enable_timing=True) pair "
    "recorded around the query then torch.cuda.synchronize(), in ms; host wall clock incl. "
    "synchronize in wall_samples_ms; percentiles numpy method='linear'; std ddof=1"
)


@dataclass
class LatencyStats:
    """Single-stream latency of one query callable (MLPerf LoadGen SingleStream).

    All latencies are milliseconds per query (one query = one call of the
    measured callable, normally one batch-1 clip).

    Attributes:
        samples_ms: Raw per-query latencies in ms, in issue order, length ``n``.
        p50: Median latency, ms (numpy ``method="linear"``).
        p90: 90th-percentile latency, ms.
        p99: 99th-percentile latency, ms.
        mean: Mean latency, ms.
        std: Sample standard deviation (ddof=1) of the latency, ms; 0.0 if n < 2.
        n: Number of timed queries.
        duration_s: Host wall time of the timed phase (all queries, excluding
            warm-up), seconds.
        threads: ``torch.get_num_threads()`` during the measurement.
        device: Device string, e.g. ``"cpu"`` or ``"cuda:0"``.
        warmup_runs: Un-timed calls made per warm-up callable before timing.
        convention: How the numbers were taken (scenario, clock, percentile method).
        stopped_by: Why the query loop stopped: ``"targets_met"`` (>= min_queries
            and >= min_duration_s), ``"max_queries"`` (the query cap was reached;
            min_duration_s may not have been) or ``"max_duration"`` (the time
            cap was hit; ``n`` may be below ``min_queries``).
        min_queries: The requested minimum number of queries.
        min_duration_s: The requested minimum duration, seconds.
        timer: ``"perf_counter_ns"`` or ``"cuda_event"``.
        warmup_callables: Number of distinct warm-up callables run (the
            ``warmup`` sequence plus the measured callable itself).
        wall_samples_ms: On CUDA, host wall clock per query in ms including the
            ``torch.cuda.synchronize()``; ``None`` on CPU (where ``samples_ms``
            already is host wall clock).
        energy_j_per_query: Joules per query over the timed phase (the energy
            meter's reading ÷ ``n``), None when no meter was given or it could
            not read.
        energy_source: The counter read (``"nvml"``, ``"rapl"``, ``"jetson-rails"``), or None.
        energy_detail: The meter's reading over the timed phase
            (:class:`evbench.harness.devices.energy.EnergyReading` as a dict:
            ``joules``, ``method``, ``interval_s``, ``duration_s``, ``samples``), or None.
        machine_state: The machine around the timed phase
            (:class:`evbench.harness.machine_state.TimedWindow`: load average,
            CPU frequency/governor, other processes' CPU use in cores,
            throttling); None when not recorded.
        noisy: True when other processes used more than the noisy threshold
            (cores) during the timed phase, or throttling was seen; such a
            window is kept out of regression verdicts. None when not recorded.
    """

    samples_ms: list[float]
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    n: int
    duration_s: float
    threads: int
    device: str
    warmup_runs: int
    convention: str
    stopped_by: str = "targets_met"
    min_queries: int = 0
    min_duration_s: float = 0.0
    timer: str = "perf_counter_ns"
    warmup_callables: int = 1
    wall_samples_ms: list[float] | None = None
    energy_j_per_query: float | None = None
    energy_source: str | None = None
    energy_detail: dict[str, Any] | None = None
    machine_state: dict[str, Any] | None = None
    noisy: bool | None = None

    @property
    def met_minimums(self) -> bool:
        """True when both ``min_queries`` and ``min_duration_s`` were reached."""
        return self.n >= self.min_queries and self.duration_s >= self.min_duration_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all fields (floats, ints, strings, lists, None)."""
        return dataclasses.asdict(self)


def measure_latency(
    run: Callable[[], Any],
    *,
    device: str | torch.device = "cpu",
    warmup: Sequence[Callable[[], Any]] = (),
    warmup_runs: int = 3,
    min_queries: int = 64,
    min_duration_s: float = 1.0,
    max_duration_s: float = 60.0,
    max_queries: int | None = None,
    clock: Clock | None = None,
    energy_meter: Any = None,
    machine_state: bool = True,
    noisy_share: float | None = None,
    on_query: Callable[[int], Any] | None = None,
) -> LatencyStats:
    """Single-stream latency of ``run`` (MLPerf LoadGen SingleStream scenario).

    Procedure:

    1. Warm-up: every callable in ``warmup`` — one per input shape / execution
       path the method can produce (e.g. each forced resolution, each exit
       point) — and then ``run`` itself are each called ``warmup_runs`` times,
       untimed, so that lazy initialisation, allocator growth and per-shape
       kernel selection (cuDNN autotune, oneDNN primitive caches) happen
       before timing. On CUDA the device is synchronised afterwards.
    2. Queries: ``run()`` is issued one at a time until at least
       ``min_queries`` queries **and** at least ``min_duration_s`` seconds have
       elapsed, or ``max_queries`` queries were issued, or ``max_duration_s``
       is reached (checked between queries, so the last query may end after
       it). Which limit stopped the loop is recorded in ``stopped_by``; when it
       is ``"max_duration"``, ``n`` may be below ``min_queries`` and is
       reported as is.

    Timing: on CPU, ``clock()`` (``time.perf_counter_ns``) immediately before
    and after each call. On CUDA, a ``torch.cuda.Event(enable_timing=True)``
    pair recorded on the current stream around the call, then
    ``torch.cuda.synchronize()``; the event interval is the latency, and host
    wall time including the synchronisation is kept in ``wall_samples_ms``.
    Because the device is idle when the start event is recorded, the interval
    runs from (about) the call until its last kernel finishes, so host-side
    work inside ``run`` (Python control flow of adaptive methods, ``.item()``
    decisions) is included as GPU idle time; only the final synchronise
    overhead is excluded.
    Python's garbage collector is left enabled (its pauses are part of the
    latency a user would see).

    The caller is responsible for ``torch.inference_mode()`` / ``eval()`` and
    for input placement; ``run`` is timed exactly as given.

    Args:
        run: Zero-argument callable issuing one query (batch 1).
        device: Device the query runs on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        warmup: Extra warm-up callables, one per input shape / path.
        warmup_runs: Un-timed calls per warm-up callable (>= 0).
        min_queries: Minimum number of timed queries (>= 1; DESIGN §4 asks 64).
        min_duration_s: Minimum duration of the timed phase, seconds (>= 0).
        max_duration_s: Hard cap on the timed phase, seconds (> 0, >= min_duration_s).
        max_queries: Optional cap on the number of queries (>= min_queries).
        clock: Nanosecond clock used for the loop limits and (on CPU) the
            per-query samples; default ``time.perf_counter_ns``.
        energy_meter: Optional :class:`evbench.harness.devices.energy.EnergyMeter`,
            started after the warm-up and stopped after the last timed query;
            its joules ÷ queries become ``energy_j_per_query`` (J per clip).
        machine_state: Record the machine's state around the timed phase and
            flag it ``noisy`` (:mod:`evbench.harness.machine_state`).
        noisy_share: Noisy threshold, cores used by other processes during the
            timed phase (default ``$EVBENCH_NOISY_SHARE`` or 0.25).
        on_query: Called with the number of queries timed so far after each
            query, outside its timed interval (e.g. a progress bar's update).

    Returns:
        A :class:`LatencyStats` with per-query latencies in ms.

    Raises:
        ValueError: Inconsistent limits (``min_queries < 1``, ``warmup_runs < 0``,
            ``min_duration_s < 0``, ``max_duration_s <= 0`` or below
            ``min_duration_s``, ``max_queries < min_queries``).
        RuntimeError: A CUDA device was requested but CUDA is not available.
        Exception: Whatever ``run`` or a warm-up callable raises (e.g.
            ``torch.OutOfMemoryError``) propagates unchanged.
    """
    if min_queries < 1:
        raise ValueError(f"min_queries must be >= 1, got {min_queries}")
    if warmup_runs < 0:
        raise ValueError(f"warmup_runs must be >= 0, got {warmup_runs}")
    if min_duration_s < 0:
        raise ValueError(f"min_duration_s must be >= 0, got {min_duration_s}")
    if max_duration_s <= 0 or max_duration_s < min_duration_s:
        raise ValueError(
            f"max_duration_s must be > 0 and >= min_duration_s ({min_duration_s}), got {max_duration_s}"
        )
    if max_queries is not None and max_queries < min_queries:
        raise ValueError(f"max_queries ({max_queries}) must be >= min_queries ({min_queries})")

    dev = _as_device(device)
    clk = _clock(clock)
    is_cuda = dev.type == "cuda"
    callables = [*warmup, run]

    with _cuda_device_ctx(dev):
        for fn in callables:
            for _ in range(warmup_runs):
                fn()
        _synchronize(dev)

        samples: list[float] = []
        wall: list[float] = []
        if is_cuda:
            start_ev = torch.cuda.Event(enable_timing=True)
            end_ev = torch.cuda.Event(enable_timing=True)
        min_ns = int(round(min_duration_s * _NS_PER_S))
        max_ns = int(round(max_duration_s * _NS_PER_S))

        window = TimedWindow(noisy_share) if machine_state else None
        if window is not None:
            window.__enter__()
        if energy_meter is not None:
            energy_meter.start()
        t_start = clk()
        elapsed = 0
        stopped_by = "targets_met"
        while True:
            n = len(samples)
            if n >= min_queries and elapsed >= min_ns:
                stopped_by = "targets_met"
                break
            if max_queries is not None and n >= max_queries:
                stopped_by = "max_queries"
                break
            if elapsed >= max_ns:
                stopped_by = "max_duration"
                break
            if is_cuda:
                h0 = clk()
                start_ev.record()
                run()
                end_ev.record()
                torch.cuda.synchronize(dev)
                h1 = clk()
                samples.append(float(start_ev.elapsed_time(end_ev)))
                wall.append((h1 - h0) / _NS_PER_MS)
            else:
                t0 = clk()
                run()
                t1 = clk()
                samples.append((t1 - t0) / _NS_PER_MS)
                h1 = t1
            elapsed = h1 - t_start
            if on_query is not None:
                on_query(len(samples))
        energy = energy_meter.stop() if energy_meter is not None else None
        if window is not None:
            window.__exit__(None, None, None)
        state, noisy = window.result() if window is not None else (None, None)

    p50, p90, p99 = _percentiles_ms(samples)
    return LatencyStats(
        samples_ms=samples,
        p50=p50,
        p90=p90,
        p99=p99,
        mean=float(np.mean(samples)),
        std=_sample_std(samples),
        n=len(samples),
        duration_s=elapsed / _NS_PER_S,
        threads=torch.get_num_threads(),
        device=str(dev),
        warmup_runs=warmup_runs,
        convention=_SINGLE_STREAM_CUDA if is_cuda else _SINGLE_STREAM_CPU,
        stopped_by=stopped_by,
        min_queries=min_queries,
        min_duration_s=float(min_duration_s),
        timer="cuda_event" if is_cuda else "perf_counter_ns",
        warmup_callables=len(callables),
        wall_samples_ms=wall if is_cuda else None,
        energy_j_per_query=(energy.joules / len(samples)) if energy is not None and energy.joules is not None else None,
        energy_source=energy.source if energy is not None else None,
        energy_detail=dataclasses.asdict(energy) if dataclasses.is_dataclass(energy) else None,
        machine_state=state,
        noisy=noisy,
    )


# --------------------------------------------------------------------------- offline

_OFFLINE_CONVENTION = (
    "offline (MLPerf LoadGen Offline): for each batch size in increasing order, 1 un-timed "
    "warm-up call then back-to-back calls for >= min_duration_s and >= min_calls, host wall "
    "clock (time.perf_counter_ns), device synchronized before the window and before every "
    "check that may close it; "
    "items/s = batch x calls / seconds; fps = sampled frames processed per second = items/s x "
    "frames_per_item; search stops at OOM, at the memory limit, after 2 consecutive batch sizes "
    "not improving the best throughput by > 5 %, or at the largest batch; best = max fps"
)


def measure_offline_fps(
    run_batch: Callable[[int], Any],
    *,
    frames_per_item: int,
    device: str | torch.device = "cpu",
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    min_duration_s: float = 1.0,
    max_memory_mb: float | None = None,
    min_calls: int = 2,
    clock: Clock | None = None,
    on_batch: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Offline throughput in sampled frames per second (MLPerf LoadGen Offline).

    For each batch size ``b`` in increasing order: one un-timed warm-up call
    ``run_batch(b)`` (the new input shape), then back-to-back calls timed as a
    window on the host clock, with the device synchronised before the window
    and after every call that may close it (the first ``min_calls - 1`` calls
    are not synchronised, so their launches may overlap as in a real offline
    job), until the window lasts ``>= min_duration_s`` and has
    ``>= min_calls`` calls. Throughput is
    ``items/s = b * calls / window_seconds`` and
    ``fps = items/s * frames_per_item`` (sampled frames processed per second,
    DESIGN §4 "FPS").

    The search stops at the first of:

    * ``"oom"`` — the call raised an out-of-memory error (see
      :func:`is_oom_error`); that batch size is excluded and, on CUDA, the
      caching allocator is emptied.
    * ``"memory_limit"`` — ``max_memory_mb`` is given and the warm-up call's
      peak exceeded it (peak CUDA allocation on CUDA, peak process RSS on
      CPU, MiB, from :class:`evbench.harness.memory.PeakMemory`); that batch size is
      excluded.
    * ``"plateau"`` — :data:`OFFLINE_PATIENCE` (2) consecutive batch sizes did
      not raise the best throughput so far by more than
      :data:`OFFLINE_IMPROVEMENT` (5 %); they are kept in ``per_batch``.
    * ``"max_batch"`` — all ``batch_sizes`` were measured.

    The result is the batch size with the highest measured fps.

    Args:
        run_batch: Callable processing one batch of the given size (items =
            clips); the caller builds/holds the inputs and enters
            ``torch.inference_mode()``.
        frames_per_item: Sampled frames per item (e.g. T for a clip of T frames;
            for an adaptive method, the frames it *sampled*, i.e. fed in).
        device: Device the batches run on.
        batch_sizes: Candidate batch sizes (positive ints; sorted and
            de-duplicated here).
        min_duration_s: Minimum timed window per batch size, seconds.
        max_memory_mb: Optional memory budget in MiB (see above).
        min_calls: Minimum timed calls per batch size (>= 1).
        clock: Nanosecond clock (tests); default ``time.perf_counter_ns``.
        on_batch: Called with each batch size once it is measured (progress).

    Returns:
        A JSON-serialisable dict (integer ``per_batch`` keys become strings in
        JSON)::

            {"fps": float,                # best sampled frames/s
             "items_per_s": float,        # best clips/s
             "best_batch": int,
             "per_batch": {b: fps},       # every measured batch size
             "per_batch_items_per_s": {b: items/s},
             "per_batch_peak_memory_mb": {b: MiB} | None,
             "stopped_by": "oom" | "memory_limit" | "plateau" | "max_batch",
             "limit_batch": int | None,   # batch size that hit OOM / memory limit
             "limit_error": str | None,   # the OOM message, truncated
             "frames_per_item": int, "device": str, "threads": int,
             "convention": str}

    Raises:
        ValueError: Empty or non-positive ``batch_sizes``, ``frames_per_item < 1``,
            ``min_calls < 1`` or negative ``min_duration_s``.
        RuntimeError: A CUDA device was requested but CUDA is not available, or
            the smallest batch size already exceeded ``max_memory_mb``.
        torch.OutOfMemoryError | RuntimeError | MemoryError: The smallest batch
            size ran out of memory (the original error is re-raised; nothing
            was measured). Non-OOM errors from ``run_batch`` always propagate.
    """
    from evbench.harness.memory import PeakMemory  # local: memory imports nothing from here

    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch_sizes must be non-empty positive ints, got {list(batch_sizes)}")
    if frames_per_item < 1:
        raise ValueError(f"frames_per_item must be >= 1, got {frames_per_item}")
    if min_calls < 1:
        raise ValueError(f"min_calls must be >= 1, got {min_calls}")
    if min_duration_s < 0:
        raise ValueError(f"min_duration_s must be >= 0, got {min_duration_s}")

    dev = _as_device(device)
    clk = _clock(clock)
    min_ns = int(round(min_duration_s * _NS_PER_S))

    per_batch: dict[int, float] = {}
    per_items: dict[int, float] = {}
    per_mem: dict[int, float] = {}
    stopped_by = "max_batch"
    limit_batch: int | None = None
    limit_error: str | None = None
    best_fps = -1.0
    misses = 0

    with _cuda_device_ctx(dev):
        for b in sizes:
            try:
                if max_memory_mb is not None:
                    with PeakMemory(dev) as pm:
                        run_batch(b)
                        _synchronize(dev)
                    peak = pm.peak_cuda_mb if dev.type == "cuda" else pm.peak_rss_mb
                    assert peak is not None
                    per_mem[b] = peak
                    if peak > max_memory_mb:
                        if not per_batch:
                            raise RuntimeError(
                                f"offline fps: smallest batch size {b} already needs {peak:.1f} MiB "
                                f"> max_memory_mb={max_memory_mb}"
                            )
                        stopped_by, limit_batch = "memory_limit", b
                        limit_error = f"peak {peak:.1f} MiB > max_memory_mb={max_memory_mb}"
                        break
                else:
                    run_batch(b)
                _synchronize(dev)
                calls = 0
                t0 = clk()
                elapsed = 0
                while calls < min_calls or elapsed < min_ns:
                    run_batch(b)
                    calls += 1
                    if calls >= min_calls:
                        _synchronize(dev)  # only needed once the window may close
                    elapsed = clk() - t0
            except Exception as exc:  # filtered by is_oom_error, others re-raised
                if not is_oom_error(exc) or not per_batch:
                    raise
                stopped_by, limit_batch, limit_error = "oom", b, str(exc)[:500]
            if stopped_by == "oom":
                # Outside the except block, so the traceback's frames (and the
                # tensors they hold) are released before the cache is emptied.
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                break
            seconds = max(elapsed, 1) / _NS_PER_S
            items = b * calls / seconds
            fps = items * frames_per_item
            per_items[b] = items
            per_batch[b] = fps
            if on_batch is not None:
                on_batch(b)
            if fps > best_fps * (1.0 + OFFLINE_IMPROVEMENT):
                misses = 0
            else:
                misses += 1
            best_fps = max(best_fps, fps)
            if misses >= OFFLINE_PATIENCE:
                stopped_by = "plateau"
                break

    best_batch = max(per_batch, key=lambda k: per_batch[k])
    return {
        "fps": per_batch[best_batch],
        "items_per_s": per_items[best_batch],
        "best_batch": best_batch,
        "per_batch": per_batch,
        "per_batch_items_per_s": per_items,
        "per_batch_peak_memory_mb": per_mem if max_memory_mb is not None else None,
        "stopped_by": stopped_by,
        "limit_batch": limit_batch,
        "limit_error": limit_error,
        "frames_per_item": frames_per_item,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "convention": _OFFLINE_CONVENTION,
    }


# --------------------------------------------------------------------------- stream

_STREAM_CONVENTION = (
    "online stream: frame i arrives at i/camera_fps on a simulated clock; the model, when "
    "free, processes the newest arrived frame and drops older waiting ones (latest-frame "
    "policy; a frame arriving exactly when processing starts counts as arrived); processing "
    "time = real host wall clock of run_frame (+ device synchronize), advancing the simulated "
    "clock; latency = result time - arrival time, ms; sustained_fps = processed frames / "
    "max(time of last result, num_frames/camera_fps); percentiles numpy method='linear'"
)


def measure_stream(
    run_frame: Callable[[int], Any],
    *,
    num_frames: int,
    camera_fps: float = 30.0,
    device: str | torch.device = "cpu",
    warmup: Sequence[Callable[[], Any]] = (),
    warmup_runs: int = 3,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Online stream throughput and latency with a latest-frame drop policy.

    Frame ``i`` (0-based) arrives at ``a_i = i / camera_fps`` seconds on a
    simulated clock that starts at 0 (arrivals are rounded to integer ns).
    The model is a single server: when it becomes free at simulated time
    ``t`` it takes the **newest** frame with ``a_i <= t`` that has not been
    handled; every older unhandled frame is **dropped** (never passed to
    ``run_frame``) — the latest-frame policy of live video pipelines, which
    bounds latency at the cost of frames. If no frame is waiting, the model
    idles until the next arrival. Processing time is the real host wall time
    of ``run_frame(i)`` (followed by ``torch.cuda.synchronize()`` on CUDA) and
    advances the simulated clock, so no sleeping is needed and the result does
    not depend on the speed of the machine except through processing times.

    ``run_frame`` is only called for processed frames, in increasing index
    order, so a stateful streaming method sees exactly the frames a live
    system would. Warm-up uses the separate ``warmup`` callables (they must
    not disturb the stream's state), each called ``warmup_runs`` times.

    Args:
        run_frame: Callable processing frame ``i`` (and whatever it needs:
            decode, pre-processing, model step), returning when the result is
            available.
        num_frames: Frames in the stream (>= 1).
        camera_fps: Camera frame rate, frames/s (> 0).
        device: Device the frames run on.
        warmup: Un-timed warm-up callables (e.g. one per input path).
        warmup_runs: Calls per warm-up callable (>= 0).
        clock: Nanosecond clock (tests); default ``time.perf_counter_ns``.

    Returns:
        A JSON-serialisable dict::

            {"sustained_fps": float,        # processed frames / stream span, frames/s
             "camera_fps": float, "num_frames": int,
             "processed_frames": int, "dropped_frames": int,
             "dropped_fraction": float,     # dropped / num_frames, 0-1
             "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms": float,
             "latency_samples_ms": list[float],   # arrival -> result, per processed frame
             "wait_mean_ms": float,          # arrival -> start of processing
             "processing_mean_ms", "processing_p50_ms": float,
             "model_fps": float,             # 1000 / processing_mean_ms, capacity
             "processed_indices": list[int],
             "duration_s": float,            # simulated stream span, seconds
             "device": str, "threads": int, "convention": str}

    Raises:
        ValueError: ``num_frames < 1``, ``camera_fps <= 0`` or ``warmup_runs < 0``.
        RuntimeError: A CUDA device was requested but CUDA is not available.
        Exception: Whatever ``run_frame`` raises propagates unchanged.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not camera_fps > 0:
        raise ValueError(f"camera_fps must be > 0, got {camera_fps}")
    if warmup_runs < 0:
        raise ValueError(f"warmup_runs must be >= 0, got {warmup_runs}")
    dev = _as_device(device)
    clk = _clock(clock)

    arrivals = [int(round(i * _NS_PER_S / camera_fps)) for i in range(num_frames)]
    latencies: list[float] = []
    waits: list[float] = []
    processing: list[float] = []
    processed: list[int] = []
    dropped = 0

    with _cuda_device_ctx(dev):
        for fn in warmup:
            for _ in range(warmup_runs):
                fn()
        _synchronize(dev)

        t = 0  # simulated ns
        nxt = 0  # first frame not yet processed or dropped
        while nxt < num_frames:
            newest = bisect.bisect_right(arrivals, t) - 1
            if newest < nxt:  # nothing waiting: idle until the next arrival
                t = arrivals[nxt]
                newest = nxt
            dropped += newest - nxt
            h0 = clk()
            run_frame(newest)
            _synchronize(dev)
            d = clk() - h0
            waits.append((t - arrivals[newest]) / _NS_PER_MS)
            t += d
            latencies.append((t - arrivals[newest]) / _NS_PER_MS)
            processing.append(d / _NS_PER_MS)
            processed.append(newest)
            nxt = newest + 1

    span_ns = max(t, int(round(num_frames * _NS_PER_S / camera_fps)))
    p50, p90, p99 = _percentiles_ms(latencies)
    proc_mean = float(np.mean(processing))
    return {
        "sustained_fps": len(processed) / (span_ns / _NS_PER_S) if span_ns > 0 else float("inf"),
        "camera_fps": float(camera_fps),
        "num_frames": num_frames,
        "processed_frames": len(processed),
        "dropped_frames": dropped,
        "dropped_fraction": dropped / num_frames,
        "latency_p50_ms": p50,
        "latency_p90_ms": p90,
        "latency_p99_ms": p99,
        "latency_mean_ms": float(np.mean(latencies)),
        "latency_samples_ms": latencies,
        "wait_mean_ms": float(np.mean(waits)),
        "processing_mean_ms": proc_mean,
        "processing_p50_ms": float(np.percentile(processing, 50, method=PERCENTILE_METHOD)),
        "model_fps": 1e3 / proc_mean if proc_mean > 0 else float("inf"),
        "processed_indices": processed,
        "duration_s": span_ns / _NS_PER_S,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "convention": _STREAM_CONVENTION,
    }
