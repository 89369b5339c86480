"""Modeled devices: a calibrated roofline latency model of Jetson boards that are not attached.

DESIGN §7: a device that is not attached gets a *modeled* latency, always
labelled ``modeled``, and the model family is validated against a device that
is attached (this machine's CPU).

The model (per costed module a method executes, batch 1):

* **Layers** — every leaf-module call during one batch-1 forward
  (:func:`layer_profile`, forward hooks) with its MACs (conv / linear / RNN
  formulas, fvcore's convention: one fused multiply-add = one MAC; batch-norm
  and adaptive pooling counted per element as fvcore does), its weights and its
  input / output activation elements.  Identity, dropout and flatten launch no
  kernel and are dropped.  A runtime that fuses (TensorRT) folds batch-norm and
  point-wise activations into the preceding convolution / GEMM.
* **Time** of a module =
  ``Σ_layers max(2·MACs / (peak_FLOPs·η_c), bytes / (bandwidth·η_b)) + n_layers·t_layer``,
  bytes = (weights + input + output activations) × bytes per element at the
  modeled precision (FP16: 2, FP32: 4).
* **Calibration** — ``η_c``, ``η_b``, ``t_layer`` per (device, runtime), fitted
  with :func:`scipy.optimize.least_squares` on log latency to published batch-1
  points (``profiles.toml``: NVIDIA-AI-IOT/torch2trt ``benchmarks/JETSON_NANO.md``),
  the per-layer counts of each point taken from the torchvision architecture
  built on the ``meta`` device (no weights, no compute).  ResNet-50 PyTorch
  FP16 @224 (81.7 ms) is held out and only checked against.
* **Per-clip latency** — the sum of the module times over the clip's trace.

Devices (``profiles.toml``): ``jetson-nano-modeled`` (MAXN 10 W, calibrated on
its own published points), ``jetson-nano-5w-modeled`` (same chip, GPU capped at
640 MHz: peak × 640/921.6, bandwidth kept because the 5 W mode keeps the
1600 MHz memory clock; efficiencies of the MAXN fit, ``t_layer`` rescaled by the
clock ratio) and ``orin-nano-modeled`` (UNCALIBRATED: no published batch-1 FP16
Orin Nano point is used; Nano efficiencies on the Orin's Tensor-Core peak).

Limits: functional operations outside modules (residual adds, concatenation,
the squeeze-excitation product) are not layers here and are absorbed by the
fit; the published Nano points hold no depth-wise (MobileNet-style) network, so
such networks are extrapolated; :func:`validate_cpu` measures how well the
model family predicts held-out networks on this CPU.

Every number this module returns that is a latency is modeled, not measured,
and says so (``modeled: True``, ``modeled_note``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import nn

__all__ = [
    "Layer",
    "LayerArrays",
    "UnknownDeviceError",
    "DeviceProfile",
    "Efficiencies",
    "is_modeled_device",
    "modeled_devices",
    "device_profile",
    "layer_profile",
    "layer_arrays",
    "roofline_ms",
    "fit_efficiencies",
    "calibration",
    "model_latency",
    "validation_summary",
    "measure_cpu_peaks",
    "validate_cpu",
    "MODELED_NOTE",
    "VALIDATION_PATH",
]

_PROFILES_PATH = Path(__file__).with_name("profiles.toml")
#: The committed CPU validation result read into every modeled result (``validation``).
VALIDATION_PATH = Path(__file__).with_name("cpu-validation.json")  # package data: ships in the wheel

#: The sentence every modeled result carries.
MODELED_NOTE = (
    "MODELED, not measured: this latency comes from a roofline model (per-layer MACs and bytes "
    "against the device's peak FP16 rate and memory bandwidth, with efficiencies fitted to "
    "published batch-1 benchmarks); no board was attached."
)

_LAYER_CACHE_ATTR = "_evbench_roofline_layers"
_BACKEND_TO_RUNTIME = {"torch": "pytorch-fp16", "onnxruntime": "tensorrt-fp16"}
_BYTES = {"fp16": 2, "fp32": 4}

# Bounds of the fitted parameters: eta_c, eta_b (fractions of peak; > 1 allowed for
# algorithms that beat the direct MAC count, e.g. Winograd), t_layer in ms.
_LOWER = np.array([1e-4, 1e-4, 1e-6])
_UPPER = np.array([4.0, 4.0, 50.0])


# --------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=1)
def _profiles() -> dict[str, Any]:
    with _PROFILES_PATH.open("rb") as f:
        return tomllib.load(f)


def modeled_devices() -> list[str]:
    """Names of the modeled devices (``--device`` values), from ``profiles.toml``."""
    return sorted(_profiles()["devices"])


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
    devices = _profiles()["devices"]
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


def _runtime(backend: str) -> str:
    try:
        return _BACKEND_TO_RUNTIME[backend]
    except KeyError:
        raise UnknownDeviceError(f"no modeled runtime for backend {backend!r}; valid: {sorted(_BACKEND_TO_RUNTIME)}") from None


# --------------------------------------------------------------------------- layers

_CONV = (nn.modules.conv._ConvNd,)
_LINEAR = (nn.Linear,)
_RNN = (nn.RNNBase, nn.RNNCellBase)
_NORM = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
_ACT = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.LeakyReLU,
        nn.ELU, nn.PReLU, nn.Mish, nn.Softmax, nn.LogSoftmax)
_POOL = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
         nn.modules.pooling._AdaptiveMaxPoolNd)
_NOOP = (nn.Identity, nn.modules.dropout._DropoutNd, nn.Flatten, nn.Unflatten)
_NOOP_NAMES = {"StochasticDepth"}  # torchvision.ops: identity in eval mode


@dataclass(frozen=True)
class Layer:
    """One kernel-launching leaf-module call of a batch-1 forward.

    Attributes:
        name: Dotted module name within the profiled module.
        kind: ``"conv"``, ``"linear"``, ``"rnn"``, ``"norm"``, ``"act"``, ``"pool"`` or ``"other"``.
        macs: Multiply-accumulates (fvcore convention).
        weight_elems: Parameter and floating buffer elements read.
        in_elems: Input activation elements read.
        out_elems: Output activation elements written.
    """

    name: str
    kind: str
    macs: int
    weight_elems: int
    in_elems: int
    out_elems: int


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, Mapping):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, _NOOP) or type(module).__name__ in _NOOP_NAMES:
        return None
    for kind, types in (("conv", _CONV), ("linear", _LINEAR), ("rnn", _RNN), ("norm", _NORM), ("act", _ACT),
                        ("pool", _POOL)):
        if isinstance(module, types):
            return kind
    return "other"


def _rnn_macs(module: nn.Module, x: torch.Tensor) -> int:
    gates = {"LSTM": 4, "GRU": 3}.get(type(module).__name__.replace("Cell", ""), 1)
    hidden, inp = module.hidden_size, module.input_size
    if isinstance(module, nn.RNNCellBase):
        rows = x.numel() // inp
        return gates * hidden * (inp + hidden) * rows
    rows = x.numel() // inp  # steps x batch
    dirs = 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    rec = proj or hidden
    total = 0
    for layer in range(module.num_layers):
        layer_in = inp if layer == 0 else rec * dirs
        total += dirs * rows * (gates * hidden * (layer_in + rec) + (hidden * proj if proj else 0))
    return total


def _macs(kind: str, module: nn.Module, ins: list[torch.Tensor], outs: list[torch.Tensor]) -> int:
    x = ins[0] if ins else None
    y = outs[0] if outs else None
    if kind == "conv" and x is not None and y is not None:
        k = math.prod(module.kernel_size)
        if module.transposed:
            return x.numel() * (module.out_channels // module.groups) * k
        return y.numel() * (module.in_channels // module.groups) * k
    if kind == "linear" and y is not None:
        return y.numel() * module.in_features
    if kind == "rnn" and x is not None:
        return _rnn_macs(module, x)
    if kind == "norm" and x is not None:
        affine = getattr(module, "affine", getattr(module, "elementwise_affine", False))
        return x.numel() * (2 if affine else 1)
    if kind == "pool" and x is not None and isinstance(module, nn.modules.pooling._AdaptiveAvgPoolNd):
        return x.numel()
    return 0


def layer_profile(module: nn.Module, inputs: tuple[Any, ...]) -> list[Layer]:
    """The kernel-launching layers of one batch-1 call ``module(*inputs)``, in execution order.

    Forward hooks on every leaf module record each call (a module called twice,
    like torchvision's shared ReLU in a ResNet bottleneck, gives two layers).
    Runs under ``torch.inference_mode`` in eval mode (mode restored); works on
    the ``meta`` device, where nothing is computed.

    Args:
        module: Any module.
        inputs: Positional inputs, batch 1.

    Returns:
        One :class:`Layer` per leaf call that launches a kernel (identity,
        dropout, flatten and eval-mode stochastic depth are dropped).
        Functional operations outside modules (residual adds, ``torch.cat``) are
        not seen; their cost is absorbed by the fitted efficiencies.
    """
    layers: list[Layer] = []
    handles = []

    def hook(name: str, kind: str) -> Callable[..., None]:
        def record(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            ins, outs = _tensors(args), _tensors(out)
            weights = sum(p.numel() for p in mod.parameters(recurse=False))
            weights += sum(b.numel() for b in mod.buffers(recurse=False) if b.is_floating_point())
            layers.append(Layer(name=name, kind=kind, macs=int(_macs(kind, mod, ins, outs)), weight_elems=int(weights),
                                in_elems=int(sum(t.numel() for t in ins)), out_elems=int(sum(t.numel() for t in outs))))
        return record

    for name, sub in module.named_modules():
        if next(sub.children(), None) is not None:
            continue
        kind = _kind(sub)
        if kind is not None:
            handles.append(sub.register_forward_hook(hook(name, kind)))
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return layers


def _fuse(layers: Sequence[Layer]) -> list[Layer]:
    """TensorRT-style fusion: norm / activation layers after a conv or GEMM of the same output size vanish."""
    out: list[Layer] = []
    for layer in layers:
        prev = out[-1] if out else None
        if (layer.kind in ("norm", "act") and prev is not None and prev.kind in ("conv", "linear")
                and layer.in_elems == prev.out_elems):
            continue
        out.append(layer)
    return out


@dataclass(frozen=True)
class LayerArrays:
    """Per-layer roofline inputs of one module at one precision and runtime.

    Attributes:
        macs: ``(n_layers,)`` MACs per layer.
        bytes: ``(n_layers,)`` bytes moved per layer (weights + input + output activations).
        names: ``(n_layers,)`` layer names.
    """

    macs: np.ndarray
    bytes: np.ndarray
    names: tuple[str, ...]

    @property
    def n_layers(self) -> int:
        """Kernel-launching layers."""
        return len(self.names)


def layer_arrays(layers: Sequence[Layer], *, bytes_per_elem: int, fuse: bool) -> LayerArrays:
    """Vectorised MACs and bytes of ``layers`` for one precision and runtime.

    Args:
        layers: From :func:`layer_profile`.
        bytes_per_elem: 2 for FP16, 4 for FP32.
        fuse: Apply TensorRT-style fusion (:func:`_fuse`) first.

    Returns:
        :class:`LayerArrays` with MACs and bytes per layer.
    """
    ls = _fuse(layers) if fuse else list(layers)
    macs = np.array([lay.macs for lay in ls], dtype=float)
    nbytes = np.array([(lay.weight_elems + lay.in_elems + lay.out_elems) * bytes_per_elem for lay in ls], dtype=float)
    return LayerArrays(macs=macs, bytes=nbytes, names=tuple(lay.name for lay in ls))


def roofline_ms(arrays: LayerArrays, *, peak_gflops: float, bandwidth_gbs: float, eta_c: float, eta_b: float,
                t_layer_ms: float) -> float:
    """Modeled time of one module call, ms.

    ``Σ_layers max(2·MACs / (peak·η_c), bytes / (bandwidth·η_b)) + n_layers·t_layer``.

    Args:
        arrays: Per-layer MACs and bytes.
        peak_gflops: Peak rate, GFLOPS.
        bandwidth_gbs: Memory bandwidth, GB/s.
        eta_c: Achieved fraction of the peak rate.
        eta_b: Achieved fraction of the bandwidth.
        t_layer_ms: Fixed overhead per kernel-launching layer, ms.

    Returns:
        Modeled milliseconds.
    """
    t_c = 2.0 * arrays.macs / (peak_gflops * 1e9 * eta_c)
    t_b = arrays.bytes / (bandwidth_gbs * 1e9 * eta_b)
    return float(np.maximum(t_c, t_b).sum() * 1e3 + arrays.n_layers * t_layer_ms)


# --------------------------------------------------------------------------- calibration


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


def _pct(model: float, ref: float) -> float:
    return 100.0 * (model - ref) / ref


@functools.lru_cache(maxsize=16)
def _calibrate(device: str, runtime: str) -> dict[str, Any]:
    """Fit the efficiencies of ``runtime`` on ``device``'s own published points (held-out excluded)."""
    prof = device_profile(device)
    rt = _profiles()["runtimes"][runtime]
    key = runtime.replace("-", "_") + "_ms"
    bpe = _BYTES[runtime.rsplit("-", 1)[-1]]
    used, held = [], []
    for p in _profiles()["points"]:
        if p["device"] != device or key not in p:
            continue
        arrays = layer_arrays(_torchvision_layers(p["model"], p["resolution"]), bytes_per_elem=bpe, fuse=rt["fuse"])
        (held if runtime in p.get("held_out", ()) else used).append((p, arrays))
    if len(used) < 3:
        raise ValueError(f"{device}: {len(used)} published {runtime} points; at least 3 are needed to calibrate")
    eff = fit_efficiencies([(a, p[key]) for p, a in used], peak_gflops=prof.peak_gflops,
                           bandwidth_gbs=prof.bandwidth_gbs)
    points = [{"model": p["model"], "resolution": p["resolution"], "batch": 1, "published_ms": p[key],
               "fitted_ms": f, "error_pct": _pct(f, p[key]), "source": p["source"]}
              for (p, _), f in zip(used, eff.fitted_ms, strict=True)]
    held_rows = []
    for p, a in held:
        ms = roofline_ms(a, peak_gflops=prof.peak_gflops, bandwidth_gbs=prof.bandwidth_gbs, eta_c=eff.eta_c,
                         eta_b=eff.eta_b, t_layer_ms=eff.t_layer_ms)
        held_rows.append({"model": p["model"], "resolution": p["resolution"], "batch": 1, "published_ms": p[key],
                          "modeled_ms": ms, "error_pct": _pct(ms, p[key]), "source": p["source"]})
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
    runtime = _runtime(backend)
    base = dict(_calibrate(prof.calibrated_on, runtime))
    base["points"] = [dict(r) for r in base["points"]]
    base["held_out"] = [dict(r) for r in base["held_out"]]
    if prof.calibrated_on == device:
        base["status"] = "calibrated"
        base["t_layer_ms_applied"] = base["t_layer_ms"]
        base["note"] = f"fitted to {len(base['points'])} published batch-1 points of this device"
        return base
    src = device_profile(prof.calibrated_on)
    scale_with = _profiles()["runtimes"][runtime]["t_layer_scales_with"]
    ratio = (src.host_clock_mhz / prof.host_clock_mhz if scale_with == "host"
             else src.gpu_clock_mhz / prof.gpu_clock_mhz)
    base["t_layer_ms_applied"] = base["t_layer_ms"] * ratio
    base["t_layer_scale"] = ratio
    same_board = not _profiles()["devices"][device].get("uncalibrated", False)
    base["status"] = ("transferred (same chip, other clocks)" if same_board
                      else "UNCALIBRATED (efficiencies transferred from another board)")
    base["note"] = (
        f"no published batch-1 points of {device} are used: eta_c and eta_b are those fitted on {src.name}, "
        f"t_layer scaled by the {scale_with} clock ratio {ratio:.3f}"
        + ("" if same_board else "; the architecture differs (e.g. Tensor Cores), so this is an extrapolation "
                                 "with unknown error")
    )
    return base


# --------------------------------------------------------------------------- validation file


def validation_summary(path: str | Path | None = None) -> dict[str, Any]:
    """The stored CPU validation summary of the model family (``evbench/harness/devices/cpu-validation.json``, package data).

    Args:
        path: The validation JSON; default :data:`VALIDATION_PATH`.

    Returns:
        ``summary`` of the file (mean / max abs % error on held-out models, the
        machine, threads, date) plus ``path``; ``{"status": "not found", ...}``
        when the file is absent (e.g. deleted from the install).
    """
    p = Path(path) if path is not None else VALIDATION_PATH
    if not p.is_file():
        return {"status": "not found", "path": str(p),
                "note": "run `evbench model-validate` to validate the model family on this CPU"}
    data = json.loads(p.read_text())
    return {"status": "ok", "path": str(p), **data.get("summary", {})}


# --------------------------------------------------------------------------- model_latency


def model_latency(method: Any, traces: Any, *, device: str, backend: str = "torch") -> dict[str, Any]:
    """Modeled single-stream latency of ``traces`` on a modeled ``device``.

    For each counted cost entry of ``method`` (``method.cost_entries()``), the
    layers of one batch-1 call of ``method.get_submodule(entry.module)`` on
    ``entry.example_inputs()`` (:func:`layer_profile`) are timed with
    :func:`roofline_ms` at FP16 (2 bytes per element) with the device's
    calibrated efficiencies (:func:`calibration`).  Per clip, the module times
    are summed over the clip's trace steps (layer shapes do not depend on the
    weights, so each module's layers are counted once and cached on the
    method).  Declared entries (costs produced
    outside the method, e.g. pre-extracted features) have no layers: they are
    excluded from the modeled time and listed in ``excluded``.

    Args:
        method: A :class:`evbench.harness.api.Method`.
        traces: One list of :class:`evbench.harness.api.TraceStep` per clip (batch 1).
        device: Modeled device name (e.g. ``"jetson-nano-modeled"``).
        backend: ``"torch"`` → PyTorch FP16 calibration, ``"onnxruntime"`` →
            TensorRT FP16 calibration.

    Returns:
        ``latency_ms`` (``p50``, ``p90``, ``p99``, ``mean`` in ms and
        ``samples``, one per clip), ``modeled: True``, ``backend``
        (``"modeled:pytorch-fp16"`` / ``"modeled:tensorrt-fp16"``),
        ``device_profile``, ``calibration``, ``validation`` (the stored CPU
        validation summary), ``modules`` (per ``(module, input_shape)``: layers,
        GMACs, MB moved, modeled ms), ``excluded`` (declared modules left out),
        ``fps_stream_processed`` (modeled frames processed per second,
        back-to-back clips) and ``modeled_note``.

    Raises:
        ValueError: Unknown modeled device (the message lists the valid ones),
            unknown backend, or no traces.
        evbench.harness.costs.CostTableError: A trace step with no cost entry.
    """
    from evbench.harness.costs import CostTableError, _device_of, _to
    from evbench.harness.timing import _percentiles_ms

    prof = device_profile(device)
    runtime = _runtime(backend)
    cal = calibration(device, backend)
    traces = [list(t) for t in traces]
    if not traces:
        raise ValueError("model_latency needs at least one clip trace")
    bpe = cal["precision_bytes"]
    dev = _device_of(method)
    module_ms: dict[tuple[str, tuple[int, ...]], float] = {}
    # layer shapes do not depend on the weights: cached on the method, like its cost table
    cache = getattr(method, _LAYER_CACHE_ATTR, None)
    if cache is None:
        cache = {}
        object.__setattr__(method, _LAYER_CACHE_ATTR, cache)
    modules, excluded = [], []
    for entry in method.cost_entries():
        if entry.key in module_ms or any(e["module"] == entry.module and e["input_shape"] == list(entry.input_shape)
                                         for e in excluded):
            continue
        if entry.declared_gmacs is not None:
            excluded.append({"module": entry.module, "input_shape": list(entry.input_shape), "role": entry.role,
                             "declared_gmacs": float(entry.declared_gmacs), "source": entry.source,
                             "reason": "declared cost: runs outside the method (no layers to model); "
                                       "excluded from the modeled latency"})
            continue
        layers = cache.get(entry.key)
        if layers is None:
            sub = method.get_submodule(entry.module)
            layers = cache[entry.key] = tuple(layer_profile(sub, tuple(_to(v, dev) for v in entry.example_inputs())))
        arrays = layer_arrays(layers, bytes_per_elem=bpe, fuse=cal["fused"])
        ms = roofline_ms(arrays, peak_gflops=prof.peak_gflops, bandwidth_gbs=prof.bandwidth_gbs,
                         eta_c=cal["eta_compute"], eta_b=cal["eta_bandwidth"], t_layer_ms=cal["t_layer_ms_applied"])
        module_ms[entry.key] = ms
        t_c = 2.0 * arrays.macs / (prof.peak_gflops * 1e9 * cal["eta_compute"])
        t_b = arrays.bytes / (prof.bandwidth_gbs * 1e9 * cal["eta_bandwidth"])
        modules.append({"module": entry.module, "input_shape": list(entry.input_shape), "role": entry.role,
                        "layers": arrays.n_layers, "gmacs": float(arrays.macs.sum() / 1e9),
                        "mbytes": float(arrays.bytes.sum() / 1e6),
                        "compute_bound_layers": int((t_c > t_b).sum()), "modeled_ms": ms})
    excluded_keys = {(e["module"], tuple(e["input_shape"])) for e in excluded}
    samples, frames, excluded_steps = [], [], 0
    for tr in traces:
        total = 0.0
        for step in tr:
            if step.key in excluded_keys:
                excluded_steps += 1
                continue
            if step.key not in module_ms:
                raise CostTableError(f"trace step {step.module}{tuple(step.input_shape)} (frame {step.frame}) "
                                     "is not among the method's cost entries")
            total += module_ms[step.key]
        samples.append(total)
        frames.append(len({s.frame for s in tr if s.frame >= 0}))
    total_ms = float(np.sum(samples))
    note = MODELED_NOTE
    if excluded:
        names = ", ".join(f"{e['module']}{tuple(e['input_shape'])}" for e in excluded)
        note += f" Excluded (declared, produced outside the method): {names}."
    return {
        "latency_ms": {**dict(zip(("p50", "p90", "p99"), _percentiles_ms(samples), strict=True)),
                       "mean": float(np.mean(samples)), "samples": [float(s) for s in samples]},
        "modeled": True,
        "backend": f"modeled:{runtime}",
        "device_profile": prof.to_dict(),
        "calibration": cal,
        "validation": validation_summary(),
        "modules": modules,
        "excluded": excluded,
        "excluded_steps": excluded_steps,
        "fps_stream_processed": float(sum(frames) / (total_ms / 1e3)) if total_ms > 0 else None,
        "fps_stream_note": "MODELED: sampled frames processed per second with clips run back to back, batch 1",
        "modeled_note": note,
    }


# --------------------------------------------------------------------------- CPU validation

#: torchvision models measured on this CPU: fitted on the first list, evaluated on the second.
CPU_CALIBRATION_MODELS = ("resnet18", "resnet34", "squeezenet1_1", "vgg11", "mobilenet_v3_large", "densenet121")
CPU_HELD_OUT_MODELS = ("resnet50", "mobilenet_v2", "alexnet", "shufflenet_v2_x1_0", "efficientnet_b0",
                       "regnet_x_400mf")


def _loadavg() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def measure_cpu_peaks(*, repeats: int = 5) -> dict[str, Any]:
    """Quick measured peaks of this CPU at the current thread count.

    * FLOPs: a 1024 × 1024 × 1024 FP32 ``torch.mm`` (2·n³ FLOPs), best of ``repeats``.
    * Bandwidth: ``Tensor.copy_`` of 64 MiB (read + write = 128 MiB moved), best of ``repeats``.

    Args:
        repeats: Timed repetitions; the fastest is kept.

    Returns:
        ``peak_gflops`` (GFLOPS), ``bandwidth_gbs`` (GB/s), ``method`` (text), ``threads``.
    """
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t0) / 4)
    src = torch.ones(16 * 1024 * 1024)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best_copy = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best_copy = min(best_copy, time.perf_counter() - t0)
    moved = 2 * src.numel() * src.element_size()
    return {"peak_gflops": 2 * n ** 3 / best / 1e9, "bandwidth_gbs": moved / best_copy / 1e9,
            "method": f"measured: best of {repeats} x torch.mm fp32 {n}^3 (2 n^3 FLOPs); best of {repeats} x "
                      "Tensor.copy_ of 64 MiB (bytes read + written)",
            "threads": torch.get_num_threads()}


