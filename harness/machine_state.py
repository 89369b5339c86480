"""Machine state around a timed window: load, clocks, governor, competing CPU use, throttling.

A latency measured while another process took a core is not a property of the
method.  :func:`snapshot` records what the machine looked like just before
timing; :class:`TimedWindow` brackets the timed queries and measures how much
CPU *other* processes used during them, so that the row can be flagged
``noisy`` and kept out of regression verdicts (:mod:`evbench.harness.compare`).

How "other processes' CPU share" is measured: the system-wide busy CPU time
(``psutil.cpu_times()``: user + nice + system + irq + softirq + steal, summed
over all cores) minus this process's own CPU time (``psutil.Process().cpu_times()``,
all its threads, plus children) over the window, divided by the window's wall
time.  The unit is *cores*: 1.0 means one core fully used by others for the
whole window; 0.25 (the default :data:`NOISY_SHARE`) is a quarter of one core.
``steal`` counts too: on a virtual machine, time the hypervisor gave to other
guests is equally lost to the measurement.  The processes that used most CPU in
the window are listed (``top_others``) when ``per_process`` is on.

Everything not readable on the platform is ``None`` (or the key is absent),
never guessed: CPU frequency and governor from ``/sys/devices/system/cpu``
(Linux cpufreq; many VMs have none), thermal throttle counters of x86 cores
(``thermal_throttle/*_throttle_count``), temperatures from
``psutil.sensors_temperatures()`` (Jetson thermal zones included), NVIDIA GPU
throttle reasons from NVML (``nvidia-ml-py``) when a GPU is present.

The threshold can be set per call, or for a whole process with the
environment variable ``EVBENCH_NOISY_SHARE`` (cores, e.g. ``0.5``).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import psutil

__all__ = ["NOISY_SHARE", "TimedWindow", "noisy_share", "snapshot"]

#: Default threshold: other processes using more than this many cores (0.25 = a
#: quarter of one core) during a timed window make it ``noisy``.
NOISY_SHARE = 0.25

_CPU_SYS = Path("/sys/devices/system/cpu")
_NVML_THERMAL = 0x8 | 0x20 | 0x40
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal", "guest", "guest_nice")


def noisy_share(value: float | None = None) -> float:
    """The noisy threshold in cores: ``value``, else ``$EVBENCH_NOISY_SHARE``, else :data:`NOISY_SHARE`.

    Raises:
        ValueError: The value (or the environment variable) is not a number >= 0.
    """
    if value is None:
        env = os.environ.get("EVBENCH_NOISY_SHARE")
        if env is None or not env.strip():
            return NOISY_SHARE
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"EVBENCH_NOISY_SHARE must be a number of cores (e.g. 0.25), got {env!r}") from None
    if not value >= 0:
        raise ValueError(f"noisy share must be >= 0 cores, got {value}")
    return float(value)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpufreq() -> dict[str, Any]:
    """Current/min/max CPU frequency in MHz (psutil) and the cpufreq governors in use."""
    out: dict[str, Any] = {"cpu_mhz": None, "cpu_mhz_min": None, "cpu_mhz_max": None, "governor": None}
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        freq = None
    if freq is not None:
        out.update(cpu_mhz=round(freq.current, 1) if freq.current else None,
                   cpu_mhz_min=round(freq.min, 1) if freq.min else None,
                   cpu_mhz_max=round(freq.max, 1) if freq.max else None)
    governors = sorted({g for p in _CPU_SYS.glob("cpu[0-9]*/cpufreq/scaling_governor") if (g := _read(p))})
    if governors:
        out["governor"] = ",".join(governors)
    return out


def _throttle_counts() -> int | None:
    """Sum of x86 per-core and per-package thermal throttle counters, None where absent."""
    total, found = 0, False
    for p in _CPU_SYS.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"):
        text = _read(p)
        if text is not None and text.isdigit():
            total += int(text)
            found = True
    return total if found else None


def _max_temperature() -> float | None:
    """Highest temperature reported by any sensor (°C; Jetson thermal zones included), None where unreadable."""
    try:
        sensors = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        return None
    temps = [t.current for entries in (sensors or {}).values() for t in entries if t.current is not None]
    return round(max(temps), 1) if temps else None


def _nvml_throttle() -> list[dict[str, Any]] | None:
    """Per-GPU NVML clock-throttle reason bitmask, SM clock (MHz) and temperature (°C); None without NVML."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / library: not an NVIDIA machine
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            reasons = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)
            out.append({
                "index": i,
                "throttle_reasons": int(reasons),
                # thermal reasons only (HW slowdown 0x8, SW thermal 0x20, HW thermal 0x40): power capping
                # under load is the GPU's normal operating state, not an anomaly of this window
                "throttled": bool(reasons & _NVML_THERMAL),
                "sm_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                "temperature_c": pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
            })
        return out
    except Exception:  # a query not supported on this GPU
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def snapshot() -> dict[str, Any]:
    """The machine's state now.

    Returns:
        ``load_1min`` (the 1-minute load average, runnable processes, from
        ``os.getloadavg``; None where unavailable), ``cpu_count`` (logical),
        ``cpu_mhz`` / ``cpu_mhz_min`` / ``cpu_mhz_max`` (MHz, psutil),
        ``governor`` (cpufreq governors in use, comma-joined), ``temperature_c``
        (highest sensor reading, °C), ``thermal_throttle_count`` (x86 cores'
        cumulative throttle events) and ``gpu`` (NVML per-GPU throttle state,
        None without NVML). Unreadable values are None.
    """
    try:
        load1: float | None = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load1 = None
    return {
        "load_1min": load1,
        "cpu_count": psutil.cpu_count(logical=True),
        **_cpufreq(),
        "temperature_c": _max_temperature(),
        "thermal_throttle_count": _throttle_counts(),
        "gpu": _nvml_throttle(),
    }


