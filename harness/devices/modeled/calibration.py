"""Calibration of the roofline efficiencies (eta_c, eta_b, t_layer) on published batch-1 points.

:func:`fit_efficiencies` fits the three parameters by least squares on log
latency; :func:`calibration` gives the fit used for a (device, backend), fitted
on the device's own published points or transferred from another device.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from evbench.harness.devices.modeled.layers import (
    Layer,
    LayerArrays,
    layer_arrays,
    layer_profile,
    roofline_ms,
)
from evbench.harness.devices.modeled.profiles import BYTES, device_profile, profiles, runtime_of
from scipy.optimize import least_squares

__all__ = ["Efficiencies", "fit_efficiencies", "calibration", "pct_error"]

# Bounds of the fitted parameters: eta_c, eta_b (fractions of peak; > 1 allowed for
# algorithms that beat the direct MAC count, e.g. Winograd), t_layer in ms.
_LOWER = np.array([1e-4, 1e-4, 1e-6])
_UPPER = np.array([4.0, 4.0, 50.0])


@dataclass(frozen=True)
class Efficiencies:
    """Fitted roofline efficiencies of one (device, runtime).

    Attributes:
        eta_c: Achieved fraction of peak FLOPs.
        eta_b: Achieved fraction of peak bandwidth.
        t_layer_ms: Overhead per kernel-launching layer, ms.
        fitted_ms: Modeled latency of each calibration point, ms.
        measured_ms: The calibration points' latencies, ms.
        rms_log_error: Root-mean-square of ``log(fitted / measured)``.
    """

    eta_c: float
    eta_b: float
    t_layer_ms: float
    fitted_ms: tuple[float, ...]
    measured_ms: tuple[float, ...]
    rms_log_error: float


def fit_efficiencies(points: Sequence[tuple[LayerArrays, float]], *, peak_gflops: float,
                     bandwidth_gbs: float) -> Efficiencies:
    """Fit ``η_c``, ``η_b``, ``t_layer`` to measured latencies by least squares on log latency.

    :func:`scipy.optimize.least_squares` (trust-region reflective, bounded,
    parameters in log space) from a small grid of starting points; the best
    fit is kept because the roofline ``max`` makes the objective piecewise smooth.

    Args:
        points: ``(layers, measured ms)`` per calibration model.
        peak_gflops: Peak rate, GFLOPS.
        bandwidth_gbs: Bandwidth, GB/s.

    Returns:
        :class:`Efficiencies`.

    Raises:
        ValueError: With fewer than 3 points (3 parameters) or a non-positive latency.
    """
    if len(points) < 3:
        raise ValueError(f"need at least 3 calibration points for 3 parameters, got {len(points)}")
    measured = np.array([ms for _, ms in points], dtype=float)
    if np.any(measured <= 0):
        raise ValueError("calibration latencies must be > 0 ms")

    def predict(x: np.ndarray) -> np.ndarray:
        ec, eb, tl = np.exp(x)
        return np.array([roofline_ms(a, peak_gflops=peak_gflops, bandwidth_gbs=bandwidth_gbs, eta_c=ec, eta_b=eb,
                                     t_layer_ms=tl) for a, _ in points])

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.log(predict(x)) - np.log(measured)

    lo, hi = np.log(_LOWER), np.log(_UPPER)
    best = None
    for ec in (0.05, 0.3, 1.0):
        for eb in (0.05, 0.3, 1.0):
            for tl in (0.001, 0.05):
                x0 = np.log([ec, eb, tl])
                res = least_squares(residuals, x0, bounds=(lo, hi), method="trf", diff_step=1e-4, x_scale=1.0)
                if best is None or res.cost < best.cost:
                    best = res
    assert best is not None
    ec, eb, tl = (float(v) for v in np.exp(best.x))
    fitted = predict(best.x)
    return Efficiencies(eta_c=ec, eta_b=eb, t_layer_ms=tl, fitted_ms=tuple(float(v) for v in fitted),
                        measured_ms=tuple(float(v) for v in measured),
                        rms_log_error=float(np.sqrt(np.mean(residuals(best.x) ** 2))))


@functools.lru_cache(maxsize=64)
def _torchvision_layers(model: str, resolution: int) -> tuple[Layer, ...]:
    """Layers of a torchvision classifier (1000 classes, no weights) at ``resolution``, on the meta device."""
    import torchvision

    with torch.device("meta"):
        net = torchvision.models.get_model(model, weights=None)
        x = torch.zeros(1, 3, resolution, resolution)
    return tuple(layer_profile(net, (x,)))


def pct_error(model: float, ref: float) -> float:
    """``100·(model − ref)/ref``, the signed error in %."""
    return 100.0 * (model - ref) / ref


@functools.lru_cache(maxsize=16)
def _calibrate(device: str, runtime: str) -> dict[str, Any]:
    """Fit the efficiencies of ``runtime`` on ``device``'s own published points (held-out excluded)."""
    prof = device_profile(device)
    rt = profiles()["runtimes"][runtime]
    key = runtime.replace("-", "_") + "_ms"
    bpe = BYTES[runtime.rsplit("-", 1)[-1]]
    used, held = [], []
    for p in profiles()["points"]:
        if p["device"] != device or key not in p:
            continue
        arrays = layer_arrays(_torchvision_layers(p["model"], p["resolution"]), bytes_per_elem=bpe, fuse=rt["fuse"])
        (held if runtime in p.get("held_out", ()) else used).append((p, arrays))
    if len(used) < 3:
        raise ValueError(f"{device}: {len(used)} published {runtime} points; at least 3 are needed to calibrate")
    eff = fit_efficiencies([(a, p[key]) for p, a in used], peak_gflops=prof.peak_gflops,
                           bandwidth_gbs=prof.bandwidth_gbs)
    points = [{"model": p["model"], "resolution": p["resolution"], "batch": 1, "published_ms": p[key],
               "fitted_ms": f, "error_pct": pct_error(f, p[key]), "source": p["source"]}
              for (p, _), f in zip(used, eff.fitted_ms, strict=True)]
    held_rows = []
    for p, a in held:
        ms = roofline_ms(a, peak_gflops=prof.peak_gflops, bandwidth_gbs=prof.bandwidth_gbs, eta_c=eff.eta_c,
                         eta_b=eff.eta_b, t_layer_ms=eff.t_layer_ms)
        held_rows.append({"model": p["model"], "resolution": p["resolution"], "batch": 1, "published_ms": p[key],
                          "modeled_ms": ms, "error_pct": pct_error(ms, p[key]), "source": p["source"]})
    return {
        "runtime": runtime, "runtime_title": rt["title"], "calibrated_on": device,
        "precision_bytes": bpe, "fused": rt["fuse"],
        "fit": "scipy.optimize.least_squares (trf, bounded) on log latency; parameters in log space",
        "eta_compute": eff.eta_c, "eta_bandwidth": eff.eta_b, "t_layer_ms": eff.t_layer_ms,
        "rms_log_error": eff.rms_log_error,
        "mean_abs_fit_error_pct": float(np.mean([abs(r["error_pct"]) for r in points])),
        "points": points, "held_out": held_rows,
    }


