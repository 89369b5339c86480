"""Tests for evbench.harness.timing: statistics with a fake clock, loop limits, CUDA path, FPS."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
from evbench.harness import timing
from evbench.harness.timing import (
    LatencyStats,
    Stopwatch,
    is_oom_error,
    measure_latency,
    measure_offline_fps,
    measure_stream,
)


class FakeClock:
    """Integer-nanosecond clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(round(ms * 1e6))


def cycling_run(clock: FakeClock, durations_ms: Sequence[float]) -> Callable[[], None]:
    """A query whose k-th call takes durations_ms[k % len] on the fake clock."""
    state = {"k": 0}

    def run() -> None:
        clock.advance_ms(durations_ms[state["k"] % len(durations_ms)])
        state["k"] += 1

    return run


# --------------------------------------------------------------------------- latency


def test_latency_statistics_exact_with_fake_clock() -> None:
    clock = FakeClock()
    durations = [float(i) for i in range(1, 11)]
    stats = measure_latency(
        cycling_run(clock, durations),
        warmup_runs=0,
        min_queries=10,
        min_duration_s=0.0,
        clock=clock,
    )
    assert stats.samples_ms == durations
    assert stats.n == 10
    assert stats.p50 == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(np.percentile(durations, 90, method="linear"))
    assert stats.p90 == pytest.approx(9.1)
    assert stats.p99 == pytest.approx(9.91)
    assert stats.mean == pytest.approx(5.5)
    assert stats.std == pytest.approx(np.std(durations, ddof=1))
    assert stats.duration_s == pytest.approx(0.055)
    assert stats.stopped_by == "targets_met"
    assert stats.timer == "perf_counter_ns"
    assert stats.wall_samples_ms is None
    assert stats.threads == torch.get_num_threads()
    assert stats.device == "cpu"
    assert "SingleStream" in stats.convention
    assert stats.met_minimums


def test_monkeypatched_perf_counter_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter_ns", clock)
    stats = measure_latency(
        cycling_run(clock, [3.0]), warmup_runs=0, min_queries=4, min_duration_s=0.0
    )
    assert stats.samples_ms == [3.0, 3.0, 3.0, 3.0]


def test_min_duration_extends_past_min_queries() -> None:
    clock = FakeClock()
    stats = measure_latency(
        cycling_run(clock, [1.0]), warmup_runs=0, min_queries=5, min_duration_s=0.02, clock=clock
    )
    assert stats.n == 20
    assert stats.duration_s >= 0.02
    assert stats.stopped_by == "targets_met"


def test_min_queries_extends_past_min_duration() -> None:
    clock = FakeClock()
    stats = measure_latency(
        cycling_run(clock, [100.0]), warmup_runs=0, min_queries=8, min_duration_s=0.1, clock=clock
    )
    assert stats.n == 8
    assert stats.stopped_by == "targets_met"


def test_max_duration_stops_and_is_recorded_honestly() -> None:
    clock = FakeClock()
    stats = measure_latency(
        cycling_run(clock, [100.0]),
        warmup_runs=0,
        min_queries=64,
        min_duration_s=0.5,
        max_duration_s=1.0,
        clock=clock,
    )
    assert stats.n == 10
    assert stats.stopped_by == "max_duration"
    assert not stats.met_minimums
    assert stats.to_dict()["stopped_by"] == "max_duration"


def test_max_queries_caps_the_loop() -> None:
    clock = FakeClock()
    stats = measure_latency(
        cycling_run(clock, [1.0]),
        warmup_runs=0,
        min_queries=3,
        min_duration_s=10.0,
        max_queries=7,
        clock=clock,
    )
    assert stats.n == 7
    assert stats.stopped_by == "max_queries"


