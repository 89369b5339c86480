"""ONNX Runtime backend: every costed module exported on its own, the control flow kept in Python.

DESIGN §7: "ONNX Runtime (CPU, CUDA, TensorRT execution providers) with every
module exported separately and the method's control flow kept in Python, so
one harness runs the same decisions on any backend."

How it works, for any registered method and without knowing it by name:

1. :func:`export_modules` exports each *counted* entry of
   :meth:`~evbench.harness.api.Method.cost_entries` — a submodule at one per-sample
   input shape (each backbone at each resolution, policy encoder, LSTM cells,
   gates, heads) — to its own ONNX graph with a dynamic batch dimension
   (TorchScript-based exporter, ``dynamo=False``, opset 17; the example batch
   is 2 so that no batch-size arithmetic is frozen to 1). Nested inputs and
   outputs (an ``LSTMCell``'s ``(x, (h, c))`` → ``(h, c)``) are flattened with
   ``torch.utils._pytree`` and rebuilt on the way back. Declared entries (the
   CNN that produced pre-extracted features) run outside the method and are not
   exported.
2. :func:`to_onnxruntime` returns a copy of the method in which each exported
   submodule is replaced by an :class:`OrtModule`: same name, same call
   signature, but its ``forward`` feeds the tensors to an
   ``onnxruntime.InferenceSession`` chosen by the per-sample input shape. The
   method's own ``forward`` — its decisions, exits, skips, batching of the
   active set — runs unchanged in Python, so traces, cost accounting and the
   harness's timing apply to both backends alike.
3. :func:`max_abs_logit_diff` runs torch and ONNX Runtime on the same clips and
   knobs and reports the largest logit difference and whether every sample's
   decisions (its trace) matched.

:func:`export_bundle` writes the modules plus a ``manifest.json`` (format
``evbench-onnx-bundle/1``) holding the card, the cost of each module and the
decision *schedules* — the ordered module calls of each example clip recorded
while the ONNX Runtime copy ran — which the numpy/onnxruntime-only device agent
(:mod:`evbench.harness.agent`) replays on boards whose Python cannot run PyTorch.

Tensors cross between PyTorch and ONNX Runtime through host numpy arrays; with
the CUDA or TensorRT execution providers the host↔device copies are therefore
inside the measured latency (stated in :func:`backend_info`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree
from evbench.harness.api import CostEntry, Method
from evbench.harness.costs import cost_table
from torch import nn

__all__ = [
    "BUNDLE_FORMAT",
    "OPSET",
    "ExportedModule",
    "OnnxBackendError",
    "OrtModule",
    "backend_info",
    "export_bundle",
    "export_modules",
    "max_abs_logit_diff",
    "resolve_providers",
    "to_onnxruntime",
]

BUNDLE_FORMAT = "evbench-onnx-bundle/1"
OPSET = 13  # JetPack 4.6 (Nano) ships onnxruntime 1.11 and TensorRT 8.2; both load opset 13
_INFO_ATTR = "_evbench_onnx"
_PROVIDER_SHORT = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
                   "TensorrtExecutionProvider": "tensorrt"}
#: ``--providers`` short names: each expands to the provider and its fallbacks, in priority order.
PROVIDER_ALIASES = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    "trt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


class OnnxBackendError(RuntimeError):
    """Export or execution through ONNX Runtime failed; the message names the module and shape."""


@dataclass
class ExportedModule:
    """One costed module at one per-sample input shape, exported to ONNX.

    Attributes:
        module: Dotted submodule path in the method (the cost-table key's name).
        input_shape: Per-sample shape of the first input (the cost-table key's shape).
        role: Cost role (``backbone``, ``policy``, ``head``).
        gmacs: Cost-table GMACs of one call on one sample.
        file: Path of the ``.onnx`` file relative to the bundle directory.
        inputs: ``{"name", "shape", "dtype"}`` per flattened input; ``shape[0]``
            is ``None`` (the dynamic batch dimension).
        outputs: The same for each flattened output.
        in_spec: Serialised pytree spec of the call's positional arguments.
        out_spec: Serialised pytree spec of the module's return value.
    """

    module: str
    input_shape: tuple[int, ...]
    role: str
    gmacs: float
    file: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    in_spec: str
    out_spec: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form used in ``manifest.json``."""
        return {"module": self.module, "input_shape": list(self.input_shape), "role": self.role,
                "gmacs": self.gmacs, "file": self.file, "inputs": self.inputs, "outputs": self.outputs,
                "in_spec": self.in_spec, "out_spec": self.out_spec}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExportedModule:
        """Inverse of :meth:`to_dict`."""
        return cls(module=d["module"], input_shape=tuple(d["input_shape"]), role=d["role"], gmacs=float(d["gmacs"]),
                   file=d["file"], inputs=list(d["inputs"]), outputs=list(d["outputs"]), in_spec=d["in_spec"],
                   out_spec=d["out_spec"])


class _Flat(nn.Module):
    """Adapter exported in place of a submodule: flat tensors in, flat tensors out."""

    def __init__(self, sub: nn.Module, in_spec: pytree.TreeSpec) -> None:
        super().__init__()
        self.sub = sub
        self.in_spec = in_spec

    def forward(self, *flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        args = pytree.tree_unflatten(list(flat), self.in_spec)
        return tuple(pytree.tree_leaves(self.sub(*args)))


def _file_name(entry: CostEntry) -> str:
    shape = "x".join(str(s) for s in entry.input_shape) or "scalar"
    return f"modules/{re.sub(r'[^A-Za-z0-9_.-]', '_', entry.module)}@{shape}.onnx"


def _batch2(value: Any) -> Any:
    """Repeat batch-1 example tensors to batch 2 (so no size arithmetic is frozen to 1)."""
    if isinstance(value, torch.Tensor):
        return torch.cat([value, value]) if value.dim() > 0 and value.shape[0] == 1 else value
    return value


def _io_spec(prefix: str, tensors: Sequence[torch.Tensor]) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i}", "shape": [None, *list(t.shape[1:])], "dtype": str(t.dtype).removeprefix("torch.")}
            for i, t in enumerate(tensors)]


def export_modules(method: Method, out_dir: str | Path, *, opset: int = OPSET) -> list[ExportedModule]:
    """Export every counted cost entry of ``method`` to ``out_dir/modules/*.onnx``.

    Args:
        method: Any registered method (put in eval mode; its parameters must be
            on the CPU).
        out_dir: Bundle directory (created).
        opset: ONNX opset.

    Returns:
        One :class:`ExportedModule` per counted ``(module, input_shape)``.

    Raises:
        OnnxBackendError: A module that cannot be exported, or whose inputs or
            outputs are not tensors (the message names it and its shape).
    """
    out = Path(out_dir)
    (out / "modules").mkdir(parents=True, exist_ok=True)
    method.eval()
    table = cost_table(method)
    exported = []
    for entry in method.cost_entries():
        if entry.declared_gmacs is not None:
            continue
        sub = method.get_submodule(entry.module)
        args = tuple(pytree.tree_map(_batch2, entry.example_inputs()))
        flat_in, in_spec = pytree.tree_flatten(args)
        where = f"{method.card.name}: module {entry.module}{tuple(entry.input_shape)}"
        if not all(isinstance(t, torch.Tensor) for t in flat_in):
            raise OnnxBackendError(f"{where}: non-tensor inputs cannot be exported")
        with torch.no_grad():
            flat_out, out_spec = pytree.tree_flatten(sub(*args))
        if not all(isinstance(t, torch.Tensor) for t in flat_out):
            raise OnnxBackendError(f"{where}: non-tensor outputs cannot be exported")
        ins, outs = _io_spec("in", flat_in), _io_spec("out", flat_out)
        rel = _file_name(entry)
        axes = {d["name"]: {0: "batch"} for d in ins + outs}
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(_Flat(sub, in_spec).eval(), tuple(flat_in), str(out / rel), dynamo=False,
                                  input_names=[d["name"] for d in ins], output_names=[d["name"] for d in outs],
                                  dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        except Exception as exc:  # the exporter raises many types; name the module
            raise OnnxBackendError(f"{where}: ONNX export failed: {exc}") from exc
        exported.append(ExportedModule(
            module=entry.module, input_shape=tuple(entry.input_shape), role=entry.role, gmacs=table[entry.key],
            file=rel, inputs=ins, outputs=outs, in_spec=pytree.treespec_dumps(in_spec),
            out_spec=pytree.treespec_dumps(out_spec)))
    return exported


@dataclass
class _Session:
    spec: ExportedModule
    session: Any
    out_spec: pytree.TreeSpec
    in_count: int


@dataclass
class _Recorder:
    """Ordered ``(module, input_shape, batch)`` calls while recording is on."""

    active: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)


class OrtModule(nn.Module):
    """Stand-in for one costed submodule whose graphs run in ONNX Runtime.

    Called exactly like the submodule it replaces; picks the exported graph by
    the per-sample shape of its first input. Leading dimensions before that
    shape are flattened into the batch (a classifier applied to ``(B, T, D)``
    runs as ``B·T`` samples). Non-tensor arguments are not inputs of the graph:
    they are fixed per exported shape (e.g. RSEE's BN-bank index, which its
    backbone also derives from the resolution).

    Args:
        name: The submodule's dotted path in the method.
        sessions: Per-sample input shape -> loaded session.
        recorder: Shared call recorder (for bundle schedules).
    """

    def __init__(self, name: str, sessions: dict[tuple[int, ...], _Session], recorder: _Recorder) -> None:
        super().__init__()
        self.name = name
        self.sessions = sessions
        self.recorder = recorder
        # a zero-size parameter keeps ``next(method.parameters())`` working when every module is replaced
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, *args: Any) -> Any:
        """Run the exported graph: tensors ``(B, *input_shape)`` in, the module's outputs back.

        Raises:
            OnnxBackendError: The per-sample input shape was not exported, or
                ONNX Runtime failed (both name the module).
        """
        # non-tensor arguments (e.g. RSEE's BN-bank index, which its backbone also derives from the
        # resolution) are fixed per exported shape; the round-trip check catches a module where they are not
        flat = [a for a in pytree.tree_leaves(args) if isinstance(a, torch.Tensor)]
        s, lead = self._match(tuple(flat[0].shape))
        key = s.spec.input_shape
        batch = int(np.prod(lead)) if lead else 1
        if self.recorder.active:
            self.recorder.calls.append({"module": self.name, "input_shape": list(key), "batch": batch})
        device = flat[0].device
        if batch == 0:  # an empty active set: nothing to run, shapes from the manifest
            outs = [torch.zeros(*lead, *o["shape"][1:], device=device) for o in s.spec.outputs]
            return pytree.tree_unflatten(outs, s.out_spec)
        if len(flat) != s.in_count:
            raise OnnxBackendError(f"module {self.name}{key}: called with {len(flat)} tensors, exported with {s.in_count}")
        feeds = {}
        for d, t in zip(s.spec.inputs, flat, strict=True):
            arr = t.detach().cpu().reshape(batch, *t.shape[len(lead):]).numpy()
            feeds[d["name"]] = np.ascontiguousarray(arr)
        try:
            arrays = s.session.run(None, feeds)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
            raise OnnxBackendError(f"module {self.name}{key}: ONNX Runtime failed: {exc}") from exc
        outs = [torch.from_numpy(a).reshape(*lead, *a.shape[1:]).to(device) for a in arrays]
        return pytree.tree_unflatten(outs, s.out_spec)

    def _match(self, shape: tuple[int, ...]) -> tuple[_Session, tuple[int, ...]]:
        """The session whose per-sample shape ends ``shape``, and the leading (batch) dims before it.

        A module applied to ``(B, T, D)`` with a per-sample shape ``(D,)`` (a
        classifier on every frame's feature) runs as a batch of ``B·T``.
        """
        for key, sess in self.sessions.items():
            n = len(key)
            if len(shape) > n and tuple(shape[len(shape) - n:]) == key:
                return sess, tuple(shape[: len(shape) - n])
        raise OnnxBackendError(f"module {self.name} called with input {shape}; exported per-sample shapes: "
                               f"{sorted(self.sessions)} (the method executed a shape its cost_entries do not declare)")


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # ONNX Runtime's pool would otherwise spin between calls while torch's own pool runs the
    # method's Python-side tensor ops on the same cores
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def resolve_providers(providers: Sequence[str] | None) -> list[str]:
    """Execution provider names from full names or the short names ``cpu``, ``cuda``, ``tensorrt`` (``trt``).

    A short name brings its fallbacks (``tensorrt`` -> TensorRT, CUDA, CPU:
    ONNX Runtime assigns each node to the first provider that supports it);
    duplicates are dropped, the order kept.

    Args:
        providers: Names in priority order; ``None`` or empty: CPU.

    Returns:
        Full provider names.
    """
    out: list[str] = []
    for p in providers or ["CPUExecutionProvider"]:
        for name in PROVIDER_ALIASES.get(str(p).strip().lower(), (str(p).strip(),)):
            if name not in out:
                out.append(name)
    return out


