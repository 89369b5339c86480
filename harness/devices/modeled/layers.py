"""Per-layer roofline counting: the layers a module runs, their MACs and bytes, and their roofline time.

:func:`layer_profile` records every leaf-module call of one forward (forward
hooks) with its MACs (conv / linear / RNN formulas, fvcore's convention; the
RNN count is :func:`evbench.harness.costs.module_rnn_macs`), weights and
activation elements; :func:`layer_arrays` turns layers into arrays (optionally
fusing batch-norm and activations into the preceding GEMM, as TensorRT does);
:func:`roofline_ms` times them against a peak rate and a bandwidth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from evbench.harness.costs import module_rnn_macs
from torch import nn

__all__ = ["Layer", "LayerArrays", "layer_profile", "layer_arrays", "roofline_ms"]

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
        return module_rnn_macs(module, x.numel() // module.input_size)
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
