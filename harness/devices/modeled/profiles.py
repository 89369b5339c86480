"""Modeled devices' profiles (``profiles.toml``, package data): peak rates, bandwidth, clocks, runtimes.

:func:`device_profile` turns a ``--device`` name such as ``jetson-nano-modeled``
into its :class:`DeviceProfile`; an unknown name is an :class:`UnknownDeviceError`
naming the valid ones.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DeviceProfile", "UnknownDeviceError", "device_profile", "is_modeled_device", "modeled_devices",
           "PROFILES_PATH", "BACKEND_TO_RUNTIME", "BYTES", "profiles", "runtime_of"]

#: The device profiles, calibration points and runtimes (package data of ``evbench.harness``).
PROFILES_PATH = Path(__file__).resolve().parent.parent / "profiles.toml"
#: evbench backend -> modeled runtime (its calibration points in ``profiles.toml``).
BACKEND_TO_RUNTIME = {"torch": "pytorch-fp16", "onnxruntime": "tensorrt-fp16"}
#: Bytes per element of a precision.
BYTES = {"fp16": 2, "fp32": 4}


@functools.lru_cache(maxsize=1)
def profiles() -> dict[str, Any]:
    """The parsed ``profiles.toml`` (cached)."""
    with PROFILES_PATH.open("rb") as f:
        return tomllib.load(f)


def modeled_devices() -> list[str]:
    """Names of the modeled devices (``--device`` values), from ``profiles.toml``."""
    return sorted(profiles()["devices"])


def is_modeled_device(device: str) -> bool:
    """True for a device name ending in ``-modeled`` (known or not; see :func:`device_profile`)."""
    return str(device).endswith("-modeled")


@dataclass(frozen=True)
class DeviceProfile:
    """Peak rates of one modeled device.

    Attributes:
        name: ``--device`` name, e.g. ``"jetson-nano-modeled"``.
        title: Board and power mode in words.
        power_mode: nvpmodel mode and the clocks it caps.
        peak_gflops: Peak FP16 rate, GFLOPS (units × FLOPs/unit/clock × clock).
        peak_gflops_published: The vendor's figure, GFLOPS, when one is given.
        bandwidth_gbs: DRAM bandwidth, GB/s (1e9 B/s).
        gpu_clock_mhz: GPU clock cap, MHz.
        host_clock_mhz: CPU clock cap, MHz.
        calibrated_on: Device whose published points the efficiencies are fitted to.
        sources: Where each number comes from.
    """

    name: str
    title: str
    power_mode: str
    peak_gflops: float
    peak_gflops_published: float | None
    bandwidth_gbs: float
    gpu_clock_mhz: float
    host_clock_mhz: float
    calibrated_on: str
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``peak_gflops`` in GFLOPS, ``bandwidth_gbs`` in GB/s)."""
        return {
            "name": self.name, "title": self.title, "power_mode": self.power_mode,
            "peak_gflops_fp16": self.peak_gflops, "peak_gflops_fp16_published": self.peak_gflops_published,
            "bandwidth_gbs": self.bandwidth_gbs, "gpu_clock_mhz": self.gpu_clock_mhz,
            "host_clock_mhz": self.host_clock_mhz, "calibrated_on": self.calibrated_on,
            "source": list(self.sources),
        }


class UnknownDeviceError(ValueError):
    """A ``--device`` name ending in ``-modeled`` that has no profile, or a backend with no modeled runtime."""


def device_profile(device: str) -> DeviceProfile:
    """The roofline profile of a modeled device.

    Args:
        device: A ``--device`` name such as ``"jetson-nano-modeled"``.

    Returns:
        The :class:`DeviceProfile`, peak computed from compute units, FLOPs per
        unit per clock and clock (``profiles.toml``).

    Raises:
        UnknownDeviceError: If ``device`` is not a modeled device; the message lists the valid names.
    """
    devices = profiles()["devices"]
    if device not in devices:
        raise UnknownDeviceError(f"unknown modeled device {device!r}; valid modeled devices: {', '.join(modeled_devices())}")
    d = devices[device]
    peak = d["compute_units"] * d["flops_per_unit_per_clock"] * d["gpu_clock_mhz"] * 1e6 / 1e9
    return DeviceProfile(
        name=device, title=d["title"], power_mode=d["power_mode"], peak_gflops=float(peak),
        peak_gflops_published=d.get("peak_gflops_fp16_published"), bandwidth_gbs=float(d["bandwidth_gbs"]),
        gpu_clock_mhz=float(d["gpu_clock_mhz"]), host_clock_mhz=float(d["host_clock_mhz"]),
        calibrated_on=d["calibrated_on"], sources=tuple(d.get("sources", ())),
    )


def runtime_of(backend: str) -> str:
    """The modeled runtime of an evbench backend.

    Raises:
        UnknownDeviceError: A backend with no modeled runtime.
    """
    try:
        return BACKEND_TO_RUNTIME[backend]
    except KeyError:
        raise UnknownDeviceError(f"no modeled runtime for backend {backend!r}; valid: {sorted(BACKEND_TO_RUNTIME)}") from None
