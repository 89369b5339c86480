"""Content-addressed memo of a frozen backbone's outputs during a method's own training stages.

Started from a cached TSN backbone (:mod:`evbench.harness.backbone_cache`), most
methods train only their own parts on top of it and run the backbone frozen:
eval mode, under ``torch.no_grad`` (uniform LSTM, LiteEval's joint stage,
AR-Net's and RSEE's policies, TLEE, FrameExit, DynGrid).  Every epoch then
recomputes the same backbone function on the same frames: the TSN training
offsets of a 16-frame clip with 8 segments choose among 2 frames per segment,
so after the first epoch most frames have been seen before.  LiteEval's
official code avoids this by training on pre-extracted features (Wu et al.,
NeurIPS 2019, §4); :class:`FrozenMemo` does the same for every method without
any method knowing: a frozen module's output for one input frame is computed
once and looked up afterwards.

**Exact, not approximate.** The key of a sample is a BLAKE2b digest of its
bytes (canonical C order, so the layout does not matter), its shape and dtype,
the call's non-tensor arguments (e.g. RSEE's BatchNorm bank) and the autocast
state.  The memo serves a call only when

* the module is in eval mode (no BatchNorm statistics update) and gradients are
  off (nothing needs the backbone's graph), the input is a CPU tensor with a
  batch dimension and every other argument is not a tensor, and nothing counts
  the ops being run (a JIT trace, as fvcore's MAC count, or a dispatch mode, as
  ``torch.utils.flop_counter.FlopCounterMode``); and
* the module's parameters and buffers are unchanged since the entries were
  stored: the sum of their ``Tensor._version`` counters (bumped by every
  in-place write: optimiser steps, BatchNorm statistics, ``load_state_dict``)
  is compared on every call and the module's entries are dropped when it moved.

Anything else runs the module as usual.  A module is assumed to treat the
samples of a batch independently (true of every backbone in eval mode); the
output of a sample can still differ in the last float bits from the one it
would get in another batch, because oneDNN's kernels depend on the batch size.
It is installed by :func:`evbench.harness.training.train_method`, and around
the uncounted evaluation batches of a run's cells by
:class:`evbench.harness.eval_memo.EvalMemoStore`, which keeps the outputs on
disk between cells (:meth:`FrozenMemo.preload`, :meth:`FrozenMemo.export`).
Latency, the breakdown and executed-MAC counting never go through it.

Memory: entries are stored up to ``max_mib`` (then the memo only serves what it
holds) and freed, with the heap handed back to the system, when training ends.
In the default suite the largest was 0.5 GB (DynGrid's stage outputs; TLEE 0.27 GB,
the others under 30 MB); 38–70 % of the frozen calls' samples were served.

Measured side by side (2-core AMD EPYC, 2026-12-03, default suite, cached
backbones): the methods' own stages took 184 s with the memo and 275 s without
(``bench/bench_frozen_memo.py`` keeps the ratio in check); every cell's top-1
and GMACs were the same as without it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["FrozenMemo", "MemoStats", "DEFAULT_MAX_MIB", "slot_modules", "frozen_in", "weights_digest",
           "StoredOutputs"]

#: Default cap of the stored outputs, MiB.
DEFAULT_MAX_MIB = 3072


@dataclass
class MemoStats:
    """What a :class:`FrozenMemo` did.

    Attributes:
        hits: Samples served from the memo.
        misses: Samples computed and stored (or computed when full).
        passthrough: Calls run as usual (training mode, gradients on, other inputs).
        invalidated: Times a module's entries were dropped because its weights or buffers changed.
        stored_mib: Peak size of the stored outputs, MiB.
        modules: Per memoised module path: ``{"hits", "misses"}`` (samples).
    """

    hits: int = 0
    misses: int = 0
    passthrough: int = 0
    invalidated: int = 0
    stored_mib: float = 0.0
    modules: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, name: str, hits: int, misses: int) -> None:
        """Add ``hits`` and ``misses`` samples of module ``name``."""
        self.hits += hits
        self.misses += misses
        per = self.modules.setdefault(name, {"hits": 0, "misses": 0})
        per["hits"] += hits
        per["misses"] += misses

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON), with ``hit_fraction`` = hits / (hits + misses)."""
        n = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "hit_fraction": round(self.hits / n, 4) if n else 0.0,
                "passthrough": self.passthrough, "invalidated": self.invalidated,
                "stored_mib": round(self.stored_mib, 1), "modules": {k: dict(v) for k, v in self.modules.items()}}


@dataclass
class StoredOutputs:
    """One module's stored outputs, as :meth:`FrozenMemo.export` gives and :meth:`FrozenMemo.preload` takes them.

    Attributes:
        outputs: Sample key -> output row (``(...)``, one sample of the module's ``(N, ...)`` output).
        channels_last: The module returns channels-last ``(N, C, H, W)`` batches (served batches keep that layout).
        added: Samples stored since the memo was created or preloaded (0: nothing new to keep).
    """

    outputs: dict[tuple[Any, ...], torch.Tensor]
    channels_last: bool = False
    added: int = 0


