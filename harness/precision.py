"""Numeric precision of a measurement: ``fp32``, or ``fp16`` / ``bf16`` through ``torch.autocast``.

``MeasureSettings.precision`` (``evbench run --precision``, ``evbench profile
--precision``) chooses it.  What a lower precision means here:

* **torch backend** — every forward of the measurement (evaluation, the static
  upper bound, the latency queries, the hooked breakdown queries, offline FPS)
  runs inside ``torch.autocast(device_type, dtype)``: convolutions, GEMMs and
  RNN cells run in the lower precision, reductions and normalisations stay in
  fp32 (PyTorch's autocast op lists); the weights stay fp32 in memory.  One
  autocast region is entered per phase (not per query), so autocast's cache of
  cast weights is filled once per phase and the latency does not include
  re-casting the weights on every query — as a deployment that stores fp16
  weights would not.  Evaluation runs under the same precision as the timing, so
  the row's accuracy, decisions, exits and GMACs/video are those of the timed
  precision (an adaptive method's threshold decisions may change with it;
  GMACs count multiply-accumulates and do not depend on the precision).
* ``fp16`` needs a CUDA device (NVIDIA's fp16 tensor cores; the precision of
  the Jetson numbers).  On a CPU it is refused (one line, exit 2): PyTorch's
  CPU fp16 kernels are mostly emulated and far slower than fp32, so a CPU fp16
  latency would describe no deployment.  ``bf16`` runs on a CPU (oneDNN bf16,
  native on AVX512-BF16 / AMX, emulated elsewhere — the row's ``cpu_model``
  says which) and on CUDA devices that support it
  (``torch.cuda.is_bf16_supported()``).
* **onnxruntime backend** — the exported graphs are fp32; ``fp16`` is accepted
  only with the TensorRT execution provider (``trt_fp16_enable``: TensorRT
  picks fp16 kernels), everything else is refused.
* **modeled devices** — the evaluation runs on this CPU under the same rule;
  the modeled latency comes from the runtime's calibration (``pytorch-fp16``
  or ``tensorrt-fp16``) whatever the precision.

The row records ``precision`` and ``conventions["precision"]`` (how), and the
environment fingerprint's ``precision`` (part of the history's machine key).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from evbench.harness.settings import PRECISIONS, SettingsError

__all__ = ["PRECISIONS", "check_precision", "autocast", "precision_convention", "DTYPES"]

#: Autocast dtype of each lower precision.
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}

_TRT = "TensorrtExecutionProvider"


def _device_type(device: str) -> str:
    dev = str(device).split("@", 1)[0]
    if dev.endswith("-modeled"):
        return "cpu"  # the evaluation of a modeled device runs on this CPU
    return "cuda" if dev.startswith("cuda") else "cpu"


def check_precision(precision: str, device: str, *, backend: str = "torch",
                    providers: Sequence[Any] | None = None, source: str = "--precision") -> None:
    """Refuse a precision the device or backend cannot run, with one line.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        device: ``"cpu"``, ``"cuda[:N]"``, ``"cuda@board"`` or a modeled device.
        backend: ``"torch"`` or ``"onnxruntime"``.
        providers: ONNX Runtime providers (names or ``(name, options)``), for
            ``backend="onnxruntime"``.
        source: How the setting was given, first in the message.

    Raises:
        SettingsError: Unknown precision, fp16 off CUDA, bf16 on a GPU without
            bf16, or a lower precision on ONNX Runtime without TensorRT.
    """
    err = SettingsError
    if precision not in PRECISIONS:
        raise err(f"{source} {precision!r}: choose from {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    kind = _device_type(device)
    if backend == "onnxruntime":
        names = [p[0] if isinstance(p, (tuple, list)) else str(p) for p in (providers or [])]
        if precision == "fp16" and names[:1] == [_TRT]:
            return
        raise err(f"{source} {precision} with --backend onnxruntime: the exported graphs are fp32; only fp16 "
                  f"with the TensorRT execution provider first (--providers tensorrt) is supported "
                  f"(providers here: {', '.join(names) or 'CPUExecutionProvider'})")
    if precision == "fp16" and str(device).endswith("-modeled"):
        raise err(f"{source} fp16 on {device}: a modeled device's latency is already its fp16 runtime's "
                  "(pytorch-fp16 / tensorrt-fp16 calibration) and its evaluation runs on this CPU, where fp16 "
                  "is refused; leave --precision at fp32 (or bf16 for a bf16 CPU evaluation)")
    if precision == "fp16" and kind != "cuda":
        raise err(f"{source} fp16 on {device}: fp16 needs a CUDA device (PyTorch's CPU fp16 kernels are "
                  "emulated and slower than fp32); use --precision bf16 on a CPU")
    if precision == "bf16" and kind == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise err(f"{source} bf16 on {device}: this GPU ({torch.cuda.get_device_name()}) does not support bf16; "
                  "use --precision fp16")


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager[Any]:
    """The context a measurement phase runs in: ``torch.autocast`` for fp16/bf16, nothing for fp32.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (checked by :func:`check_precision` first).
        device: The run device (its type picks autocast's ``device_type``).

    Returns:
        A context manager.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    kind = torch.device(device).type
    return torch.autocast(device_type=kind if kind in ("cuda", "cpu") else "cpu", dtype=DTYPES[precision])


def precision_convention(precision: str, device: str | torch.device, backend: str = "torch") -> str:
    """How the row's precision was applied, in words (``conventions["precision"]``).

    On CUDA the TF32 switches are part of it: with ``torch.backends.cudnn.allow_tf32``
    (PyTorch's default: on) an "fp32" convolution on an Ampere or newer GPU runs in TF32.
    """
    kind = torch.device(device).type
    tf32 = (f"; TF32: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
            f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}") if kind == "cuda" else ""
    if precision == "fp32":
        return "fp32: weights, activations and kernels in float32 (no autocast)" + tf32
    if backend == "onnxruntime":
        return (f"{precision}: fp32 ONNX graphs, TensorRT execution provider with trt_fp16_enable "
                "(TensorRT chooses fp16 kernels per layer)")
    return (f"{precision}: torch.autocast(device_type={kind!r}, dtype={DTYPES[precision]}) around evaluation, "
            "latency, breakdown and offline phases (one region per phase, weights fp32 in memory, cast once "
            "per phase by autocast's cache); evaluation and timing at the same precision" + tf32)
