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

__all__ = ["CheckpointError", "read_state_dict", "strip_prefix", "rename_keys", "load_converted"]


class CheckpointError(UserError, KeyError):
    """A checkpoint whose keys or shapes do not match the method (lists them all)."""

    def __str__(self) -> str:
        return str(self.args[0])


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely and return its state_dict.

    Accepts a bare state_dict or a dict holding one under ``state_dict``,
    ``model`` or ``model_state_dict`` (the layouts of the official repositories).

    Raises:
        CheckpointError: No state_dict found (names the file and its top-level keys).
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
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
