"""Modeled per-clip latency of a method's traces on a modeled device (:func:`model_latency`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from evbench.harness.devices.modeled.calibration import calibration
from evbench.harness.devices.modeled.layers import layer_arrays, layer_profile, roofline_ms
from evbench.harness.devices.modeled.profiles import device_profile, runtime_of
from evbench.harness.devices.modeled.validation import validation_summary

__all__ = ["MODELED_NOTE", "model_latency"]

#: The sentence every modeled result carries.
MODELED_NOTE = (
    "MODELED, not measured: this latency comes from a roofline model (per-layer MACs and bytes "
    "against the device's peak FP16 rate and memory bandwidth, with efficiencies fitted to "
    "published batch-1 benchmarks); no board was attached."
)

_LAYER_CACHE_ATTR = "_evbench_roofline_layers"


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
    runtime = runtime_of(backend)
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