def validate_cpu(*, calibration_models: Iterable[str] = CPU_CALIBRATION_MODELS,
                 held_out_models: Iterable[str] = CPU_HELD_OUT_MODELS, resolution: int = 128, threads: int = 1,
                 rounds: int = 3, min_queries: int = 32, min_duration_s: float = 0.5, max_duration_s: float = 6.0,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validate the model family on this CPU: fit on some torchvision models, predict others.

    Same code path as the Jetson model with runtime ``torch-cpu-fp32`` (FP32,
    4 bytes per element, no fusion); the peaks are measured
    (:func:`measure_cpu_peaks`), the three efficiencies fitted
    (:func:`fit_efficiencies`) to the batch-1 latencies of
    ``calibration_models`` measured with :func:`evbench.harness.timing.measure_latency`
    (eval mode, ``torch.inference_mode``, random weights, a fixed thread
    count), and the held-out models' latencies predicted.

    Because the reference CPU is shared, every model (and the peaks) is
    measured in ``rounds`` interleaved rounds; a model's latency is the lowest
    of its per-round p50s and the peaks the highest per-round values, so a
    period when other processes held the CPU does not bias one model against
    another.  The per-round p50s are kept in ``p50_rounds_ms``.

    Args:
        calibration_models: torchvision model names the efficiencies are fitted to.
        held_out_models: torchvision model names only predicted.
        resolution: Input side, px (small, to keep the run short on a small CPU).
        threads: ``torch.set_num_threads`` during the run (restored after).
        rounds: Interleaved measurement rounds (>= 1).
        min_queries: Latency queries per model and round at least.
        min_duration_s: Latency measurement per model and round at least, s.
        max_duration_s: ...and at most, s.
        progress: Called with a line of text per model and round.

    Returns:
        ``models`` (per model: measured ms, per-round p50s, modeled ms, % error,
        held-out flag, layers, GMACs, MB moved), ``peaks``, ``fit`` (η_c, η_b,
        t_layer ms), ``summary`` (mean / max abs % error on held-out and
        calibration models, machine, threads, load average, date), ``env``
        (:func:`evbench.harness.env.fingerprint`).

    Raises:
        ValueError: ``rounds < 1`` or fewer than 3 calibration models.
    """
    import torchvision
    from evbench.harness.env import fingerprint
    from evbench.harness.timing import measure_latency

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    say = progress or (lambda _s: None)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.time()
    load_start = _loadavg()
    try:
        rows, nets = [], {}
        for held, names in ((False, tuple(calibration_models)), (True, tuple(held_out_models))):
            for name in names:
                torch.manual_seed(0)
                net = torchvision.models.get_model(name, weights=None).eval()
                x = torch.randn(1, 3, resolution, resolution)
                nets[name] = (net, x)
                rows.append({"model": name, "held_out": held, "p50_rounds_ms": [], "queries": 0,
                             "layers_obj": layer_profile(net, (x,))})
        peak_rounds = []
        for r in range(rounds):
            peak_rounds.append(measure_cpu_peaks())
            say(f"round {r + 1}/{rounds}: peaks {peak_rounds[-1]['peak_gflops']:.1f} GFLOPS, "
                f"{peak_rounds[-1]['bandwidth_gbs']:.1f} GB/s ({threads} threads)")
            for row in rows:
                net, x = nets[row["model"]]

                def query(net: nn.Module = net, x: torch.Tensor = x) -> None:
                    with torch.inference_mode():
                        net(x)

                lat = measure_latency(query, device="cpu", min_queries=min_queries, min_duration_s=min_duration_s,
                                      max_duration_s=max_duration_s)
                row["p50_rounds_ms"].append(lat.p50)
                row["queries"] += lat.n
                say(f"  {row['model']:22s} p50 {lat.p50:8.2f} ms ({lat.n} queries)"
                    + ("  held out" if row["held_out"] else ""))
        del nets
        for row in rows:
            row["measured_ms"] = min(row["p50_rounds_ms"])
        peaks = {
            "peak_gflops": max(p["peak_gflops"] for p in peak_rounds),
            "bandwidth_gbs": max(p["bandwidth_gbs"] for p in peak_rounds),
            "rounds": [{k: p[k] for k in ("peak_gflops", "bandwidth_gbs")} for p in peak_rounds],
            "method": peak_rounds[0]["method"] + f"; highest of {rounds} interleaved rounds",
            "threads": threads,
        }
        arrays = {r["model"]: layer_arrays(r.pop("layers_obj"), bytes_per_elem=_BYTES["fp32"], fuse=False)
                  for r in rows}
        cal_rows = [r for r in rows if not r["held_out"]]
        eff = fit_efficiencies([(arrays[r["model"]], r["measured_ms"]) for r in cal_rows],
                               peak_gflops=peaks["peak_gflops"], bandwidth_gbs=peaks["bandwidth_gbs"])
        for r in rows:
            a = arrays[r["model"]]
            r["modeled_ms"] = roofline_ms(a, peak_gflops=peaks["peak_gflops"], bandwidth_gbs=peaks["bandwidth_gbs"],
                                          eta_c=eff.eta_c, eta_b=eff.eta_b, t_layer_ms=eff.t_layer_ms)
            r["error_pct"] = _pct(r["modeled_ms"], r["measured_ms"])
            r["layers"] = a.n_layers
            r["gmacs"] = float(a.macs.sum() / 1e9)
            r["mbytes"] = float(a.bytes.sum() / 1e6)
    finally:
        torch.set_num_threads(old_threads)
    env = fingerprint(device="cpu", backend="torch", precision="fp32")
    env["threads"] = threads
    held_err = [abs(r["error_pct"]) for r in rows if r["held_out"]]
    cal_err = [abs(r["error_pct"]) for r in rows if not r["held_out"]]
    summary = {
        "runtime": "torch-cpu-fp32", "precision": "fp32", "bytes_per_elem": _BYTES["fp32"],
        "resolution": resolution, "batch": 1, "threads": threads,
        "held_out_models": [r["model"] for r in rows if r["held_out"]],
        "calibration_models": [r["model"] for r in rows if not r["held_out"]],
        "held_out_mean_abs_error_pct": float(np.mean(held_err)) if held_err else None,
        "held_out_max_abs_error_pct": float(np.max(held_err)) if held_err else None,
        "calibration_mean_abs_error_pct": float(np.mean(cal_err)) if cal_err else None,
        "eta_compute": eff.eta_c, "eta_bandwidth": eff.eta_b, "t_layer_ms": eff.t_layer_ms,
        "peaks_source": peaks["method"],
        "machine": env.get("cpu_model"), "cpu_cores_available": env.get("cpu_cores_available"),
        "load_average_1min": {"start": load_start, "end": _loadavg()},
        "date": env.get("time"), "seconds": time.time() - started,
        "rounds": rounds,
        "latency_convention": f"lowest of {rounds} interleaved per-round p50s of measure_latency (MLPerf "
                              f"SingleStream, wall clock, >= {min_queries} queries and >= {min_duration_s} s "
                              "per round), batch 1, eval, torch.inference_mode, random weights",
    }
    return {"kind": "evbench modeled-device validation", "summary": summary, "peaks": peaks,
            "fit": {"eta_compute": eff.eta_c, "eta_bandwidth": eff.eta_b, "t_layer_ms": eff.t_layer_ms,
                    "rms_log_error": eff.rms_log_error,
                    "method": "scipy.optimize.least_squares on log p50 latency of the calibration models"},
            "models": rows, "env": env}
