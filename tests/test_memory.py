"""Tests for harness.memory: peak RSS (sampled and kernel high-water mark), CUDA peak."""

from __future__ import annotations

import gc
import json
import sys
import time

import numpy as np
import pytest
import torch
from evbench.harness import memory
from evbench.harness.memory import PeakMemory, process_rss_mb

ALLOC_MIB = 200
# Allow for pages the allocator/kernel account differently; 200 MiB is touched.
MIN_SEEN_MIB = 190


@pytest.fixture(autouse=True)
def _no_collection_inside_the_measured_blocks():
    """Collect earlier tests' garbage first and keep the cyclic GC off while a test runs.

    In the full suite a collection during a block can free hundreds of MiB
    that earlier tests left in reference cycles, cancelling the RSS growth the
    block is meant to show (seen once: ``delta_rss_mb`` 0.0 for a 200 MiB array).
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def touched_array(mib: int = ALLOC_MIB) -> np.ndarray:
    """An array of ``mib`` MiB whose pages are all resident (np.ones writes them)."""
    return np.ones(mib * 2**20 // 8, dtype=np.float64)


def wait_for_samples(pm: PeakMemory, extra: int, timeout_s: float = 10.0) -> None:
    """Block until the sampler thread has taken ``extra`` more readings."""
    target = pm.samples + extra
    deadline = time.monotonic() + timeout_s
    while pm.samples < target:
        if time.monotonic() > deadline:
            pytest.fail("PeakMemory sampler thread made no progress")
        time.sleep(0.001)


def test_process_rss_mb_is_positive() -> None:
    rss = process_rss_mb()
    assert isinstance(rss, float)
    assert rss > 1.0


def test_sees_allocation_held_in_block() -> None:
    with PeakMemory() as pm:
        a = touched_array()
        a[::4096] += 1.0
    assert pm.delta_rss_mb >= MIN_SEEN_MIB
    assert pm.peak_rss_mb >= pm.baseline_rss_mb + MIN_SEEN_MIB
    assert pm.peak_cuda_mb is None
    del a


def test_sampler_sees_allocation_freed_inside_block() -> None:
    with PeakMemory(use_hwm=False) as pm:
        a = touched_array()
        wait_for_samples(pm, 2)  # the array is alive across two samples
        del a
    assert pm.rss_method == "sampled"
    assert pm.delta_rss_mb >= MIN_SEEN_MIB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_kernel_high_water_mark_sees_short_spike() -> None:
    with PeakMemory(interval_s=10.0) as pm:  # sampler effectively off
        a = touched_array()
        del a
    if pm.rss_method != "sampled+VmHWM":
        pytest.skip("/proc/self/clear_refs not writable here")
    assert pm.delta_rss_mb >= MIN_SEEN_MIB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_nested_blocks_both_see_the_peak() -> None:
    with PeakMemory(interval_s=10.0) as outer:
        with PeakMemory(interval_s=10.0) as inner:
            a = touched_array()
            del a
        b = touched_array(50)  # after the inner reset: outer must still keep the earlier peak
        del b
    if outer.rss_method != "sampled+VmHWM":
        pytest.skip("/proc/self/clear_refs not writable here")
    assert inner.delta_rss_mb >= MIN_SEEN_MIB
    assert outer.delta_rss_mb >= MIN_SEEN_MIB
    assert not memory._ACTIVE


def test_to_dict_is_json_serialisable() -> None:
    with PeakMemory() as pm:
        pass
    d = pm.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["memory_unit"] == "MiB"
    assert d["peak_cuda_mb"] is None
    assert d["peak_rss_mb"] >= d["baseline_rss_mb"] > 0
    assert d["rss_samples"] >= 2
    assert d["device"] == "cpu"


def test_exception_in_block_propagates_and_cleans_up() -> None:
    with pytest.raises(KeyError), PeakMemory() as pm:
        raise KeyError("x")
    assert pm._thread is None
    assert pm not in memory._ACTIVE


def test_rejects_bad_interval() -> None:
    with pytest.raises(ValueError):
        PeakMemory(interval_s=0.0)


def test_cuda_path_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(
        torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset")
    )
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 10 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 300 * 2**20)
    with PeakMemory("cuda:0") as pm:
        calls.append("body")
    assert calls == ["sync", "reset", "body", "sync"]
    assert pm.peak_cuda_mb == pytest.approx(300.0)
    assert pm.baseline_cuda_mb == pytest.approx(10.0)
    assert pm.to_dict()["device"] == "cuda:0"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_raises() -> None:
    with pytest.raises(RuntimeError, match="CUDA"), PeakMemory("cuda"):
        pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_real_cuda_peak() -> None:  # pragma: no cover - runs on GPU machines only
    with PeakMemory("cuda") as pm:
        x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
        del x
    assert pm.peak_cuda_mb is not None and pm.peak_cuda_mb >= 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_high_water_mark_alone_starts_no_thread_and_sees_the_peak() -> None:
    with PeakMemory(sample_with_hwm=False) as pm:
        running = pm._thread
        a = touched_array()
        del a
    if pm.rss_method == "sampled":
        pytest.skip("/proc/self/clear_refs not writable here (the thread samples instead)")
    assert pm.rss_method == "VmHWM"
    assert running is None  # nothing competes with the measured work for a core
    assert pm.delta_rss_mb >= MIN_SEEN_MIB