def _check_providers(providers: Sequence[str] | None) -> list[str]:
    import onnxruntime as ort

    wanted = resolve_providers(providers)
    available = ort.get_available_providers()
    missing = [p for p in wanted if p not in available]
    if missing:
        raise OnnxBackendError(f"ONNX Runtime execution providers {missing} are not available here "
                               f"(onnxruntime {ort.__version__} has {available}); install onnxruntime-gpu "
                               f"for CUDA/TensorRT, or choose --providers cpu")
    return wanted


def _provider_options(providers: Sequence[str], root: Path, fp16: bool) -> list[Any]:
    """Providers as ``InferenceSession`` takes them: TensorRT with its engine cache (and fp16), others by name."""
    out: list[Any] = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            out.append((p, {"trt_fp16_enable": bool(fp16), "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(root / "trt-cache")}))
        else:
            out.append(p)
    return out


def to_onnxruntime(
    method: Method, *, providers: Sequence[str] | None = None, bundle_dir: str | Path | None = None,
    threads: int | None = None, opset: int = OPSET, fp16: bool = False,
) -> Method:
    """A copy of ``method`` whose costed modules run in ONNX Runtime.

    Args:
        method: Any registered method (CPU parameters).
        providers: Execution providers in priority order (default
            ``["CPUExecutionProvider"]``; ``CUDAExecutionProvider`` and
            ``TensorrtExecutionProvider`` where onnxruntime-gpu provides them).
        bundle_dir: Where the ``.onnx`` files go (default: a temporary directory
            that lives as long as the returned method).
        threads: ONNX Runtime intra-op threads (default ``torch.get_num_threads()``,
            so both backends are timed with the same thread count).
        opset: ONNX opset of the exported graphs.
        fp16: TensorRT provider only: let TensorRT build fp16 engines
            (``trt_fp16_enable``); the graphs stay fp32.

    Returns:
        The copy, in eval mode, with ``card``, ``cost_entries()`` and the cost
        table of the original; :func:`backend_info` describes it
        (``providers_active``: what ONNX Runtime actually loaded).

    Raises:
        OnnxBackendError: Export failed, a requested provider is unavailable,
            or ONNX Runtime fell back from the first requested provider (e.g.
            the CUDA provider without the CUDA/cuDNN libraries it needs).
    """

    wanted = _check_providers(providers)
    tmp = None
    if bundle_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="evbench-onnx-")
        bundle_dir = tmp.name
    cost_table(method)  # cached on the method, so the copy carries it
    specs = export_modules(method, bundle_dir, opset=opset)
    return _assemble(method, specs, Path(bundle_dir), wanted, threads, keep=tmp, opset=opset, fp16=fp16)


def _assemble(method: Method, specs: Sequence[ExportedModule], root: Path, providers: list[str],
              threads: int | None, keep: Any = None, opset: int = OPSET, fp16: bool = False) -> Method:
    import onnxruntime as ort

    ort_method = copy.deepcopy(method).eval()
    recorder = _Recorder()
    by_module: dict[str, dict[tuple[int, ...], _Session]] = {}
    opts = _session_options(threads)
    active: list[str] = []
    for spec in specs:
        sess = ort.InferenceSession(str(root / spec.file), sess_options=opts,
                                    providers=_provider_options(providers, root, fp16))
        active = list(sess.get_providers())
        if providers[0] not in active:  # ONNX Runtime falls back silently (a warning) when a provider fails to load
            raise OnnxBackendError(f"module {spec.module}{spec.input_shape}: ONNX Runtime did not load "
                                   f"{providers[0]} (session providers: {active}); for CUDA/TensorRT check that "
                                   "the CUDA, cuDNN and TensorRT libraries onnxruntime-gpu needs are on the "
                                   "library path")
        by_module.setdefault(spec.module, {})[spec.input_shape] = _Session(
            spec, sess, pytree.treespec_loads(spec.out_spec), len(spec.inputs))
    for name, sessions in by_module.items():
        parent_name, _, attr = name.rpartition(".")
        parent = ort_method.get_submodule(parent_name) if parent_name else ort_method
        setattr(parent, attr, OrtModule(name, sessions, recorder))
    short = _PROVIDER_SHORT.get(providers[0], providers[0])
    info = {
        "backend": f"onnxruntime-{short}", "providers": providers, "providers_active": active,
        "trt_fp16": bool(fp16) if "TensorrtExecutionProvider" in providers else None,
        "onnxruntime": ort.__version__,
        "opset": opset, "bundle_dir": str(root), "modules_exported": len(specs),
        "intra_op_threads": opts.intra_op_num_threads,
        "exporter": "torch.onnx.export(dynamo=False), dynamic batch, one graph per (module, input shape)",
        "transfer": "tensors cross as host numpy arrays (host<->device copies are inside the latency on GPU providers)",
        "_recorder": recorder, "_keep": keep, "_specs": list(specs),
    }
    object.__setattr__(ort_method, _INFO_ATTR, info)
    return ort_method


def backend_info(ort_method: Method) -> dict[str, Any]:
    """JSON-serialisable description of an ONNX Runtime copy (backend name, providers, versions, bundle).

    Raises:
        OnnxBackendError: ``ort_method`` did not come from :func:`to_onnxruntime`.
    """
    info = getattr(ort_method, _INFO_ATTR, None)
    if info is None:
        raise OnnxBackendError("not an ONNX Runtime copy (use evbench.harness.onnx_backend.to_onnxruntime)")
    return {k: v for k, v in info.items() if not k.startswith("_")}


def max_abs_logit_diff(
    method: Method, ort_method: Method, inputs: Sequence[torch.Tensor], *, knobs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Largest ``|logit_onnxruntime − logit_torch|`` over ``inputs``, and whether decisions matched.

    Args:
        method: The torch method.
        ort_method: Its ONNX Runtime copy.
        inputs: Clips ``(B, T, ...)`` (any batch).
        knobs: Operating point, the same for both.

    Returns:
        ``{"max_abs_logit_diff": float, "decisions_match": bool, "clips": int,
        "mismatched_clips": [index, ...]}`` — a decision mismatch (a threshold
        met by one backend and not the other) is listed, since its logits then
        come from different computations.
    """
    worst, mismatched = 0.0, []
    with torch.inference_mode():
        for i, x in enumerate(inputs):
            a = method(x, knobs=knobs)
            b = ort_method(x, knobs=knobs)
            worst = max(worst, float((a.logits.float() - b.logits.float().to(a.logits.device)).abs().max()))
            if [[s.to_dict() for s in t] for t in a.trace] != [[s.to_dict() for s in t] for t in b.trace]:
                mismatched.append(i)
    return {"max_abs_logit_diff": worst, "decisions_match": not mismatched, "clips": len(inputs),
            "mismatched_clips": mismatched}


def record_schedules(ort_method: Method, clips: Sequence[torch.Tensor], *,
                     knobs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The ordered module calls each batch-1 clip makes, recorded on the ONNX Runtime copy.

    Returns:
        Per clip: ``{"clip", "knobs", "gmacs", "frames_used", "calls": [{"module",
        "input_shape", "batch"}, ...]}`` with GMACs from the trace.
    """
    from evbench.harness.costs import trace_gmacs
    from evbench.harness.measure import frames_used

    recorder: _Recorder = getattr(ort_method, _INFO_ATTR)["_recorder"]
    table = cost_table(ort_method)
    out = []
    for i, x in enumerate(clips):
        recorder.calls, recorder.active = [], True
        try:
            with torch.inference_mode():
                res = ort_method(x[:1], knobs=knobs)
        finally:
            recorder.active = False
        tr = res.trace[0]
        out.append({"clip": i, "knobs": dict(knobs or {}), "gmacs": trace_gmacs(tr, table),
                    "frames_used": frames_used(tr), "calls": list(recorder.calls)})
    return out


def export_bundle(
    method: Method, out_dir: str | Path, *, example_clips: Sequence[torch.Tensor],
    knobs: Mapping[str, Any] | None = None, build: Mapping[str, Any] | None = None,
    providers: Sequence[str] | None = None, opset: int = OPSET,
) -> Path:
    """Write a bundle: every costed module as ONNX, decision schedules, the device agent.

    Args:
        method: The torch method (CPU).
        out_dir: Bundle directory (created; existing module files are overwritten).
        example_clips: Batch-1 clips whose decisions are recorded as schedules.
        knobs: Operating point of the schedules.
        build: How the method was built (registry name, config, overrides), stored as is.
        providers: Providers for the verification run here (default CPU).
        opset: ONNX opset (default 13, which JetPack 4.6's onnxruntime 1.11 and
            TensorRT 8.2 load; newer boards take higher ones).

    Returns:
        Path of ``manifest.json``. The manifest also stores the verification:
        ``max_abs_logit_diff`` of ONNX Runtime against torch on the example clips.

    Raises:
        OnnxBackendError: Export or verification failed to run.
    """
    out = Path(out_dir)
    ort_method = to_onnxruntime(method, providers=providers, bundle_dir=out, opset=opset)
    info = getattr(ort_method, _INFO_ATTR)
    check = max_abs_logit_diff(method, ort_method, example_clips, knobs=knobs)
    manifest = {
        "format": BUNDLE_FORMAT, "method": method.card.name, "config": method.card.config,
        "num_classes": int(getattr(method, "num_classes", 0) or 0), "card": method.card.to_dict(),
        "build": dict(build or {}), "opset": opset, "torch": torch.__version__,
        "exported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "modules": [s.to_dict() for s in info["_specs"]],
        "declared_costs": [{"module": e.module, "input_shape": list(e.input_shape), "gmacs": e.declared_gmacs,
                            "source": e.source} for e in method.cost_entries() if e.declared_gmacs is not None],
        "schedules": record_schedules(ort_method, example_clips, knobs=knobs),
        "verification": {**check, "providers": info["providers"], "onnxruntime": info["onnxruntime"]},
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
    try:
        from evbench.harness.agent import write_agent
    except ImportError:  # the agent is optional for torch-side use of a bundle
        pass
    else:
        write_agent(out)
    return path


def load_bundle(bundle_dir: str | Path, method: Method, *, providers: Sequence[str] | None = None,
                threads: int | None = None) -> Method:
    """Attach an existing bundle's graphs to ``method`` (built the same way) without re-exporting.

    Raises:
        OnnxBackendError: Not a bundle of this format, or its modules do not
            match the method's counted cost entries.
    """
    root = Path(bundle_dir)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise OnnxBackendError(f"{root / 'manifest.json'}: cannot read the bundle manifest: {exc}") from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise OnnxBackendError(f"{root / 'manifest.json'}: format {manifest.get('format')!r}, expected {BUNDLE_FORMAT}")
    specs = [ExportedModule.from_dict(d) for d in manifest["modules"]]
    want = {e.key for e in method.cost_entries() if e.declared_gmacs is None}
    have = {(s.module, s.input_shape) for s in specs}
    if want != have:
        raise OnnxBackendError(f"{root}: bundle modules do not match {method.card.name}: "
                               f"missing {sorted(want - have)}, unexpected {sorted(have - want)}")
    cost_table(method)
    return _assemble(method, specs, root, _check_providers(providers), threads)