class _Entry:
    """One memoised module: its stored outputs and the state version they belong to."""

    def __init__(self, name: str, module: nn.Module) -> None:
        self.name = name
        self.module = module
        self.outputs: dict[tuple[Any, ...], torch.Tensor] = {}
        self.version = -1
        self.memory_format = torch.contiguous_format
        self.disabled = False
        self.active = True
        self.nbytes = 0
        self.added = 0  # samples stored since the entry was created or preloaded
        self.previous = module.__dict__.get("forward")  # an instance-level forward already set, restored on exit

    def state_version(self) -> int:
        return sum(t._version for t in (*self.module.parameters(), *self.module.buffers()))


class FrozenMemo:
    """Serve repeated calls of frozen modules from stored outputs (module docstring); a context manager.

    Inside ``with FrozenMemo(modules):`` each module's ``forward`` is wrapped;
    on exit the wrappers are removed and the stored outputs freed.  A call
    ``module(x, *args, **kwargs)`` with ``x`` of shape ``(N, ...)`` returns the
    same ``(N, ...)`` tensor the module computes (in the layout it computes),
    running the module only on the samples not stored yet.

    Args:
        modules: The frozen modules by name (module path, for :class:`MemoStats`); a submodule of
            one is not wrapped separately.
        max_mib: Cap of the stored outputs, MiB.

    Raises:
        ValueError: ``max_mib`` negative.
    """

    def __init__(self, modules: Mapping[str, nn.Module], *, max_mib: float = DEFAULT_MAX_MIB) -> None:
        if max_mib < 0:
            raise ValueError(f"max_mib must be >= 0, got {max_mib}")
        seen: set[int] = set()
        self.entries = [_Entry(k, m) for k, m in modules.items()
                        if id(m) not in seen and not seen.add(id(m))]  # each module once, in order
        self.max_bytes = int(max_mib * 2**20)
        self.stats = MemoStats()

    @property
    def stored_bytes(self) -> int:
        """Bytes of the outputs stored now (every module's)."""
        return sum(e.nbytes for e in self.entries)

    def __enter__(self) -> FrozenMemo:
        for entry in self.entries:
            entry.module.forward = self._wrap(entry, entry.module.forward)
        return self

    def __exit__(self, *exc: object) -> None:
        """Remove the wrappers, free the stored outputs and hand the freed heap back (:func:`release_free_heap`)."""
        for entry in self.entries:
            if entry.previous is None:
                entry.module.__dict__.pop("forward", None)  # back to the class's forward
            else:
                entry.module.forward = entry.previous
        freed = self.stored_bytes
        for entry in self.entries:
            entry.outputs.clear()
            entry.nbytes = 0
        if freed:
            from evbench.harness.memory import release_free_heap

            release_free_heap()  # RSS back down: a later cell's peak RSS must not carry the memo

    def activate(self, modules: Mapping[str, nn.Module]) -> None:
        """Serve only ``modules`` from now on (the others run as usual; their stored outputs are kept)."""
        keep = {id(m) for m in modules.values()}
        for entry in self.entries:
            entry.active = id(entry.module) in keep

    def preload(self, stored: Mapping[str, StoredOutputs]) -> None:
        """Start the named modules from stored outputs (:meth:`export` of a memo of the same weights).

        The caller vouches that each module computes what the stored outputs
        came from (:class:`evbench.harness.eval_memo.EvalMemoStore` keys them
        by :func:`weights_digest`); from here on the usual ``_version`` check
        guards them.  Outputs over the cap are not loaded.

        Args:
            stored: Module name -> its stored outputs.
        """
        for entry in self.entries:
            dump = stored.get(entry.name)
            if dump is None or not dump.outputs:
                continue
            entry.version = entry.state_version()
            entry.memory_format = torch.channels_last if dump.channels_last else torch.contiguous_format
            for key, t in dump.outputs.items():
                size = t.numel() * t.element_size()
                if self.stored_bytes + size > self.max_bytes:
                    break
                entry.outputs[key] = t
                entry.nbytes += size
            self.stats.stored_mib = max(self.stats.stored_mib, self.stored_bytes / 2**20)

    def export(self) -> dict[str, StoredOutputs]:
        """Module name -> its stored outputs (with the samples added since creation or preload), inside the block."""
        return {e.name: StoredOutputs(dict(e.outputs), e.memory_format is torch.channels_last, e.added)
                for e in self.entries if e.outputs}

    def _wrap(self, entry: _Entry, forward: Any) -> Any:
        def memo_forward(x: Any, *args: Any, **kwargs: Any) -> Any:
            extra = _extra_key(args, kwargs)
            if (not entry.active or entry.disabled or extra is None or entry.module.training or torch.is_grad_enabled()
                    or not isinstance(x, torch.Tensor) or x.device.type != "cpu" or x.dim() < 2 or not len(x)
                    or _counting()):
                self.stats.passthrough += 1
                return forward(x, *args, **kwargs)
            return self._call(entry, forward, x, args, kwargs, extra)

        return memo_forward

    def _call(self, entry: _Entry, forward: Any, x: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any],
              extra: tuple[Any, ...]) -> torch.Tensor:
        version = entry.state_version()
        if version != entry.version:
            if entry.outputs:
                self.stats.invalidated += 1
                entry.outputs.clear()
            entry.nbytes = entry.added = 0
            entry.version = version
        keys = _sample_keys(x, extra)
        found = [entry.outputs.get(k) for k in keys]
        miss = [i for i, t in enumerate(found) if t is None]
        if len(miss) == len(keys):
            out = forward(x, *args, **kwargs)
            if not isinstance(out, torch.Tensor) or out.dim() < 1 or len(out) != len(x):
                entry.disabled = True  # not a per-sample output: never memoised
                self.stats.passthrough += 1
                return out
            entry.memory_format = (torch.channels_last if out.dim() == 4 and not out.is_contiguous()
                                   and out.is_contiguous(memory_format=torch.channels_last)
                                   else torch.contiguous_format)
            self._store(entry, keys, out)
            self.stats.count(entry.name, 0, len(keys))
            return out
        if miss:
            fresh = forward(x[miss], *args, **kwargs)
            stored = self._store(entry, [keys[i] for i in miss], fresh)
            for j, i in enumerate(miss):
                found[i] = stored[j] if stored is not None else fresh[j]
        self.stats.count(entry.name, len(keys) - len(miss), len(miss))
        return torch.stack(found).contiguous(memory_format=entry.memory_format)

    def _store(self, entry: _Entry, keys: Sequence[tuple[Any, ...]], out: torch.Tensor) -> torch.Tensor | None:
        """Store a detached copy of ``out`` (one row per key) while under the cap; returns the copy or ``None``."""
        size = out.numel() * out.element_size()
        if self.stored_bytes + size > self.max_bytes:
            return None
        copy = out.detach().clone()
        entry.nbytes += size
        entry.added += len(keys)
        self.stats.stored_mib = max(self.stats.stored_mib, self.stored_bytes / 2**20)
        for j, k in enumerate(keys):
            entry.outputs[k] = copy[j]
        return copy