def calibration(device: str, backend: str = "torch") -> dict[str, Any]:
    """The efficiencies used for ``device`` and ``backend``, with their provenance.

    A device calibrated on itself uses the fit of its own published points; a
    device calibrated on another (the 5 W mode, the Orin Nano) takes that
    device's ``η_c`` and ``η_b`` unchanged and scales ``t_layer`` by the ratio
    of host CPU clocks (PyTorch: launch overhead is host-bound) or GPU clocks
    (TensorRT), and says so in ``status``.

    Args:
        device: Modeled device name.
        backend: ``"torch"`` (PyTorch FP16) or ``"onnxruntime"`` (TensorRT FP16).

    Returns:
        The fit (``eta_compute``, ``eta_bandwidth``, ``t_layer_ms`` as fitted,
        ``t_layer_ms_applied``), the calibration points with their fit error in %,
        the held-out points with their error, ``status`` and ``note``.

    Raises:
        ValueError: Unknown device or backend.
    """
    prof = device_profile(device)
    runtime = runtime_of(backend)
    base = dict(_calibrate(prof.calibrated_on, runtime))
    base["points"] = [dict(r) for r in base["points"]]
    base["held_out"] = [dict(r) for r in base["held_out"]]
    if prof.calibrated_on == device:
        base["status"] = "calibrated"
        base["t_layer_ms_applied"] = base["t_layer_ms"]
        base["note"] = f"fitted to {len(base['points'])} published batch-1 points of this device"
        return base
    src = device_profile(prof.calibrated_on)
    scale_with = profiles()["runtimes"][runtime]["t_layer_scales_with"]
    ratio = (src.host_clock_mhz / prof.host_clock_mhz if scale_with == "host"
             else src.gpu_clock_mhz / prof.gpu_clock_mhz)
    base["t_layer_ms_applied"] = base["t_layer_ms"] * ratio
    base["t_layer_scale"] = ratio
    same_board = not profiles()["devices"][device].get("uncalibrated", False)
    base["status"] = ("transferred (same chip, other clocks)" if same_board
                      else "UNCALIBRATED (efficiencies transferred from another board)")
    base["note"] = (
        f"no published batch-1 points of {device} are used: eta_c and eta_b are those fitted on {src.name}, "
        f"t_layer scaled by the {scale_with} clock ratio {ratio:.3f}"
        + ("" if same_board else "; the architecture differs (e.g. Tensor Cores), so this is an extrapolation "
                                 "with unknown error")
    )
    return base
