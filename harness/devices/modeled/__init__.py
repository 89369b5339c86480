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
model family predicts held-out networks on this CPU, and :func:`validate_device`
(``evbench model-validate --device cuda --precision fp16``) on an attached GPU.

Every number this module returns that is a latency is modeled, not measured,
and says so (``modeled: True``, ``modeled_note``).

The package, one job per module:

================  ==============================================================
``profiles``      device profiles (``profiles.toml``): peaks, bandwidth, clocks
``layers``        per-layer roofline counting: MACs, bytes, launches, time
``calibration``   fitting eta_c, eta_b, t_layer on published batch-1 points
``latency``       :func:`model_latency`: modeled per-clip latency of traces
``validation``    validating the model family on this CPU; the stored summary
================  ==============================================================
"""

from __future__ import annotations

from evbench.harness.devices.modeled.calibration import Efficiencies, calibration, fit_efficiencies
from evbench.harness.devices.modeled.latency import MODELED_NOTE, model_latency
from evbench.harness.devices.modeled.layers import (
    Layer,
    LayerArrays,
    layer_arrays,
    layer_profile,
    roofline_ms,
)
from evbench.harness.devices.modeled.profiles import (
    DeviceProfile,
    UnknownDeviceError,
    device_profile,
    is_modeled_device,
    modeled_devices,
)
from evbench.harness.devices.modeled.validation import (
    VALIDATION_PATH,
    measure_cpu_peaks,
    measure_peaks,
    validate_cpu,
    validate_device,
    validation_filename,
    validation_summary,
)

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
    "validate_device",
    "measure_peaks",
    "validation_filename",
    "MODELED_NOTE",
    "VALIDATION_PATH",
]