def _counting() -> bool:
    """Whether a JIT trace (fvcore's MAC count) or a dispatch mode (``FlopCounterMode``) watches the ops now."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    return torch.jit.is_tracing() or _get_current_dispatch_mode() is not None


def _extra_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """The non-tensor arguments of a call as a hashable key, or ``None`` if any is a tensor or unhashable."""
    extra = (*args, *sorted(kwargs.items()))
    if any(isinstance(a, torch.Tensor) or (isinstance(a, tuple) and any(isinstance(b, torch.Tensor) for b in a))
           for a in extra):
        return None
    try:
        hash(extra)
    except TypeError:
        return None
    return (extra, torch.is_autocast_enabled("cpu"))


def _sample_keys(x: torch.Tensor, extra: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """One key per sample of ``x``: digest of its bytes in C order, its shape, dtype and ``extra``."""
    flat = x.detach().contiguous().view(len(x), -1)
    if flat.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw 16-bit words
        flat = flat.view(torch.int16)
    rows = flat.numpy()
    shape, dtype = tuple(x.shape[1:]), str(x.dtype)
    return [(hashlib.blake2b(row.data, digest_size=16).digest(), shape, dtype, extra) for row in rows]


def slot_modules(method: nn.Module) -> dict[str, nn.Module]:
    """The modules of ``method`` its cached backbones fill (``backbone_slots()`` names), by module path.

    A container slot (TLEE's and DynGrid's ``stages``: an ``nn.ModuleList``,
    called stage by stage) gives its children, ``"stages.0"``, ... .  A method
    without ``backbone_slots`` gives ``{}``.
    """
    slots_fn = getattr(method, "backbone_slots", None)
    out: dict[str, nn.Module] = {}
    for slot in (slots_fn() if callable(slots_fn) else []):
        module = method.get_submodule(slot.name)
        if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            out.update({f"{slot.name}.{k}": m for k, m in module.named_children()})
        else:
            out[slot.name] = module
    return out


def frozen_in(modules: Mapping[str, nn.Module], params: Iterable[nn.Parameter]) -> dict[str, nn.Module]:
    """The entries of ``modules`` none of whose parameters is in ``params`` (a stage's optimiser)."""
    trained = {id(p) for p in params}
    return {k: m for k, m in modules.items() if not any(id(p) in trained for p in m.parameters())}


def weights_digest(module: nn.Module) -> str:
    """BLAKE2b digest of what a module computes: its class, its ``repr`` (layer settings) and its state.

    Two modules with the same digest compute the same function of their
    inputs (for modules whose forward depends only on these: every backbone
    here).  The state is every ``state_dict`` entry's name, shape, dtype and
    bytes (parameters and buffers, BatchNorm statistics included).

    Returns:
        32 hex digits.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(module).__module__}.{type(module).__qualname__}\n{module!r}".encode())
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()
