"""Loading official checkpoints: prefix stripping, key renames, strict key checks.

Every converter in ``methods/`` maps an official state_dict's keys onto an
evbench method's and then calls :func:`load_converted`, which fails with the
full list of missing and unexpected keys instead of loading half a model.
Checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from evbench.harness.errors import UserError
from torch import nn

__all__ = ["CheckpointError", "CheckpointFormatError", "load_file", "read_state_dict", "strip_prefix", "rename_keys", "check_state_dict",
           "load_state_dict_checked", "load_converted"]


class CheckpointError(UserError, KeyError):
    """A checkpoint whose keys or shapes do not match the method (lists them all)."""

    def __str__(self) -> str:
        return str(self.args[0])


class CheckpointFormatError(CheckpointError, ValueError):
    """A readable PyTorch file that is not the expected kind of checkpoint (e.g. not an evbench checkpoint)."""


_ZIP_MAGIC = b"PK\x03\x04"
_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL)\s+([\w.]+)", re.IGNORECASE)


def load_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    Args:
        path: A checkpoint written by ``torch.save`` (zip or legacy format).

    Returns:
        The unpickled payload (tensors, dicts, lists, numbers, strings).

    Raises:
        CheckpointError: The file is missing, a directory, empty, truncated or
            corrupt, not a PyTorch file (e.g. a ``.npy``/``.npz``), or holds
            pickled code (objects other than weights), which ``weights_only``
            refuses: "refused: the file contains pickled code, evbench loads
            weights only".
    """
    import pickle

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if p.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    with p.open("rb") as f:
        head = f.read(8)
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(b"\x80"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (the file begins with {head!r}; "
                              "torch.save writes a zip archive)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if found or "weights only load failed" in str(exc).lower() and "global" in str(exc).lower():
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: refused: the file contains pickled code{what}, "
                                  "evbench loads weights only") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unpickling failed: "
                              f"{str(exc).strip().splitlines()[-1][:120]})") from None
    except EOFError:
        raise CheckpointError(f"{path}: truncated checkpoint ({size} bytes; the data ends early)") from None
    except RuntimeError as exc:
        text = str(exc)
        if "central directory" in text or "failed reading zip archive" in text:
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({size} bytes; "
                                  "its zip archive cannot be read)") from None
        if "not in a subdirectory" in text or "inline_container" in text or "PytorchStreamReader" in text:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (a zip archive without torch.save's "
                                  "layout, e.g. a .npz)") from None
        raise


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely and return its state_dict.

    Accepts a bare state_dict or a dict holding one under ``state_dict``,
    ``model`` or ``model_state_dict`` (the layouts of the official repositories).

    Raises:
        CheckpointError: An unreadable file (see :func:`load_file`), or no
            state_dict found (names the file and its top-level keys).
    """
    payload = load_file(path)
    if isinstance(payload, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in payload and isinstance(payload[key], Mapping):
                return dict(payload[key])
        if all(isinstance(v, torch.Tensor) for v in payload.values()):
            return dict(payload)
    top = list(payload)[:10] if isinstance(payload, Mapping) else type(payload).__name__
    raise CheckpointError(f"{path}: no state_dict found (top-level: {top})")


def strip_prefix(state: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Remove ``prefix`` (DataParallel's ``module.``) from every key that has it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def rename_keys(state: Mapping[str, Any], rules: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Apply regex ``(pattern, replacement)`` rules in order to every key (first match wins per rule)."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key, count=1)
        out[key] = value
    return out


def _s(items: list[Any], plural: str = "s") -> str:
    return "" if len(items) == 1 else plural


def _names(keys: list[str], few: int) -> str:
    shown = ", ".join(keys[:few])
    return shown + (f", ... ({len(keys) - few} more)" if len(keys) > few else "")


def check_state_dict(model: nn.Module, state: Mapping[str, Any], *, source: str, few: int | None = 3,
                     num_classes_flag: str = "--num-classes") -> None:
    """Refuse a state_dict whose keys or shapes do not match ``model``, with one summary line.

    Args:
        model: Target module (a :class:`~evbench.harness.api.Method` has
            ``num_classes``, used for the classifier-head hint).
        state: Checkpoint state_dict.
        source: The checkpoint's name (file path) for the message.
        few: Names shown per kind (missing, unexpected, shape); ``None``
            lists them all.
        num_classes_flag: The flag to suggest on a classifier-head mismatch.

    Raises:
        CheckpointError: Counts of missing keys, unexpected keys and shape
            mismatches with a few names of each, and — when only the
            classifier head's class count differs — the hint to pass
            ``--num-classes N``.  The full lists are on the exception's
            ``missing``, ``unexpected`` and ``mismatched`` attributes.
    """
    own = model.state_dict()
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(f"{source}: state_dict entries that are not tensors ({len(not_tensors)}): "
                              + _names(not_tensors, few or len(not_tensors)))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if not (missing or unexpected or mismatched):
        return
    n = few or max(len(missing), len(unexpected), len(mismatched), 1)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key{_s(missing)} ({_names(missing, n)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key{_s(unexpected)} ({_names(unexpected, n)})")
    if mismatched:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched]
        parts.append(f"{len(mismatched)} shape mismatch{_s(mismatched, 'es')}, checkpoint vs model ({_names(shapes, n)})")
    msg = f"{source}: checkpoint does not match {type(model).__name__}: " + "; ".join(parts)
    classes = getattr(model, "num_classes", None)
    heads = {int(state[k].shape[0]) for k in mismatched
             if classes is not None and state[k].dim() >= 1 and own[k].dim() >= 1
             and own[k].shape[0] == classes and tuple(state[k].shape[1:]) == tuple(own[k].shape[1:])}
    if heads and len(heads) == 1 and not missing and not unexpected:
        k = heads.pop()
        msg += f"; the checkpoint's classifier head has {k} classes, the model {classes}: pass {num_classes_flag} {k}"
    err = CheckpointError(msg)
    err.missing, err.unexpected, err.mismatched = missing, unexpected, mismatched
    raise err


def load_state_dict_checked(model: nn.Module, state: Mapping[str, Any], *, source: str) -> None:
    """:func:`check_state_dict` (summarised), then ``model.load_state_dict(state, strict=True)``.

    Raises:
        CheckpointError: See :func:`check_state_dict`.
    """
    check_state_dict(model, state, source=source)
    model.load_state_dict(dict(state), strict=True)


def load_converted(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str,
                   ignore: Callable[[str], bool] | None = None) -> None:
    """Load a converted state_dict strictly.

    Args:
        model: Target module.
        state: Converted state_dict (keys already in ``model``'s naming).
        source: The checkpoint's name for error messages.
        ignore: Predicate for checkpoint keys that are known to be unused
            (e.g. ``num_batches_tracked``) and may be dropped.

    Raises:
        CheckpointError: Listing every missing key, unexpected key and shape
            mismatch.
    """
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (ignore and ignore(k))}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        lines = [f"{source}: checkpoint does not match {type(model).__name__}"]
        if missing:
            lines.append(f"missing keys ({len(missing)}): " + ", ".join(missing))
        if unexpected:
            lines.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
        if shapes:
            lines.append(f"shape mismatches ({len(shapes)}): " + "; ".join(shapes))
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(dict(state), strict=True)