def test_each_warmup_callable_runs_before_timing() -> None:
    clock = FakeClock()
    log: list[str] = []

    def make(name: str) -> Callable[[], None]:
        def fn() -> None:
            log.append(name)
            clock.advance_ms(50.0)  # warm-up time must not count

        return fn

    def run() -> None:
        log.append("run")
        clock.advance_ms(2.0)

    stats = measure_latency(
        run,
        warmup=[make("a"), make("b")],
        warmup_runs=2,
        min_queries=5,
        min_duration_s=0.0,
        clock=clock,
    )
    assert log[:6] == ["a", "a", "b", "b", "run", "run"]
    assert log.count("a") == 2 and log.count("b") == 2
    assert log.count("run") == 2 + stats.n
    assert stats.samples_ms == [2.0] * 5
    assert stats.duration_s == pytest.approx(0.010)
    assert stats.warmup_runs == 2
    assert stats.warmup_callables == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_queries": 0},
        {"warmup_runs": -1},
        {"min_duration_s": -1.0},
        {"max_duration_s": 0.0},
        {"min_duration_s": 5.0, "max_duration_s": 1.0},
        {"min_queries": 10, "max_queries": 5},
    ],
)
def test_latency_rejects_inconsistent_limits(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        measure_latency(lambda: None, **kwargs)


def test_errors_from_run_propagate() -> None:
    def boom() -> None:
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        measure_latency(boom, warmup_runs=0, min_queries=1, min_duration_s=0.0)


def test_real_clock_smoke_and_json() -> None:
    x = torch.randn(1, 16)
    layer = torch.nn.Linear(16, 4)
    with torch.inference_mode():
        stats = measure_latency(lambda: layer(x), warmup_runs=1, min_queries=5, min_duration_s=0.0)
    assert isinstance(stats, LatencyStats)
    assert stats.n >= 5
    assert all(s >= 0 for s in stats.samples_ms)
    assert stats.p50 <= stats.p90 <= stats.p99
    json.dumps(stats.to_dict(), allow_nan=False)


class FakeEvent:
    """Stands in for torch.cuda.Event: timestamps from the fake clock."""

    clock: FakeClock
    created: list[FakeEvent] = []

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing, "latency events must be created with enable_timing=True"
        self.t: int | None = None
        FakeEvent.created.append(self)

    def record(self, stream: object = None) -> None:
        self.t = self.clock()

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None
        return (end.t - self.t) / 1e6


def test_cuda_event_path_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    FakeEvent.clock = clock
    FakeEvent.created = []
    syncs: list[object] = []

    def fake_sync(device: object = None) -> None:
        syncs.append(device)
        clock.advance_ms(0.5)  # synchronisation overhead: in wall time, not in events

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", fake_sync)

    stats = measure_latency(
        cycling_run(clock, [2.0, 4.0]),
        device="cuda",
        warmup_runs=1,
        min_queries=4,
        min_duration_s=0.0,
        clock=clock,
    )
    assert stats.timer == "cuda_event"
    assert stats.device == "cuda"
    # the single warm-up call consumed the first 2.0 ms duration
    assert stats.samples_ms == [4.0, 2.0, 4.0, 2.0]
    assert stats.wall_samples_ms == [4.5, 2.5, 4.5, 2.5]
    assert len(FakeEvent.created) == 2  # one reusable pair
    assert len(syncs) == 1 + stats.n  # after warm-up, then once per query
    assert "torch.cuda.Event" in stats.convention


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_raises() -> None:
    with pytest.raises(RuntimeError, match="cuda"):
        measure_latency(lambda: None, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_real_cuda_latency() -> None:  # pragma: no cover - runs on GPU machines only
    x = torch.randn(8, 64, device="cuda")
    layer = torch.nn.Linear(64, 64).cuda()
    with torch.inference_mode():
        stats = measure_latency(lambda: layer(x), device="cuda", min_queries=8, min_duration_s=0)
    assert stats.n >= 8
    assert stats.timer == "cuda_event"
    assert stats.wall_samples_ms is not None and len(stats.wall_samples_ms) == stats.n
    assert all(s > 0 for s in stats.samples_ms)


# --------------------------------------------------------------------------- Stopwatch


def test_stopwatch_with_fake_clock() -> None:
    clock = FakeClock()
    with Stopwatch(clock=clock) as sw:
        clock.advance_ms(12.5)
        assert sw.ms == pytest.approx(12.5)  # running value inside the block
        clock.advance_ms(1.0)
    clock.advance_ms(100.0)  # after exit the value is frozen
    assert sw.ms == pytest.approx(13.5)
    assert sw.s == pytest.approx(0.0135)
    assert sw.ns == 13_500_000


def test_stopwatch_not_started() -> None:
    with pytest.raises(RuntimeError):
        _ = Stopwatch().ms


# --------------------------------------------------------------------------- offline


def linear_cost_batch(
    clock: FakeClock, overhead_ms: float, per_item_ms: float, calls: list[int] | None = None
) -> Callable[[int], None]:
    def run_batch(b: int) -> None:
        if calls is not None:
            calls.append(b)
        clock.advance_ms(overhead_ms + per_item_ms * b)

    return run_batch


def test_offline_fps_search_with_fake_clock() -> None:
    clock = FakeClock()
    res = measure_offline_fps(
        linear_cost_batch(clock, 10.0, 1.0),
        frames_per_item=8,
        batch_sizes=(4, 1, 2, 8, 16, 32, 64, 64),
        min_duration_s=0.05,
        clock=clock,
    )
    expected_items = {b: b / (0.010 + 0.001 * b) for b in (1, 2, 4, 8, 16, 32, 64)}
    assert list(res["per_batch"]) == [1, 2, 4, 8, 16, 32, 64]
    for b, items in expected_items.items():
        assert res["per_batch_items_per_s"][b] == pytest.approx(items)
        assert res["per_batch"][b] == pytest.approx(items * 8)
    assert res["best_batch"] == 64
    assert res["fps"] == pytest.approx(expected_items[64] * 8)
    assert res["items_per_s"] == pytest.approx(expected_items[64])
    assert res["stopped_by"] == "max_batch"
    assert res["limit_batch"] is None
    assert "Offline" in res["convention"]
    json.dumps(res, allow_nan=False)


def test_offline_stops_on_plateau() -> None:
    clock = FakeClock()
    res = measure_offline_fps(
        linear_cost_batch(clock, 0.0, 1.0),  # constant 1000 items/s at every batch size
        frames_per_item=1,
        min_duration_s=0.01,
        clock=clock,
    )
    assert res["stopped_by"] == "plateau"
    assert list(res["per_batch"]) == [1, 2, 4]
    assert res["best_batch"] == 1
    assert res["fps"] == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
        ),
        MemoryError(),
    ],
)
def test_offline_stops_at_simulated_oom(error: BaseException) -> None:
    clock = FakeClock()
    inner = linear_cost_batch(clock, 5.0, 1.0)

    def run_batch(b: int) -> None:
        if b >= 16:
            raise error
        inner(b)

    res = measure_offline_fps(run_batch, frames_per_item=4, min_duration_s=0.02, clock=clock)
    assert res["stopped_by"] == "oom"
    assert res["limit_batch"] == 16
    assert list(res["per_batch"]) == [1, 2, 4, 8]
    assert res["best_batch"] == 8
    assert res["limit_error"] is not None