def _busy_s(times: Any) -> float:
    """Busy CPU seconds summed over cores (every psutil field but idle and iowait)."""
    return float(sum(getattr(times, f, 0.0) or 0.0 for f in _BUSY_FIELDS))


def _own_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0))


def _process_times(own_pid: int) -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.pid == own_pid:
            continue
        t = p.info.get("cpu_times")
        if t is not None:
            out[p.pid] = (p.info.get("name") or "?", float(t.user + t.system))
    return out


class TimedWindow:
    """Context manager measuring the machine around a timed window.

    Usage::

        with TimedWindow() as win:
            ... timed queries ...
        state, noisy = win.result()

    On entry: :func:`snapshot` and the CPU counters; on exit: the counters
    again, the other processes' share and a second snapshot's load and
    frequency.

    Args:
        threshold: Noisy threshold in cores (see :func:`noisy_share`).
        per_process: Also list the (up to 3) other processes that used most CPU
            in the window (one ``psutil.process_iter`` pass at each end, outside
            the first and after the last timed query).

    Raises:
        ValueError: Invalid ``threshold``.
    """

    def __init__(self, threshold: float | None = None, *, per_process: bool = True) -> None:
        self.threshold = noisy_share(threshold)
        self.per_process = per_process
        self._proc = psutil.Process()
        self._state: dict[str, Any] | None = None
        self._noisy: bool | None = None

    def __enter__(self) -> TimedWindow:
        self._before = snapshot()
        self._procs0 = _process_times(self._proc.pid) if self.per_process else {}
        self._t0 = time.monotonic()
        self._busy0 = _busy_s(psutil.cpu_times())
        self._own0 = _own_s(self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        busy1 = _busy_s(psutil.cpu_times())
        own1 = _own_s(self._proc)
        wall = max(time.monotonic() - self._t0, 1e-9)
        others_s = max(0.0, (busy1 - self._busy0) - (own1 - self._own0))
        share = others_s / wall
        top: list[dict[str, Any]] = []
        if self.per_process:
            procs1 = _process_times(self._proc.pid)
            deltas = [(procs1[pid][1] - t0, name, pid) for pid, (name, t0) in self._procs0.items() if pid in procs1]
            top = [{"pid": pid, "name": name, "cores": round(d / wall, 3)}
                   for d, name, pid in sorted(deltas, reverse=True)[:3] if d > 0]
        after = snapshot()
        throttle = None
        if self._before["thermal_throttle_count"] is not None and after["thermal_throttle_count"] is not None:
            throttle = after["thermal_throttle_count"] - self._before["thermal_throttle_count"]
        gpu_throttled = None
        if after["gpu"] is not None:
            gpu_throttled = any(g["throttled"] for g in after["gpu"])
        self._noisy = share > self.threshold
        self._state = {
            "before": self._before,
            "after": {k: after[k] for k in ("load_1min", "cpu_mhz", "temperature_c", "gpu")},
            "window_s": round(wall, 4),
            "own_cpu_cores": round((own1 - self._own0) / wall, 3),
            "others_cpu_cores": round(share, 3),
            "top_others": top,
            "noisy_threshold_cores": self.threshold,
            "thermal_throttle_events": throttle,
            "gpu_throttled": gpu_throttled,
            "method": "others = (system busy CPU s - own process CPU s) / window wall s, in cores (psutil)",
        }

    def result(self) -> tuple[dict[str, Any], bool]:
        """``(machine_state, noisy)`` of the finished window.

        ``noisy`` is True when other processes used more than ``threshold``
        cores, or when a thermal throttle event or a throttled GPU was seen.

        Raises:
            RuntimeError: The window has not finished.
        """
        if self._state is None or self._noisy is None:
            raise RuntimeError("TimedWindow.result() before the window closed")
        noisy = self._noisy or bool(self._state["thermal_throttle_events"]) or bool(self._state["gpu_throttled"])
        return self._state, noisy
