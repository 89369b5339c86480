"""One training loop for every registered method, through its ``training_loss``.

The loop knows nothing of any method: for each stage in ``method.card.stages``
it optimises ``method.stage_parameters(stage)`` with Adam for
``method.stage_epochs(stage, epochs)`` epochs, calling
``method.training_loss(x, y, stage=stage, epoch=e)``.  It reads the *train*
split only; a bad clip is skipped and recorded, never fatal.

Checkpoints hold the state_dict plus the build configuration and are read back
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from evbench.harness.api import Method

__all__ = ["TrainSpec", "TrainReport", "train_method", "save_checkpoint", "load_checkpoint", "iterate_batches", "seed_everything"]


@dataclass(frozen=True)
class TrainSpec:
    """Training hyper-parameters (part of a cell's identity).

    Attributes:
        epochs: Total epoch budget, split over the method's stages.
        batch_size: Clips per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: Seed for init, sampling and shuffling.
    """

    epochs: int = 8
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "seed": self.seed}


@dataclass
class TrainReport:
    """What training did.

    Attributes:
        seconds: Wall time, s.
        steps: Optimiser steps.
        clips_seen: Training clips consumed (all epochs).
        logs: Per-epoch mean of each logged value, with ``stage`` and ``epoch``.
        skipped: ``{"path", "error"}`` of clips that failed to load.
    """

    seconds: float = 0.0
    steps: int = 0
    clips_seen: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def iterate_batches(
    dataset: Sequence[Any], indices: Sequence[int], batch_size: int, *, errors: list[dict[str, str]]
) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[Any]]]:
    """Yield ``(x, y, samples)`` batches from ``dataset[i]`` for ``i`` in ``indices``.

    ``x`` is the stacked ``Sample.x`` (``(B, T, ...)``), ``y`` the ``(B,)`` labels.
    A sample raising an exception is appended to ``errors`` as
    ``{"path", "error"}`` and skipped.
    """
    buf: list[Any] = []
    for i in indices:
        try:
            sample = dataset[i]
        except Exception as exc:  # noqa: BLE001 — any unreadable clip is recorded and skipped
            path = getattr(exc, "path", None) or str(getattr(dataset, "entries", [None] * (i + 1))[i] or i)
            errors.append({"path": str(path), "error": f"{type(exc).__name__}: {exc}"})
            continue
        buf.append(sample)
        if len(buf) == batch_size:
            yield _stack(buf)
            buf = []
    if buf:
        yield _stack(buf)


def _stack(samples: list[Any]) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    x = torch.stack([s.x for s in samples])
    y = torch.tensor([s.label for s in samples], dtype=torch.long)
    return x, y, samples


def train_method(
    method: Method, dataset: Sequence[Any], spec: TrainSpec, *, device: str | torch.device = "cpu",
    progress: bool = False,
) -> TrainReport:
    """Train ``method`` in place on ``dataset`` (train split) through its ``training_loss``.

    Args:
        method: Any registered method.
        dataset: Train-split dataset; items have ``.x`` and ``.label``.
        spec: Hyper-parameters.
        device: Where to train.
        progress: Show a tqdm bar per epoch.

    Returns:
        :class:`TrainReport`.  The method is left in eval mode.

    Raises:
        RuntimeError: If no training clip could be loaded.
    """
    from tqdm.auto import tqdm

    seed_everything(spec.seed)
    report = TrainReport()
    t0 = time.perf_counter()
    method.to(device)
    rng = np.random.default_rng(spec.seed)
    for stage in method.card.stages:
        params = method.stage_parameters(stage)
        if not params:
            continue
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
        n_epochs = method.stage_epochs(stage, spec.epochs)
        for epoch in range(n_epochs):
            method.train()
            if hasattr(dataset, "set_epoch"):  # new TSN segment offsets each epoch
                dataset.set_epoch(epoch)
            order = rng.permutation(len(dataset)).tolist()
            sums: dict[str, float] = {}
            n_batches = 0
            batches = iterate_batches(dataset, order, spec.batch_size, errors=report.skipped)
            bar = tqdm(batches, total=(len(order) + spec.batch_size - 1) // spec.batch_size,
                       desc=f"train {method.card.name} {stage} {epoch + 1}/{n_epochs}", disable=not progress, leave=False)
            for x, y, _ in bar:
                x, y = x.to(device), y.to(device)
                loss, logs = method.training_loss(x, y, stage=stage, epoch=epoch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                report.steps += 1
                report.clips_seen += len(y)
                n_batches += 1
                for k, v in {"loss": loss.item(), **logs}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            if n_batches == 0:
                raise RuntimeError(f"no training clip could be loaded ({len(report.skipped)} failed)")
            report.logs.append({"stage": stage, "epoch": epoch, **{k: v / n_batches for k, v in sums.items()}})
    method.eval()
    # one skip record per file, however many epochs hit it
    report.skipped = list({e["path"]: e for e in report.skipped}.values())
    report.seconds = time.perf_counter() - t0
    return report


def save_checkpoint(path: str | os.PathLike[str], method: Method, *, build: dict[str, Any], train: dict[str, Any],
                    class_names: Sequence[str], report: TrainReport) -> Path:
    """Save ``method``'s weights with the configuration that rebuilds it (atomic write).

    Args:
        path: Destination ``.pt``.
        method: Trained method.
        build: ``{"method", "config", "num_classes", "overrides"}`` for ``create_method``.
        train: The :class:`TrainSpec` dict and dataset it was trained on.
        class_names: Class order of the logits.
        report: The training report (logs are stored).

    Returns:
        The checkpoint path.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "evbench-checkpoint-1",
        "state_dict": {k: v.detach().cpu() for k, v in method.state_dict().items()},
        "build": build,
        "train": train,
        "class_names": list(class_names),
        "train_seconds": report.seconds,
        "logs": report.logs,
    }
    tmp = dest.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, dest)
    return dest


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: Missing file.
        ValueError: Not an evbench checkpoint (names the file).
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != "evbench-checkpoint-1":
        raise ValueError(f"{path}: not an evbench checkpoint")
    return payload
