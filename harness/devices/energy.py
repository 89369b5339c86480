"""Energy per clip from the platform's counter: NVML, RAPL or the Jetson power rails.

:func:`open_meter` picks the meter for a device (DESIGN §4, "Energy"):

* on a Jetson (any device) — :class:`JetsonRailMeter`: the total-board INA3221
  rail (``VDD_IN`` / ``POM_5V_IN``) sampled in a background thread at a fixed
  interval, integrated over time with the trapezoid rule;
* ``cuda[:N]`` — :class:`NvmlMeter` when NVML initialises: the GPU's energy
  counter ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta and newer), else
  ``nvmlDeviceGetPowerUsage`` (mW) sampled in a thread and integrated;
* ``cpu`` on x86 — :class:`RaplMeter` when ``/sys/class/powercap/intel-rapl:*/energy_uj``
  of the package domains is readable (often root-only; counters wrap at
  ``max_energy_range_uj``);
* otherwise None: energy is then absent, never invented.

Every meter records its ``source`` and sampling ``interval_s`` (None for a
hardware counter read only at the window's ends), and every reading says so.

:func:`evbench.harness.timing.measure_latency` calls ``start()`` right before the timed
queries and ``stop()`` right after; joules ÷ queries is ``energy_j_per_clip``.
"""

from __future__ import annotations

import glob
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evbench.harness.devices import jetson

__all__ = [
    "EnergyMeter",
    "EnergyReading",
    "JetsonRailMeter",
    "NvmlMeter",
    "RaplMeter",
    "nvml_index",
    "open_meter",
    "rapl_domains",
]

#: Default sampling interval of sampled meters, seconds.
DEFAULT_INTERVAL_S = 0.05
#: RAPL counters are read this often (s) so that a wrap-around between reads is seen once at most.
RAPL_POLL_S = 1.0

_POWERCAP = "sys/class/powercap"


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one measured window.

    Attributes:
        joules: Energy in J over the window, or None when the counter could not be read.
        source: Which counter (``"nvml"``, ``"rapl"``, ``"jetson-rails"``).
        method: How it was obtained, e.g. ``"nvmlDeviceGetTotalEnergyConsumption (mJ counter)"``
            or ``"VDD_IN sampled every 0.05 s, trapezoid rule"``.
        interval_s: Sampling interval in s for sampled meters; None for a counter read at both ends.
        duration_s: Length of the window, s.
        samples: Number of power samples integrated (sampled meters), else None.
    """

    joules: float | None
    source: str
    method: str = ""
    interval_s: float | None = None
    duration_s: float | None = None
    samples: int | None = None


class EnergyMeter:
    """Interface: ``start()`` opens a window, ``stop()`` closes it and returns an :class:`EnergyReading`.

    Attributes:
        source: Counter name (``"nvml"``, ``"rapl"``, ``"jetson-rails"``).
        interval_s: Sampling interval in s, or None for a hardware energy counter.
    """

    source: str = ""
    interval_s: float | None = None

    def start(self) -> None:  # pragma: no cover - interface
        """Open the measurement window."""
        raise NotImplementedError

    def stop(self) -> EnergyReading:  # pragma: no cover - interface
        """Close the window and return its energy."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the counter (no-op unless overridden)."""


class _PowerSamplingMeter(EnergyMeter):
    """Integrates a power reader (mW) sampled in a thread (shared by Jetson rails and NVML fallback)."""

    def __init__(self, read_mw: Callable[[], float | None], *, source: str, what: str,
                 interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] | None = None,
                 threaded: bool = True) -> None:
        self.source = source
        self.interval_s = float(interval_s)
        self._what = what
        self.sampler = jetson.RailSampler(read_mw, interval_s=interval_s, clock=clock, threaded=threaded)

    def start(self) -> None:
        """Take the first power sample and start the sampling thread."""
        self.sampler.start()

    def stop(self) -> EnergyReading:
        """Stop sampling; joules by the trapezoid rule over the samples (None if < 2 valid)."""
        samples = self.sampler.stop()
        valid = [(t, p) for t, p in samples if p is not None]
        duration = samples[-1][0] - samples[0][0] if len(samples) >= 2 else 0.0
        return EnergyReading(
            joules=jetson.integrate_trapezoid_j(valid),
            source=self.source,
            method=f"{self._what} sampled every {self.interval_s:g} s, trapezoid rule"
            + (f" ({self.sampler.failed_reads} failed reads skipped)" if self.sampler.failed_reads else ""),
            interval_s=self.interval_s,
            duration_s=duration,
            samples=len(valid),
        )


