"""Validation of the model family on this CPU (``evbench model-validate``) and its stored summary.

:func:`validate_cpu` measures torchvision networks on this CPU, fits the
efficiencies on some and reports the error on the held-out rest;
:func:`validation_summary` reads the committed result (``cpu-validation.json``,
package data) that every modeled result carries.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from evbench.harness.devices.modeled.calibration import fit_efficiencies, pct_error
from evbench.harness.devices.modeled.layers import layer_arrays, layer_profile, roofline_ms
from evbench.harness.devices.modeled.profiles import BYTES
from torch import nn

__all__ = ["VALIDATION_PATH", "validation_summary", "measure_cpu_peaks", "measure_peaks", "validate_cpu",
           "validate_device", "validation_filename", "CPU_CALIBRATION_MODELS", "CPU_HELD_OUT_MODELS"]

#: The committed CPU validation result read into every modeled result (``validation``).
VALIDATION_PATH = Path(__file__).resolve().parent.parent / "cpu-validation.json"  # package data: ships in the wheel


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


CPU_CALIBRATION_MODELS = ("resnet18", "resnet34", "squeezenet1_1", "vgg11", "mobilenet_v3_large", "densenet121")
CPU_HELD_OUT_MODELS = ("resnet50", "mobilenet_v2", "alexnet", "shufflenet_v2_x1_0", "efficientnet_b0",
                       "regnet_x_400mf")


def _loadavg() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def measure_cpu_peaks(*, repeats: int = 5) -> dict[str, Any]:
    """Quick measured peaks of this CPU at the current thread count (:func:`measure_peaks` on ``cpu``, fp32)."""
    return measure_peaks("cpu", "fp32", repeats=repeats)


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def measure_peaks(device: str = "cpu", precision: str = "fp32", *, repeats: int = 5) -> dict[str, Any]:
    """Quick measured peaks of a device at a precision.

    * FLOPs: an n × n × n ``torch.mm`` at ``precision`` (2·n³ FLOPs; n = 1024
      on a CPU, 8192 on a GPU so that the GEMM fills it), best of ``repeats``
      (4 calls each; on CUDA timed with the device synchronised before and after).
    * Bandwidth: ``Tensor.copy_`` of 64 MiB on a CPU, 1 GiB on a GPU (bytes
      read + written), best of ``repeats``.

    Args:
        device: ``"cpu"`` or ``"cuda[:N]"``.
        precision: ``"fp32"`` or ``"fp16"`` (the GEMM's dtype).
        repeats: Timed repetitions; the fastest is kept.

    Returns:
        ``peak_gflops`` (GFLOPS), ``bandwidth_gbs`` (GB/s), ``method`` (text), ``threads``, ``device``.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    n = 8192 if cuda else 1024
    dtype = _DTYPES[precision]
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    torch.mm(a, b)
    sync()
    best = math.inf
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        sync()
        best = min(best, (time.perf_counter() - t0) / 4)
    mib = 1024 if cuda else 64
    src = torch.ones(mib * 1024 * 1024 // 4, device=dev)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best_copy = math.inf
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best_copy = min(best_copy, time.perf_counter() - t0)
    moved = 2 * src.numel() * src.element_size()
    return {"peak_gflops": 2 * n ** 3 / best / 1e9, "bandwidth_gbs": moved / best_copy / 1e9,
            "method": f"measured on {dev}: best of {repeats} x torch.mm {precision} {n}^3 (2 n^3 FLOPs); best of "
                      f"{repeats} x Tensor.copy_ of {mib} MiB (bytes read + written)"
                      + ("; device synchronised around each timing" if cuda else ""),
            "threads": torch.get_num_threads(), "device": str(dev)}


def validation_filename(device: str = "cpu") -> str:
    """``cpu-validation.json`` (read by every modeled result) or ``cuda-validation.json`` for a GPU run."""
    return "cuda-validation.json" if str(device).startswith("cuda") else "cpu-validation.json"


def validate_cpu(*, calibration_models: Iterable[str] = CPU_CALIBRATION_MODELS,
                 held_out_models: Iterable[str] = CPU_HELD_OUT_MODELS, resolution: int = 128, threads: int = 1,
                 rounds: int = 3, min_queries: int = 32, min_duration_s: float = 0.5, max_duration_s: float = 6.0,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validate the model family on this CPU (:func:`validate_device` on ``cpu`` at fp32)."""
    return validate_device(device="cpu", precision="fp32", calibration_models=calibration_models,
                           held_out_models=held_out_models, resolution=resolution, threads=threads, rounds=rounds,
                           min_queries=min_queries, min_duration_s=min_duration_s, max_duration_s=max_duration_s,
                           progress=progress)


def validate_device(*, device: str = "cpu", precision: str = "fp32",
                    calibration_models: Iterable[str] = CPU_CALIBRATION_MODELS,
                    held_out_models: Iterable[str] = CPU_HELD_OUT_MODELS, resolution: int = 128, threads: int = 1,
                    rounds: int = 3, min_queries: int = 32, min_duration_s: float = 0.5,
                    max_duration_s: float = 6.0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Validate the model family on an attached device: fit on some torchvision models, predict others.

    On ``cpu`` at ``fp32`` this is the committed CPU validation.  On a CUDA
    GPU at ``fp16`` it checks the model of the Jetson profiles' runtime
    ``pytorch-fp16`` (weights and inputs ``.half()`` as in torch2trt's PyTorch
    FP16 points, 2 bytes per element, no fusion) on a GPU that is attached:
    peaks measured on the GPU (:func:`measure_peaks`), latencies with CUDA
    events (:func:`evbench.harness.timing.measure_latency`); the layer profile
    (MACs, bytes, launches) is taken on the CPU copy before the network moves.
    Details of the CPU procedure follow.

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
        device: ``"cpu"`` or ``"cuda[:N]"``.
        precision: ``"fp32"`` or ``"fp16"`` (weights, inputs and the modeled bytes per element).
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
        ValueError: ``rounds < 1``, an unknown precision or fewer than 3 calibration models.
    """
    import torchvision
    from evbench.harness.env import fingerprint
    from evbench.harness.timing import measure_latency

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if precision not in _DTYPES:
        raise ValueError(f"precision {precision!r}: choose from {', '.join(_DTYPES)}")
    dev = torch.device(device)
    kind = dev.type
    dtype = _DTYPES[precision]
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
                layers = layer_profile(net, (x,))  # on the CPU copy: counts do not depend on the device
                nets[name] = (net.to(dev, dtype), x.to(dev, dtype))
                rows.append({"model": name, "held_out": held, "p50_rounds_ms": [], "queries": 0,
                             "layers_obj": layers})
        peak_rounds = []
        for r in range(rounds):
            peak_rounds.append(measure_peaks(str(dev), precision))
            say(f"round {r + 1}/{rounds}: peaks {peak_rounds[-1]['peak_gflops']:.1f} GFLOPS, "
                f"{peak_rounds[-1]['bandwidth_gbs']:.1f} GB/s ({threads} threads)")
            for row in rows:
                net, x = nets[row["model"]]

                def query(net: nn.Module = net, x: torch.Tensor = x) -> None:
                    with torch.inference_mode():
                        net(x)

                lat = measure_latency(query, device=dev, min_queries=min_queries, min_duration_s=min_duration_s,
                                      max_duration_s=max_duration_s, machine_state=kind == "cpu")
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
        arrays = {r["model"]: layer_arrays(r.pop("layers_obj"), bytes_per_elem=BYTES[precision], fuse=False)
                  for r in rows}
        cal_rows = [r for r in rows if not r["held_out"]]
        eff = fit_efficiencies([(arrays[r["model"]], r["measured_ms"]) for r in cal_rows],
                               peak_gflops=peaks["peak_gflops"], bandwidth_gbs=peaks["bandwidth_gbs"])
        for r in rows:
            a = arrays[r["model"]]
            r["modeled_ms"] = roofline_ms(a, peak_gflops=peaks["peak_gflops"], bandwidth_gbs=peaks["bandwidth_gbs"],
                                          eta_c=eff.eta_c, eta_b=eff.eta_b, t_layer_ms=eff.t_layer_ms)
            r["error_pct"] = pct_error(r["modeled_ms"], r["measured_ms"])
            r["layers"] = a.n_layers
            r["gmacs"] = float(a.macs.sum() / 1e9)
            r["mbytes"] = float(a.bytes.sum() / 1e6)
    finally:
        torch.set_num_threads(old_threads)
    env = fingerprint(device=str(dev), backend="torch", precision=precision)
    env["threads"] = threads
    held_err = [abs(r["error_pct"]) for r in rows if r["held_out"]]
    cal_err = [abs(r["error_pct"]) for r in rows if not r["held_out"]]
    summary = {
        "runtime": f"torch-{kind}-{precision}", "precision": precision, "bytes_per_elem": BYTES[precision],
        "device": str(dev), "gpu_name": env.get("gpu_name"),
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
                              "per round), batch 1, eval, torch.inference_mode, random weights"
                              + (f", weights and inputs {dtype} on {dev}, CUDA-event timing" if kind == "cuda" else ""),
    }
    return {"kind": "evbench modeled-device validation", "summary": summary, "peaks": peaks,
            "fit": {"eta_compute": eff.eta_c, "eta_bandwidth": eff.eta_b, "t_layer_ms": eff.t_layer_ms,
                    "rms_log_error": eff.rms_log_error,
                    "method": "scipy.optimize.least_squares on log p50 latency of the calibration models"},
            "models": rows, "env": env}
