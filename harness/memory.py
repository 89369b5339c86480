"""Peak memory of a block of code: process RSS and CUDA allocation.

Units: every ``*_mb`` value is **MiB** (2**20 bytes), named "MB" in keys as
most tools (``nvidia-smi``, ``torch.cuda.memory_summary``) do.

* **Peak RSS** — resident set size of this process (``psutil``), the memory a
  user's machine must actually provide, including the Python interpreter,
  torch's CPU allocator caches and every loaded library. It is sampled by a
  daemon thread every ``interval_s`` (2 ms) plus readings at entry and exit.
  On Linux the kernel's own high-water mark (``VmHWM`` in
  ``/proc/self/status``) is additionally reset at entry (by writing ``5`` to
  ``/proc/self/clear_refs``) and read at exit, which makes the peak exact even
  for spikes shorter than the sampling interval. The reset is process-wide:
  enclosing :class:`PeakMemory` blocks are folded the current high-water mark
  before it happens, so nesting stays correct; other code reading ``VmHWM``
  or ``ru_maxrss`` of this process will see the reset.
* **Peak CUDA allocation** — ``torch.cuda.max_memory_allocated(device)`` after
  ``torch.cuda.reset_peak_memory_stats(device)`` at entry: bytes held by live
  tensors at their peak, excluding the caching allocator's reserved-but-free
  blocks and the CUDA context. ``None`` off CUDA.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import psutil
import torch

__all__ = ["MIB", "PeakMemory", "process_rss_mb", "release_free_heap"]

MIB = float(2**20)
"""Bytes per MiB; every ``*_mb`` value in this module is bytes / MIB."""

_PROCESS = psutil.Process(os.getpid())
_PROCESS_PID = os.getpid()

_ACTIVE: list[PeakMemory] = []
_ACTIVE_LOCK = threading.Lock()


def _process() -> psutil.Process:
    """The psutil handle of this process (re-created after a fork)."""
    global _PROCESS, _PROCESS_PID
    if os.getpid() != _PROCESS_PID:
        _PROCESS, _PROCESS_PID = psutil.Process(os.getpid()), os.getpid()
    return _PROCESS


def process_rss_mb() -> float:
    """Current resident set size of this process.

    Returns:
        RSS in MiB (2**20 bytes), from ``psutil.Process().memory_info().rss``.
    """
    return _process().memory_info().rss / MIB


def release_free_heap() -> bool:
    """Hand the C heap's free memory back to the system (glibc ``malloc_trim(0)``), so RSS drops after a big free.

    Called after the training memo (:mod:`evbench.harness.frozen_memo`) frees
    its outputs, so that a later cell's peak RSS does not carry them.

    Returns:
        True if memory was released; False where there is no glibc (macOS,
        musl) or nothing could be released.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _read_hwm_mb() -> float | None:
    """Linux ``VmHWM`` (peak RSS since start or last reset) in MiB, or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB  # value is in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS; True on success (Linux >= 4.0)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager measuring peak process RSS and peak CUDA allocation.

    Example::

        with PeakMemory("cuda:0") as pm:
            model(x)
        row.update(pm.to_dict())   # peak_rss_mb, peak_cuda_mb, ...

    Args:
        device: Device of the measured work. For a CUDA device the CUDA peak
            is measured on that device (index 0 / current device if none given).
        interval_s: RSS sampling period of the daemon thread, seconds (> 0).
        use_hwm: Also use the Linux kernel high-water mark (see module
            docstring); silently falls back to sampling only where unavailable.
        sample_with_hwm: Run the sampling thread even where the high-water
            mark is in use (default).  ``False`` takes the peak from ``VmHWM``
            alone — exact — and starts no thread that wakes every
            ``interval_s`` to compete with the measured work for a core; the
            single-stream latency window uses it (on a 2-core CPU the 2 ms
            sampler made the timed torch queries several % slower than the
            same queries outside it).  Where ``VmHWM`` is unavailable the
            thread runs anyway.

    Attributes:
        device: Device string.
        baseline_rss_mb: RSS at entry, MiB.
        peak_rss_mb: Peak RSS during the block, MiB (>= baseline_rss_mb).
        peak_cuda_mb: Peak CUDA allocation during the block, MiB; ``None``
            off CUDA.
        baseline_cuda_mb: CUDA allocation at entry, MiB; ``None`` off CUDA.
        samples: Number of RSS readings taken (thread samples + entry/exit).
        rss_method: ``"sampled+VmHWM"``, ``"sampled"`` or ``"VmHWM"`` (no thread).

    Raises:
        ValueError: ``interval_s <= 0``.
        RuntimeError: (at entry) a CUDA device but CUDA is not available.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        interval_s: float = 0.002,
        use_hwm: bool = True,
        sample_with_hwm: bool = True,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._dev = torch.device(device)
        self.device = str(self._dev)
        self.interval_s = float(interval_s)
        self.use_hwm = use_hwm
        self.sample_with_hwm = sample_with_hwm
        self.baseline_rss_mb: float = 0.0
        self.peak_rss_mb: float = 0.0
        self.peak_cuda_mb: float | None = None
        self.baseline_cuda_mb: float | None = None
        self.samples: int = 0
        self.rss_method: str = "sampled"
        self._hwm_active = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ internals

    def _observe(self, mb: float | None) -> None:
        if mb is None:
            return
        with self._lock:
            if mb > self.peak_rss_mb:
                self.peak_rss_mb = mb

    def _sample(self) -> None:
        self._observe(process_rss_mb())
        with self._lock:
            self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample()
            except psutil.Error:  # pragma: no cover - process vanished
                return

    @property
    def _is_cuda(self) -> bool:
        return self._dev.type == "cuda"

    # ------------------------------------------------------------------ protocol

    def __enter__(self) -> PeakMemory:
        if self._is_cuda:
            if not torch.cuda.is_available():
                raise RuntimeError(f"device {self._dev} requested but CUDA is not available")
            torch.cuda.synchronize(self._dev)
            torch.cuda.reset_peak_memory_stats(self._dev)
            self.baseline_cuda_mb = torch.cuda.memory_allocated(self._dev) / MIB
        self._stop.clear()
        self.samples = 0
        self.baseline_rss_mb = process_rss_mb()
        self.peak_rss_mb = self.baseline_rss_mb
        self.samples = 1
        with _ACTIVE_LOCK:
            if self.use_hwm:
                hwm_now = _read_hwm_mb()
                for other in _ACTIVE:  # fold the mark before resetting it under them
                    if other._hwm_active:
                        other._observe(hwm_now)
                self._hwm_active = hwm_now is not None and _reset_hwm()
            _ACTIVE.append(self)
        if self._hwm_active and not self.sample_with_hwm:
            self.rss_method = "VmHWM"  # exact, and no thread beside the measured work
            return self
        self.rss_method = "sampled+VmHWM" if self._hwm_active else "sampled"
        self._thread = threading.Thread(target=self._run, name="evbench-PeakMemory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._is_cuda:
            torch.cuda.synchronize(self._dev)
            self.peak_cuda_mb = torch.cuda.max_memory_allocated(self._dev) / MIB
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
        with _ACTIVE_LOCK:
            if self._hwm_active:
                self._observe(_read_hwm_mb())
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            self._hwm_active = False

    # ------------------------------------------------------------------ results

    @property
    def delta_rss_mb(self) -> float:
        """Peak RSS above the entry baseline, MiB (>= 0)."""
        return self.peak_rss_mb - self.baseline_rss_mb

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary.

        Returns:
            ``{"peak_rss_mb", "baseline_rss_mb", "delta_rss_mb", "peak_cuda_mb",
            "baseline_cuda_mb", "device", "rss_method", "rss_samples",
            "memory_unit": "MiB"}``; CUDA values are ``None`` off CUDA.
        """
        return {
            "peak_rss_mb": self.peak_rss_mb,
            "baseline_rss_mb": self.baseline_rss_mb,
            "delta_rss_mb": self.delta_rss_mb,
            "peak_cuda_mb": self.peak_cuda_mb,
            "baseline_cuda_mb": self.baseline_cuda_mb,
            "device": self.device,
            "rss_method": self.rss_method,
            "rss_samples": self.samples,
            "memory_unit": "MiB",
        }