class JetsonRailMeter(_PowerSamplingMeter):
    """Board energy on a Jetson from the INA3221 total rail (``VDD_IN`` / ``POM_5V_IN``).

    Args:
        root: Filesystem root (tests build a fake sysfs tree).
        interval_s: Sampling interval, s.
        clock: Monotonic clock in s (tests).
        threaded: False samples only at start/stop (tests).

    Raises:
        FileNotFoundError: No readable INA3221 rail under ``root``.
    """

    def __init__(self, root: str = "/", *, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] | None = None, threaded: bool = True) -> None:
        found = jetson.total_rail_reader(root)
        if found is None:
            raise FileNotFoundError(
                f"no readable INA3221 rail under {os.path.join(root, 'sys/bus/i2c/drivers/ina3221*')}")
        self.rail, read_mw, self.rail_info = found
        super().__init__(read_mw, source="jetson-rails", what=self.rail, interval_s=interval_s,
                         clock=clock, threaded=threaded)


class NvmlMeter(EnergyMeter):
    """GPU energy through NVML (``pynvml`` from nvidia-ml-py).

    Uses ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta+)
    when supported; otherwise samples ``nvmlDeviceGetPowerUsage`` (mW) every
    ``interval_s`` and integrates (trapezoid rule). Counts the GPU board only,
    not the host.

    Args:
        index: CUDA/NVML device index.
        interval_s: Sampling interval of the power-usage fallback, s.

    Raises:
        RuntimeError: NVML is not installed or does not initialise, or the
            device index is invalid (message names the cause).
    """

    def __init__(self, index: int = 0, *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(f"pynvml (nvidia-ml-py) not importable: {exc}") from exc
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except Exception as exc:
            raise RuntimeError(f"NVML did not initialise: {exc}") from exc
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(int(index))
        except Exception as exc:
            pynvml.nvmlShutdown()
            raise RuntimeError(f"NVML has no device {index}: {exc}") from exc
        self.index = int(index)
        self.source = "nvml"
        self._sampled: _PowerSamplingMeter | None = None
        self._t0 = 0.0
        self._e0 = 0
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.interval_s = None
            self.counter = True
        except Exception:  # NVMLError_NotSupported (pre-Volta), anything else alike
            self.counter = False
            self.interval_s = float(interval_s)
            self._sampled = _PowerSamplingMeter(
                lambda: float(self._nvml.nvmlDeviceGetPowerUsage(self._handle)),
                source="nvml", what=f"nvmlDeviceGetPowerUsage (GPU {self.index})", interval_s=interval_s)

    def start(self) -> None:
        """Read the energy counter (or start power sampling)."""
        if self._sampled is not None:
            self._sampled.start()
            return
        self._t0 = time.monotonic()
        self._e0 = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def stop(self) -> EnergyReading:
        """Energy since :meth:`start`, J (counter difference in mJ / 1000)."""
        if self._sampled is not None:
            return self._sampled.stop()
        try:
            e1 = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
            joules: float | None = (e1 - self._e0) / 1000.0
        except Exception:
            joules = None
        return EnergyReading(
            joules=joules if joules is None or joules >= 0 else None,
            source="nvml",
            method=f"nvmlDeviceGetTotalEnergyConsumption (mJ counter, GPU {self.index})",
            interval_s=None,
            duration_s=time.monotonic() - self._t0,
        )

    def close(self) -> None:
        """Shut NVML down (reference counted by NVML)."""
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass


def rapl_domains(root: str = "/") -> list[dict[str, Any]]:
    """RAPL package domains under ``<root>/sys/class/powercap`` (top-level ``intel-rapl:N`` only).

    Returns:
        ``[{"name": "package-0", "energy": path, "max_range_uj": int or None}]``
        for the domains whose ``energy_uj`` can be read now (empty when none).
    """
    out = []
    for d in sorted(glob.glob(os.path.join(root, _POWERCAP, "intel-rapl:*"))):
        if os.path.basename(d).count(":") != 1:
            continue  # intel-rapl:0:0 etc. are sub-domains (core, uncore, dram) inside the package
        name = jetson._read_text(os.path.join(d, "name")) or os.path.basename(d)
        if not name.startswith("package"):
            continue
        energy = os.path.join(d, "energy_uj")
        if jetson._read_number(energy) is None:
            continue  # absent, or unreadable (root-only since CVE-2020-8694)
        max_range = jetson._read_number(os.path.join(d, "max_energy_range_uj"))
        out.append({"name": name, "energy": energy,
                    "max_range_uj": int(max_range) if max_range is not None else None})
    return out


class RaplMeter(EnergyMeter):
    """CPU package energy from RAPL powercap counters (x86), summed over packages.

    The counters (µJ) are polled every ``poll_s`` in a thread so that a
    wrap-around at ``max_energy_range_uj`` is seen at most once between two
    reads; a decrease is counted as one wrap (``+ max_energy_range_uj``).

    Args:
        root: Filesystem root (tests build a fake powercap tree).
        poll_s: Polling interval, s.
        threaded: False reads only at start/stop and explicit :meth:`poll` calls.

    Raises:
        PermissionError: No package domain's ``energy_uj`` is readable.
    """

    def __init__(self, root: str = "/", *, poll_s: float = RAPL_POLL_S, threaded: bool = True) -> None:
        self.domains = rapl_domains(root)
        if not self.domains:
            raise PermissionError(
                f"no readable RAPL package counter under {os.path.join(root, _POWERCAP, 'intel-rapl:*/energy_uj')}")
        self.source = "rapl"
        self.interval_s = None
        self.poll_s = float(poll_s)
        self.threaded = threaded
        self._last: list[int | None] = []
        self._total_uj = 0
        self._failed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _read(self, dom: dict[str, Any]) -> int | None:
        v = jetson._read_number(dom["energy"])
        return None if v is None else int(v)

    def poll(self) -> None:
        """Read every counter and accumulate the increase since the last read (wrap-aware)."""
        with self._lock:
            for i, dom in enumerate(self.domains):
                now = self._read(dom)
                prev = self._last[i]
                if now is None or prev is None:
                    self._failed = True
                    continue
                delta = now - prev
                if delta < 0:
                    if dom["max_range_uj"] is None:
                        self._failed = True
                        continue
                    delta += dom["max_range_uj"]
                self._total_uj += delta
                self._last[i] = now

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def start(self) -> None:
        """Read the counters and start polling."""
        with self._lock:
            self._last = [self._read(d) for d in self.domains]
            self._total_uj = 0
            self._failed = any(v is None for v in self._last)
        self._t0 = time.monotonic()
        self._stop.clear()
        if self.threaded:
            self._thread = threading.Thread(target=self._loop, name="evbench-rapl", daemon=True)
            self._thread.start()

    def stop(self) -> EnergyReading:
        """Stop polling; energy since :meth:`start` in J (None if a counter became unreadable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.poll()
        names = "+".join(d["name"] for d in self.domains)
        return EnergyReading(
            joules=None if self._failed else self._total_uj / 1e6,
            source="rapl",
            method=f"powercap energy_uj ({names}), polled every {self.poll_s:g} s for wrap-around",
            interval_s=None,
            duration_s=time.monotonic() - self._t0,
        )


def _cuda_index(device: str) -> int:
    _, _, idx = device.partition(":")
    return int(idx) if idx.strip().isdigit() else 0


def nvml_index(device: str) -> int:
    """The NVML index of CUDA device ``device`` (``CUDA_VISIBLE_DEVICES`` taken into account).

    CUDA numbers the *visible* devices from 0 while NVML numbers every GPU
    of the machine, so with ``CUDA_VISIBLE_DEVICES=2,3`` ``cuda:0`` is NVML
    device 2 (torch's ``torch.cuda._get_nvml_device_index``; UUID lists are
    resolved through NVML).  Without torch's helper, or when it fails, the
    integer list of ``CUDA_VISIBLE_DEVICES`` is read here; otherwise the
    CUDA index is used as is.

    Args:
        device: ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The NVML device index.
    """
    idx = _cuda_index(device)
    try:
        import torch

        return int(torch.cuda._get_nvml_device_index(idx))  # noqa: SLF001 — torch's own mapping
    except Exception:  # no torch helper, no CUDA, a UUID list NVML cannot resolve
        pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and all(v.isdigit() for v in visible) and idx < len(visible):
        return int(visible[idx])
    return idx


def open_meter(device: str, *, root: str = "/") -> EnergyMeter | None:
    """An energy meter for ``device``, or None where no counter is readable.

    Order: a Jetson (any device) -> :class:`JetsonRailMeter`; ``cuda[:N]`` ->
    :class:`NvmlMeter`; ``cpu`` on x86 -> :class:`RaplMeter`. Modeled devices
    (``*-modeled``) and everything else -> None. Never raises for an absent or
    unreadable counter.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        root: Filesystem root (tests).

    Returns:
        A meter with ``start()`` / ``stop() -> EnergyReading``, or None.
    """
    dev = str(device).strip().lower()
    if dev.endswith("-modeled"):
        return None
    if jetson.is_jetson(root):
        try:
            return JetsonRailMeter(root)
        except (OSError, ValueError):
            return None
    if dev.startswith("cuda"):
        try:
            return NvmlMeter(nvml_index(dev))
        except RuntimeError:
            return None
    if dev.startswith("cpu") and (platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
                                  or os.path.abspath(root) != "/"):
        try:
            return RaplMeter(root)
        except (OSError, ValueError):
            return None
    return None
