"""One training loop for every registered method, through its ``training_loss``.

The loop knows nothing of any method: for each stage in ``method.card.stages``
it optimises ``method.stage_parameters(stage)`` with Adam for
``method.stage_epochs(stage, epochs)`` epochs, calling
``method.training_loss(x, y, stage=stage, epoch=e)``.  It reads the *train*
split only; a bad clip is skipped and recorded, never fatal.

Modules a stage does not train — the cached backbones named by the method's
``backbone_slots`` — are served through :class:`evbench.harness.frozen_memo.FrozenMemo`
while they run frozen (eval mode, no gradients): a frame seen in an earlier
epoch or stage is not computed again (LiteEval's pre-extracted features, for
every method); :attr:`TrainReport.frozen_memo` says what it served.

Checkpoints hold the state_dict plus the build configuration and are read back
with ``torch.load(weights_only=True)``.

Reproducibility: identical runs with the same seed give identical weights and
accuracy.  The runner seeds every RNG (:func:`seed_everything`: Python
``random``, NumPy's global RNG, torch on every device) with the
:class:`TrainSpec` seed *before building* the method (so the initial weights are
fixed), and :func:`train_method` seeds them again before training; the epoch
order is ``numpy.random.default_rng(seed).permutation``, TSN training offsets
are drawn from ``default_rng([seed, epoch, clip, draw])`` (the dataset's seed is
set to the spec's), and training runs under :func:`deterministic_algorithms`.
:func:`run_seeds` is what a result row records.  Weights are bit-identical for
one thread count; a different intra-op thread count can change float summation
order (the row's ``threads`` says which was used).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from evbench.harness.api import Method

if TYPE_CHECKING:
    from evbench.harness.frozen_memo import FrozenMemo

__all__ = ["TrainSpec", "TrainReport", "train_method", "save_checkpoint", "load_checkpoint",
           "load_checkpoint_into", "iterate_batches", "LR_SCHEDULES", "epoch_lr",
           "seed_everything", "deterministic_algorithms", "run_seeds", "validation_split", "validation_metrics",
           "curve_path", "write_curve"]


#: Learning-rate schedules of :class:`TrainSpec` (see :func:`epoch_lr`).
LR_SCHEDULES = ("constant", "cos")


def epoch_lr(lr: float, epoch: int, epochs: int, schedule: str) -> float:
    """Learning rate of epoch ``epoch`` (0-based) of ``epochs`` under ``schedule``.

    ``"cos"`` is ``lr · ½(1 + cos(π · epoch / epochs))``, stepped per epoch as
    the TSM / AR-Net training code's ``--lr_type cos`` (AR-Net official
    ``main_base.py`` ``adjust_learning_rate``); ``"constant"`` is ``lr``.

    Raises:
        ValueError: An unknown schedule.
    """
    if schedule == "constant":
        return lr
    if schedule == "cos":
        return 0.5 * lr * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    raise ValueError(f"lr schedule must be one of {', '.join(LR_SCHEDULES)}; got {schedule!r}")


@dataclass(frozen=True)
class TrainSpec:
    """Training hyper-parameters (part of a cell's identity).

    Attributes:
        epochs: Total epoch budget, split over the method's stages.
        batch_size: Clips per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: Seed for init, sampling and shuffling.
        val_fraction: Fraction of the train split held out of training as a
            validation split for the training curves (``0``: none; every train
            clip is trained on).  Carved per class like the test carve-out
            (:func:`~evbench.harness.data.sampling.blocked_stratified_split`
            by clip id), so it never holds a test clip and is never trained on.
        backbone_epochs: Epochs of the shared TSN backbones a method starts from
            (:mod:`evbench.harness.backbone_cache`), trained once per distinct
            backbone and dataset and cached; ``0`` (default): no shared
            backbones, every method trains from random initialisation.
        backbone_finetune_epochs: Epochs of a cached backbone initialised from
            another cached one (other resolution, or RSEE's multi-BN ResNet).
        backbone_batch_size: Clips per step of backbone training (0: ``batch_size``).
        backbone_lr: Adam learning rate of backbone training (0: ``lr``).
        backbone_finetune_lr: Adam learning rate of a cached backbone initialised
            from another (0: ``backbone_lr``).
        backbone_frames: TSN segments per clip of backbone training.
        lr_schedule: Learning-rate schedule of every stage: ``"constant"`` or
            ``"cos"`` — epoch ``e`` of ``E`` at ``lr · ½(1 + cos(π e / E))``, the
            ``--lr_type cos`` of the TSM / AR-Net training code (AR-Net official
            ``main_base.py`` ``adjust_learning_rate``), restarted per stage.
        backbone_lr_schedule: The same for backbone training.

    Raises:
        ValueError: An unknown schedule name.
    """

    epochs: int = 8
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    val_fraction: float = 0.0
    backbone_epochs: int = 0
    backbone_finetune_epochs: int = 1
    backbone_batch_size: int = 0
    backbone_lr: float = 0.0
    backbone_finetune_lr: float = 0.0
    backbone_frames: int = 8
    lr_schedule: str = "constant"
    backbone_lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        for name in ("lr_schedule", "backbone_lr_schedule"):
            if getattr(self, name) not in LR_SCHEDULES:
                raise ValueError(f"{name} must be one of {', '.join(LR_SCHEDULES)}; got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON); ``val_fraction``, the schedules and the backbone fields only when set (older cell
        ids unchanged)."""
        out = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
               "weight_decay": self.weight_decay, "seed": self.seed}
        if self.val_fraction:
            out["val_fraction"] = self.val_fraction
        if self.lr_schedule != "constant":
            out["lr_schedule"] = self.lr_schedule
        if self.backbone_epochs:
            out.update(backbone_epochs=self.backbone_epochs, backbone_finetune_epochs=self.backbone_finetune_epochs,
                       backbone_batch_size=self.backbone_batch_size, backbone_lr=self.backbone_lr,
                       backbone_frames=self.backbone_frames)
            if self.backbone_lr_schedule != "constant":
                out["backbone_lr_schedule"] = self.backbone_lr_schedule
            if self.backbone_finetune_lr:
                out["backbone_finetune_lr"] = self.backbone_finetune_lr
        return out

    def backbone_recipe(self, input_size: int) -> Any:
        """The :class:`~evbench.harness.backbone_cache.BackboneRecipe` of the shared backbones.

        Args:
            input_size: Side in px of the crops the backbone trainer reads (the method's input).
        """
        from evbench.harness.backbone_cache import BackboneRecipe

        return BackboneRecipe(epochs=self.backbone_epochs, finetune_epochs=self.backbone_finetune_epochs,
                              batch_size=self.backbone_batch_size or self.batch_size,
                              lr=self.backbone_lr or self.lr, weight_decay=self.weight_decay,
                              frames=self.backbone_frames, input_size=int(input_size), seed=self.seed,
                              lr_schedule=self.backbone_lr_schedule, finetune_lr=self.backbone_finetune_lr)


@dataclass
class TrainReport:
    """What training did.

    Attributes:
        seconds: Wall time, s.
        steps: Optimiser steps.
        clips_seen: Training clips consumed (all epochs).
        logs: Per-epoch mean of each logged value, with ``stage``, ``epoch`` and
            ``seconds`` (s since training began); with a validation split also
            ``val_top1`` (top-1 on it, inference mode), ``val_gmacs_per_video``
            (mean realised GMACs/video there) and ``val_clips``.
        val_clips: Clips of the validation split held out of training (0: none).
        skipped: ``{"path", "error"}`` of clips that failed to load.
        threads: torch intra-op threads during training (with the seed, what
            fixes the weights bit for bit: another thread count can change
            float summation order).
        frozen_memo: What the memo of frozen backbones did
            (:meth:`evbench.harness.frozen_memo.MemoStats.to_dict`: samples served and computed, per module).
    """

    seconds: float = 0.0
    steps: int = 0
    clips_seen: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    threads: int = 0
    val_clips: int = 0
    frozen_memo: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed Python ``random``, NumPy's global RNG and torch's generators on every device.

    ``torch.manual_seed`` also seeds every CUDA device.  Call it before
    building a method (its initial weights come from torch's global RNG) and
    before training.

    Args:
        seed: Non-negative integer; NumPy gets ``seed % 2**32``.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Run the block with torch's deterministic algorithms; restore the previous settings after.

    Sets ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op
    without a deterministic kernel warns instead of failing), and on CUDA
    ``cudnn.deterministic = True``, ``cudnn.benchmark = False`` and, if unset,
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (effective when cuBLAS is initialised
    inside the block, as the PyTorch reproducibility notes require).  CPU
    kernels used by the registered methods are deterministic for a fixed
    thread count either way; this makes that a checked property on every
    device rather than an accident.

    Args:
        enabled: ``False`` makes the context a no-op.
    """
    if not enabled:
        yield
        return
    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev[2], prev[3]


def run_seeds(train_seed: int | None, *, tsn_sampling: bool = False, carve_out: int | None = None,
              train_threads: int | None = None) -> dict[str, Any]:
    """The seeds a result row records (its ``seeds`` field).

    Args:
        train_seed: The :class:`TrainSpec` seed (``None``: the cell was not
            trained; its build is still seeded, with 0).
        tsn_sampling: The training data draws random TSN frame offsets
            (pixel clips; feature files use every frame).
        carve_out: Seed of a random validation carve-out (a feature file
            without video ids: ``FeatureDataset.split_seed``), else ``None``.
        train_threads: Intra-op threads the weights were trained with
            (:attr:`TrainReport.threads`, or the reused checkpoint's).

    Returns:
        ``{"init", "train", "data_order", "tsn_offsets", "carve_out", "bootstrap", "train_threads"}``:
        ``init`` seeds Python/NumPy/torch before the build (initial weights);
        ``train`` the same RNGs before training; ``data_order`` the epoch
        permutation; ``tsn_offsets`` the training frame offsets; ``carve_out``
        the validation carve-out (``None`` when the split is fixed or carved
        by video-id order); ``bootstrap`` the accuracy confidence intervals'
        resampling; ``train_threads`` is not a seed but completes them: the
        same seeds and thread count give bit-identical weights (measured:
        1 vs 2 threads changes LSTM weights by ~3e-7 after 3 epochs, and
        LiteEval's by ~6e-3).  ``None`` marks an RNG the cell did not use.
    """
    seed = 0 if train_seed is None else int(train_seed)
    trained = train_seed is not None
    return {"init": seed, "train": seed if trained else None, "data_order": seed if trained else None,
            "tsn_offsets": seed if trained and tsn_sampling else None,
            "carve_out": None if carve_out is None else int(carve_out), "bootstrap": 0,
            "train_threads": None if not trained or not train_threads else int(train_threads)}


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
    progress: bool = False, skip_stages: Sequence[str] = (),
) -> TrainReport:
    """Train ``method`` in place on ``dataset`` (train split) through its ``training_loss``.

    Args:
        method: Any registered method.
        dataset: Train-split dataset; items have ``.x`` and ``.label``.
        spec: Hyper-parameters.
        device: Where to train.
        progress: Show a tqdm bar per epoch.
        skip_stages: Stages not run: replaced by the cached backbones the method
            was initialised from (:func:`evbench.harness.backbone_cache.pretrain_backbones`).

    Returns:
        :class:`TrainReport`.  The method is left in eval mode.

    Raises:
        RuntimeError: If no training clip could be loaded.

    Every RNG is seeded with ``spec.seed`` first and the epochs run under
    :func:`deterministic_algorithms`, so the same method built after the same
    seed, on the same data and thread count, ends with the same weights.
    """
    seed_everything(spec.seed)
    if hasattr(dataset, "set_epoch") and hasattr(dataset, "seed"):
        dataset.seed = spec.seed  # TSN training offsets follow the spec's seed
    with deterministic_algorithms():
        report = _train(method, dataset, spec, device=device, progress=progress, skip_stages=tuple(skip_stages))
    method.eval()
    # one skip record per file, however many epochs hit it
    report.skipped = list({e["path"]: e for e in report.skipped}.values())
    return report


def _train(method: Method, dataset: Sequence[Any], spec: TrainSpec, *, device: str | torch.device,
           progress: bool, skip_stages: tuple[str, ...] = ()) -> TrainReport:
    """The epochs of :func:`train_method` (seeded, deterministic algorithms on)."""
    from evbench.harness.frozen_memo import FrozenMemo, slot_modules

    report = TrainReport(threads=torch.get_num_threads())
    t0 = time.perf_counter()
    method.to(device)
    slots = slot_modules(method)
    memo = FrozenMemo(slots)
    with memo:
        _run_stages(method, dataset, spec, report, memo, slots, t0=t0, device=device, progress=progress,
                    skip_stages=skip_stages)
    report.frozen_memo = memo.stats.to_dict()
    report.seconds = time.perf_counter() - t0
    return report


def _run_stages(method: Method, dataset: Sequence[Any], spec: TrainSpec, report: TrainReport, memo: FrozenMemo,
                slots: dict[str, torch.nn.Module], *, t0: float, device: str | torch.device, progress: bool,
                skip_stages: tuple[str, ...]) -> None:
    """Every stage's epochs, with the slot modules the stage does not train served by ``memo``."""
    from evbench.harness.frozen_memo import frozen_in
    from tqdm.auto import tqdm

    rng = np.random.default_rng(spec.seed)
    fit, val = validation_split(dataset, spec.val_fraction)
    report.val_clips = len(val)
    for stage in method.card.stages:
        if stage in skip_stages:
            continue
        params = method.stage_parameters(stage)
        if not params:
            continue
        frozen = frozen_in(slots, params)
        memo.activate(frozen)
        opt = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
        n_epochs = method.stage_epochs(stage, spec.epochs)
        for epoch in range(n_epochs):
            lr = epoch_lr(spec.lr, epoch, n_epochs, spec.lr_schedule)
            for group in opt.param_groups:
                group["lr"] = lr
            method.train()
            if hasattr(dataset, "set_epoch"):  # new TSN segment offsets each epoch
                dataset.set_epoch(epoch)
            order = [fit[i] for i in rng.permutation(len(fit))]
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
            log = {"stage": stage, "epoch": epoch, "lr": lr, **{k: v / n_batches for k, v in sums.items()}}
            if val:
                memo.activate({})  # validation is inference as measured: nothing served from the memo
                log.update(validation_metrics(method, dataset, val, device=device, batch_size=spec.batch_size))
                memo.activate(frozen)
            log["seconds"] = time.perf_counter() - t0
            report.logs.append(log)


def validation_split(dataset: Sequence[Any], fraction: float) -> tuple[list[int], list[int]]:
    """``(fit, val)`` indices of ``dataset``: ``val`` held out of training for the curves.

    Per class, the last ``round(fraction · n_c)`` clips in clip-id order
    (:func:`~evbench.harness.data.sampling.blocked_stratified_split`: UCF101
    groups stay on one side); ``fraction`` 0 gives ``(range(N), [])``.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``.
    """
    n = len(dataset)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0 or n < 2:
        return list(range(n)), []
    from evbench.harness.data.sampling import blocked_stratified_split

    entries = list(getattr(dataset, "entries", []))
    if len(entries) == n and all(hasattr(e, "label") for e in entries):
        labels = np.asarray([int(e.label) for e in entries])
        ids = np.asarray([str(getattr(e, "id", f"{i:09d}")) for i, e in enumerate(entries)])
    else:  # a dataset without entry records: labels from the items, the index as the order
        labels = np.asarray([int(dataset[i].label) for i in range(n)])
        ids = np.asarray([f"{i:09d}" for i in range(n)])
    fit, val = blocked_stratified_split(labels, ids, fraction)
    return fit.tolist(), val.tolist()


def validation_metrics(method: Method, dataset: Sequence[Any], indices: Sequence[int], *,
                       device: str | torch.device = "cpu", batch_size: int = 64) -> dict[str, float]:
    """Top-1 and mean realised GMACs/video of ``method`` (inference mode, default knobs) on ``indices``.

    The method's train/eval mode is restored afterwards.

    Returns:
        ``{"val_top1", "val_gmacs_per_video", "val_clips"}`` (top-1 a fraction, GMACs per video).
    """
    from evbench.harness.costs import cost_table, trace_gmacs

    was = method.training
    method.eval()
    table = cost_table(method)
    correct, gmacs, n = 0, 0.0, 0
    with torch.inference_mode():
        for x, y, _ in iterate_batches(dataset, indices, batch_size, errors=[]):
            out = method(x.to(device))
            correct += int((out.logits.argmax(1).cpu() == y).sum())
            gmacs += sum(trace_gmacs(tr, table) for tr in out.trace)
            n += len(y)
    method.train(was)
    return {"val_top1": correct / max(1, n), "val_gmacs_per_video": gmacs / max(1, n), "val_clips": float(n)}


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
        "train_threads": report.threads,
        "logs": report.logs,
    }
    tmp = dest.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, dest)
    write_curve(dest, build=build, train=train, report=report)
    return dest


def curve_path(checkpoint: str | os.PathLike[str]) -> Path:
    """The training-curve side file of a checkpoint: ``<name>.curve.json`` beside it."""
    ckpt = Path(checkpoint)
    return ckpt.with_name(ckpt.stem + ".curve.json")


def write_curve(checkpoint: str | os.PathLike[str], *, build: dict[str, Any], train: dict[str, Any],
                report: TrainReport) -> Path:
    """Write the per-epoch training curve of a checkpoint (:attr:`TrainReport.logs`) as JSON beside it.

    ``{"format": "evbench-curve-1", "build", "train", "val_clips", "train_seconds", "logs"}``;
    read by :mod:`evbench.reports.training_curves`.
    """
    import json

    dest = curve_path(checkpoint)
    payload = {"format": "evbench-curve-1", "build": build, "train": train, "val_clips": report.val_clips,
               "train_seconds": report.seconds, "logs": report.logs}
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(payload, default=str, indent=1))
    os.replace(tmp, dest)
    return dest


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        evbench.methods.checkpoints.CheckpointError: Missing, empty, truncated
            or corrupt file, or one holding pickled code (refused); one line
            naming the file (:func:`evbench.methods.checkpoints.load_file`).
        evbench.methods.checkpoints.CheckpointFormatError: A ``ValueError``
            too: not an evbench checkpoint (names the file and its top-level keys).
    """
    from evbench.methods.checkpoints import CheckpointFormatError, load_file

    payload = load_file(path)
    if not isinstance(payload, dict) or payload.get("format") != "evbench-checkpoint-1":
        top = sorted(map(str, payload))[:6] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointFormatError(f"{path}: not an evbench checkpoint (top level: {top}); evbench train writes "
                                    "them, official checkpoints load through the method's converter")
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointFormatError(f"{path}: evbench checkpoint without a state_dict")
    return payload


def load_checkpoint_into(method: Method, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an evbench checkpoint's weights into ``method``, refusing any key or shape mismatch.

    Returns:
        The checkpoint payload (see :func:`save_checkpoint`).

    Raises:
        evbench.methods.checkpoints.CheckpointError: What :func:`load_checkpoint`
            raises, or keys/shapes that do not match ``method`` — one line with
            counts and a few names, and ``pass --num-classes N`` when only the
            classifier head's width differs.
    """
    from evbench.methods.checkpoints import load_state_dict_checked

    payload = load_checkpoint(path)
    load_state_dict_checked(method, payload["state_dict"], source=str(path))
    return payload
