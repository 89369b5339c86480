"""Cost counting in GMACs: the cost table, the trace sum, the executed count.

Convention (DESIGN §4): **GMACs** = multiply-accumulates × 1e-9, the unit papers
call "GFLOPs" (fvcore, thop, ptflops and torchvision count one fused
multiply-add as one).  ``gflops = 2 × gmacs`` is only ever derived.

Three independent counts, which must agree:

1. :func:`cost_table` — each ``(module, input shape)`` a method declares in
   :meth:`~evbench.harness.api.Method.cost_entries`, counted once, offline, with
   **fvcore** (``FlopCountAnalysis``, its default op handles: conv, matmul,
   linear, batch-norm at 2 per element with affine, adaptive pooling,
   upsampling; plus a handle for ``aten::lstm`` added here).  This is the
   convention of AR-Net Table 1 (ResNet-50 @224 = 4.11 GMACs).
2. :func:`trace_gmacs` — per sample, the sum of the cost table over the steps
   the sample actually executed (``Output.trace``).
3. :func:`executed_gmacs` — the MACs counted at the dispatcher while the same
   forward actually runs (``torch.utils.flop_counter.FlopCounterMode``, which
   counts 2 per MAC, ÷ 2), with formulas added for the kernels it misses:
   fused RNN layers (``mkldnn_rnn_layer`` on CPU, ``_cudnn_rnn`` on CUDA) and
   the element-wise ops fvcore counts (batch-norm, adaptive average pooling),
   so both counts follow one convention.

:func:`ptflops_gmacs` cross-checks static modules with ptflops, with its
``backend`` always explicit.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from evbench.harness.api import Method, TraceStep
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "count_gmacs_fvcore",
    "cost_table",
    "cost_table_rows",
    "trace_gmacs",
    "trace_gmacs_by_role",
    "executed_gmacs",
    "ptflops_gmacs",
    "rnn_macs",
    "lstm_weight_shapes",
    "lstm_macs",
    "module_rnn_macs",
    "CostTableError",
]

Shape = tuple[int, ...]
_CACHE_ATTR = "_evbench_cost_table"


class CostTableError(KeyError):
    """A trace step whose ``(module, input_shape)`` is not in the cost table."""


# --------------------------------------------------------------------------- fvcore


def rnn_macs(weight_shapes: Iterable[Sequence[int]], rows: int) -> int:
    """MACs of recurrent layers over ``rows`` (time steps × batch) inputs — THE recurrent MAC formula.

    Each row multiplies every weight matrix once: ``W_ih x + W_hh h`` (and
    ``W_hr h`` for a projected LSTM), so MACs = ``rows × Σ |W|`` over the
    weight matrices (biases and the element-wise gate non-linearities are not
    counted, as in fvcore/thop/ptflops).  For an LSTM layer ``W_ih`` is
    ``(4H, I)`` and ``W_hh`` ``(4H, H)``: ``4·H·(I + H)`` MACs per row.  Every
    RNN count of evbench (fvcore's ``aten::lstm`` handle, the fused-kernel
    formulas of :func:`executed_gmacs`, the modeled device's per-layer count)
    goes through this function.

    Args:
        weight_shapes: Shapes of the weight matrices (2-D; other shapes — biases — are ignored).
        rows: Inputs each matrix is applied to (time steps × batch).

    Returns:
        MACs (an integer count, not GMACs).
    """
    return int(rows) * sum(math.prod(w) for w in weight_shapes if w is not None and len(w) == 2)


def lstm_weight_shapes(input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False,
                       proj: int = 0) -> list[tuple[int, int]]:
    """Weight-matrix shapes of ``nn.LSTM(input_size, hidden_size, num_layers, bidirectional, proj_size=proj)``.

    Returns:
        Per layer and direction: ``W_ih (4H, I_l)``, ``W_hh (4H, R)`` and, with
        ``proj > 0``, ``W_hr (P, H)``; ``R = P or H``, ``I_l = input_size`` for
        layer 0, else ``R × directions``.
    """
    dirs = 2 if bidirectional else 1
    rec = proj or hidden_size
    shapes: list[tuple[int, int]] = []
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else rec * dirs
        for _ in range(dirs):
            shapes += [(4 * hidden_size, layer_in), (4 * hidden_size, rec)] + ([(proj, hidden_size)] if proj else [])
    return shapes


def lstm_macs(input_size: int, hidden_size: int, steps: int = 1, batch: int = 1, proj: int = 0) -> int:
    """MACs of a one-layer, one-direction LSTM over ``steps`` time steps (:func:`rnn_macs`).

    ``4·H·(I + R) (+ H·P with a projection)`` per step and sample, ``R = P or H``.
    """
    return rnn_macs(lstm_weight_shapes(input_size, hidden_size, proj=proj), steps * batch)


def module_rnn_macs(module: nn.Module, rows: int) -> int:
    """MACs of one call of an ``nn.RNNBase`` / ``nn.RNNCellBase`` module on ``rows`` inputs (:func:`rnn_macs`).

    Args:
        module: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` or their ``*Cell`` variants
            (every layer and direction: its ``weight_*`` matrices).
        rows: Time steps × batch of the call (for a cell: the batch).
    """
    shapes = [tuple(p.shape) for n, p in module.named_parameters(recurse=False) if n.startswith("weight_")]
    return rnn_macs(shapes, rows)


def _fvcore_lstm_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for ``aten::lstm`` (JIT signature ``input, hx, params, has_biases, num_layers, ...``).

    The weight matrices are read from the traced ``params`` list (every layer,
    direction and projection), so :func:`rnn_macs` counts exactly what runs.
    """
    from fvcore.nn.jit_handles import get_shape

    x_shape = get_shape(inputs[0])
    rows = math.prod(x_shape[:-1])  # steps x batch, either layout
    params = [get_shape(v) for v in inputs[2].node().inputs()]  # prim::ListConstruct of the weights
    return rnn_macs(params, rows)


def count_gmacs_fvcore(module: nn.Module, inputs: tuple[Any, ...]) -> float:
    """GMACs of one call ``module(*inputs)`` counted with fvcore.

    Args:
        module: Any module (put in eval mode for the count, mode restored).
        inputs: Positional inputs, batch 1.

    Returns:
        GMACs (fvcore convention, see module docstring).
    """
    with warnings.catch_warnings():  # fvcore.nn's import scripts its focal losses: torch 2.14 warns on jit.script
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    was_training = module.training
    module.eval()
    try:
        analysis = FlopCountAnalysis(module, inputs)
        analysis.set_op_handle("aten::lstm", _fvcore_lstm_handle)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with torch.no_grad():
            total = analysis.total()
    finally:
        module.train(was_training)
    return total / 1e9


def cost_table(method: Method, *, refresh: bool = False) -> dict[tuple[str, Shape], float]:
    """GMACs per ``(module, input_shape)`` for every entry of ``method.cost_entries()``.

    Counted entries use :func:`count_gmacs_fvcore` on
    ``method.get_submodule(entry.module)`` with ``entry.example_inputs()``;
    declared entries (e.g. an external feature extractor) take
    ``entry.declared_gmacs``.  The table is cached on the method.

    Raises:
        AttributeError: If a counted entry names no submodule.
        UserError: A declared cost (e.g. ``gmacs_per_frame`` of a feature
            file or ``--set``) that is NaN, inf or negative: never a negative
            GMACs row (:func:`evbench.harness.checks.check_gmacs`).
    """
    from evbench.harness.checks import check_gmacs

    cached = getattr(method, _CACHE_ATTR, None)
    if cached is not None and not refresh:
        return dict(cached)
    table: dict[tuple[str, Shape], float] = {}
    device = _device_of(method)
    for entry in method.cost_entries():
        if entry.declared_gmacs is not None:
            table[entry.key] = check_gmacs(entry.declared_gmacs, f"{method.card.name} cost entry {entry.module}",
                                           key=f"declared GMACs ({entry.source or 'no source'})")
            continue
        sub = method.get_submodule(entry.module)
        inputs = tuple(_to(v, device) for v in entry.example_inputs())
        table[entry.key] = count_gmacs_fvcore(sub, inputs)
    object.__setattr__(method, _CACHE_ATTR, table)
    return dict(table)


def cost_table_rows(method: Method) -> list[dict[str, Any]]:
    """The cost table as a list of ``{module, input_shape, gmacs, role, counted_by}`` rows."""
    table = cost_table(method)
    rows = []
    for entry in method.cost_entries():
        rows.append(
            {
                "module": entry.module,
                "input_shape": list(entry.input_shape),
                "gmacs": table[entry.key],
                "role": entry.role,
                "counted_by": f"declared: {entry.source}" if entry.declared_gmacs is not None else "fvcore",
            }
        )
    return rows


def trace_gmacs(trace: Sequence[TraceStep], table: Mapping[tuple[str, Shape], float]) -> float:
    """Per-sample GMACs: the sum of ``table`` over the steps of one sample's trace.

    Raises:
        CostTableError: If a step's ``(module, input_shape)`` has no cost entry —
            the method executed something it did not declare.
    """
    total = 0.0
    for step in trace:
        try:
            total += table[step.key]
        except KeyError:
            raise CostTableError(
                f"trace step {step.module}{tuple(step.input_shape)} (frame {step.frame}) is not in the cost table"
            ) from None
    return total


def trace_gmacs_by_role(trace: Sequence[TraceStep], table: Mapping[tuple[str, Shape], float]) -> dict[str, float]:
    """Per-sample GMACs split by :attr:`TraceStep.role` (policy, backbone, head, input)."""
    out: dict[str, float] = {}
    for step in trace:
        out[step.role] = out.get(step.role, 0.0) + table[step.key]
    return out


# --------------------------------------------------------------------------- executed count


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def _bn_flops(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # args: input_shape, weight_shape, ... (shapes, via FlopCounterMode's shape wrapper)
    x_shape, weight = args[0], args[1] if len(args) > 1 else None
    return 2 * _prod(x_shape) * (2 if weight is not None else 1)


def _adaptive_pool_flops(x_shape: Sequence[int], *args: Any, **kwargs: Any) -> int:
    return 2 * _prod(x_shape)


def _mkldnn_rnn_layer_flops(x_shape: Sequence[int], w0: Sequence[int], w1: Sequence[int], *args: Any, **kwargs: Any) -> int:
    # input (T, B, I) or (B, T, I); weight0 = W_ih (4H, I), weight1 = W_hh (4H, H); one direction, one layer
    return 2 * rnn_macs([w0, w1], _prod(x_shape[:-1]))


def _cudnn_rnn_flops(x_shape: Sequence[int], weights: Sequence[Sequence[int]], *args: Any, **kwargs: Any) -> int:
    # weights: flat list (w_ih, w_hh[, b_ih, b_hh][, w_hr]) per layer and direction; rnn_macs counts the matrices
    return 2 * rnn_macs(weights, _prod(x_shape[:-1]))


def _custom_formulas() -> dict[Any, Callable[..., int]]:
    aten = torch.ops.aten
    table: dict[Any, Callable[..., int]] = {}
    for name in ("native_batch_norm", "_native_batch_norm_legit_no_training", "cudnn_batch_norm", "miopen_batch_norm"):
        if hasattr(aten, name):
            table[getattr(aten, name)] = _bn_flops
    for name in ("_adaptive_avg_pool2d", "_adaptive_avg_pool3d"):
        if hasattr(aten, name):
            table[getattr(aten, name)] = _adaptive_pool_flops
    if hasattr(aten, "mkldnn_rnn_layer"):
        table[aten.mkldnn_rnn_layer] = _mkldnn_rnn_layer_flops
    if hasattr(aten, "_cudnn_rnn"):
        table[aten._cudnn_rnn] = _cudnn_rnn_flops
    return table


def executed_gmacs(run: Callable[[], Any]) -> float:
    """GMACs counted while ``run()`` executes (all samples of its batch together).

    Uses ``FlopCounterMode`` (2 FLOPs per MAC for convolutions and matmuls) ÷ 2,
    with formulas added for fused RNN kernels and for batch-norm / adaptive
    pooling so the convention matches fvcore's (see module docstring).

    Args:
        run: A zero-argument callable running the forward to count.

    Returns:
        GMACs executed.
    """
    with FlopCounterMode(display=False, custom_mapping=_custom_formulas()) as counter:
        run()
    return counter.get_total_flops() / 2e9


# --------------------------------------------------------------------------- ptflops


def ptflops_gmacs(module: nn.Module, input_shape: Shape, *, backend: str) -> float:
    """GMACs of ``module`` on a batch-1 input of ``input_shape`` counted by ptflops.

    Args:
        module: A static module with a single tensor input.
        input_shape: Per-sample input shape (ptflops adds the batch dim).
        backend: ``"pytorch"`` (module hooks) or ``"aten"`` (dispatcher) — always
            explicit, because the two differ (the ``pytorch`` backend counts
            batch-norm and ReLU, ``aten`` only convolutions and matmuls).

    Returns:
        GMACs.
    """
    from ptflops import get_model_complexity_info

    was_training = module.training
    module.eval()
    try:
        macs, _params = get_model_complexity_info(
            module, tuple(input_shape), as_strings=False, backend=backend,
            print_per_layer_stat=False, verbose=False,
        )
    finally:
        module.train(was_training)
    return float(macs) / 1e9


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    return value