def test_offline_oom_at_smallest_batch_reraises() -> None:
    def run_batch(b: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        measure_offline_fps(run_batch, frames_per_item=1, min_duration_s=0.0)


def test_offline_non_oom_errors_propagate() -> None:
    clock = FakeClock()
    inner = linear_cost_batch(clock, 1.0, 1.0)

    def run_batch(b: int) -> None:
        if b == 4:
            raise RuntimeError("shape mismatch")
        inner(b)

    with pytest.raises(RuntimeError, match="shape mismatch"):
        measure_offline_fps(run_batch, frames_per_item=1, min_duration_s=0.0, clock=clock)


def test_offline_memory_limit() -> None:
    from evbench.harness.memory import process_rss_mb

    clock = FakeClock()
    limit = process_rss_mb() + 150.0
    held: list[np.ndarray] = []

    def run_batch(b: int) -> None:
        a = np.ones(b * 16 * 2**20 // 8)  # b x 16 MiB, touched
        held.append(a[:1].copy())
        del a
        clock.advance_ms(10.0 + 1.0 * b)  # improving throughput: no plateau

    res = measure_offline_fps(
        run_batch,
        frames_per_item=2,
        batch_sizes=(1, 2, 4, 16),
        min_duration_s=0.0,
        min_calls=1,
        max_memory_mb=limit,
        clock=clock,
    )
    assert res["stopped_by"] == "memory_limit"
    assert res["limit_batch"] == 16
    assert list(res["per_batch"]) == [1, 2, 4]
    assert set(res["per_batch_peak_memory_mb"]) == {1, 2, 4, 16}
    assert res["per_batch_peak_memory_mb"][16] > limit


def test_offline_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        measure_offline_fps(lambda b: None, frames_per_item=1, batch_sizes=())
    with pytest.raises(ValueError):
        measure_offline_fps(lambda b: None, frames_per_item=1, batch_sizes=(0, 1))
    with pytest.raises(ValueError):
        measure_offline_fps(lambda b: None, frames_per_item=0)


def test_is_oom_error() -> None:
    assert is_oom_error(torch.OutOfMemoryError("x"))
    assert is_oom_error(RuntimeError("CUDA out of memory"))
    assert not is_oom_error(RuntimeError("size mismatch"))
    assert not is_oom_error(ValueError("out of memory"))


# --------------------------------------------------------------------------- stream


def test_stream_latest_frame_drop_policy() -> None:
    clock = FakeClock()
    seen: list[int] = []

    def run_frame(i: int) -> None:
        seen.append(i)
        clock.advance_ms(250.0)

    res = measure_stream(run_frame, num_frames=10, camera_fps=10.0, clock=clock)
    # arrivals every 100 ms; model busy 250 ms -> takes the newest waiting frame
    assert seen == [0, 2, 5, 7, 9]
    assert res["processed_indices"] == [0, 2, 5, 7, 9]
    assert res["processed_frames"] == 5
    assert res["dropped_frames"] == 5
    assert res["dropped_fraction"] == pytest.approx(0.5)
    assert res["latency_samples_ms"] == pytest.approx([250.0, 300.0, 250.0, 300.0, 350.0])
    assert res["latency_p50_ms"] == pytest.approx(300.0)
    assert res["latency_p90_ms"] == pytest.approx(
        np.percentile([250, 300, 250, 300, 350], 90, method="linear")
    )
    assert res["latency_mean_ms"] == pytest.approx(290.0)
    assert res["wait_mean_ms"] == pytest.approx(40.0)
    assert res["processing_mean_ms"] == pytest.approx(250.0)
    assert res["model_fps"] == pytest.approx(4.0)
    assert res["duration_s"] == pytest.approx(1.25)
    assert res["sustained_fps"] == pytest.approx(4.0)
    json.dumps(res, allow_nan=False)


def test_stream_fast_model_keeps_up() -> None:
    clock = FakeClock()
    res = measure_stream(
        lambda i: clock.advance_ms(10.0), num_frames=30, camera_fps=30.0, clock=clock
    )
    assert res["dropped_frames"] == 0
    assert res["processed_frames"] == 30
    assert res["latency_samples_ms"] == pytest.approx([10.0] * 30)
    assert res["wait_mean_ms"] == pytest.approx(0.0)
    assert res["sustained_fps"] == pytest.approx(30.0)


def test_stream_warmup_does_not_touch_stream() -> None:
    clock = FakeClock()
    calls: list[str] = []
    res = measure_stream(
        lambda i: calls.append(f"f{i}"),
        num_frames=3,
        warmup=[lambda: calls.append("w")],
        warmup_runs=2,
        clock=clock,
    )
    assert calls == ["w", "w", "f0", "f1", "f2"]
    assert res["processed_frames"] == 3


def test_stream_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        measure_stream(lambda i: None, num_frames=0)
    with pytest.raises(ValueError):
        measure_stream(lambda i: None, num_frames=5, camera_fps=0.0)
