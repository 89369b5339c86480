"""The runner: measure every cell of a run, append one row per finished cell.

For each :class:`~evbench.harness.suites.Cell` not already finished (``--resume``):

1. build the method with ``create_method`` (the runner knows no method by name);
2. train it through its ``training_loss`` on the *train* split, or reuse the
   checkpoint of a sibling cell with the same build (knob sweeps share one);
3. evaluate it on the *test* split (accuracy, per-video GMACs from traces, the
   executed-MAC cross-check, decisions, decode/pre-process times);
4. profile it batch-1 on real test clips (single-stream latency, offline FPS,
   peak memory);
5. write the per-video Parquet, then append the row atomically.

A cell that fails (bad checkpoint, NaN logits, out of memory, no readable clip)
is recorded with ``status="failed"`` and its error; the run goes on.  Cells run
one at a time through an executor with the ``concurrent.futures`` shape
(:class:`~evbench.harness.executors.SerialExecutor` by default), or fan out over
Ray or Slurm (:mod:`evbench.harness.executors`): every pending cell is submitted,
rows are collected as cells complete and written here, by the driver alone.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evbench.harness.api import Method
from evbench.harness.devices.modeled import is_modeled_device
from evbench.harness.env import fingerprint
from evbench.harness.eval_memo import EVAL_MEMO_DIR, EvalMemoStore
from evbench.harness.executors import CellScheduler, SerialExecutor, split_device, submit_cells
from evbench.harness.measure import measure_cell
from evbench.harness.registry import create_method, method_card
from evbench.harness.results import ResultStore
from evbench.harness.row import CellResult
from evbench.harness.rundir import exclusive_run
from evbench.harness.suites import Cell
from evbench.harness.training import (
    TrainSpec,
    load_checkpoint,
    run_seeds,
    save_checkpoint,
    seed_everything,
    train_method,
)

__all__ = ["SerialExecutor", "RunContext", "build_method", "run_cell", "run_cells", "train_cell"]

#: Largest in-memory decoded-frame memo of a training split (bytes of uint8 frames), else it decodes every draw.
FRAME_MEMO_BYTES = 3 << 30


def _memo_bytes(ds: Any) -> int:
    """Bytes of every frame of every clip of a pixel training split at its output side (unknown lengths: 300)."""
    frames = sum((getattr(e, "num_frames", None) or 300) for e in getattr(ds, "entries", []))
    return frames * 3 * int(getattr(ds, "size", 0)) ** 2

@dataclass
class RunContext:
    """Shared state of one run.

    Attributes:
        out: Run directory.
        cache_dir: Decoded-frame cache and generated datasets.
        progress: Show progress bars.
        gmacs_per_frame: Declared GMACs of one input feature frame, when the
            feature file does not carry it (``--gmacs-per-frame``).
        datasets: In-process memo of opened datasets.
        frame_memos: Decoded frames of training clips, per ``(source, split, size)``
            (:attr:`evbench.harness.data.datasets.VideoDataset.frame_memo`), shared by
            the training datasets of every ``T``.
        eval_memo: Frozen-backbone outputs of the test clips, on disk between cells
            (:mod:`evbench.harness.eval_memo`); :func:`run_cells` keeps them in the run
            directory's ``.eval-memo`` (every executor's workers share it) and removes it when
            the run ends; ``None``: every evaluation computes.
    """

    out: Path
    cache_dir: str | None = None
    progress: bool = False
    gmacs_per_frame: float | None = None
    datasets: dict[tuple, Any] = field(default_factory=dict)
    frame_memos: dict[tuple, dict] = field(default_factory=dict)
    eval_memo: EvalMemoStore | None = None

    def dataset(self, source: str, *, split: str, frames: int, size: int, train: bool) -> Any:
        """Open (memoised) ``source`` for ``split`` sampled at ``frames`` × ``size`` px."""
        from evbench.harness.data import open_dataset

        key = (source, split, frames, size, train)
        if source.endswith(".npz"):
            key = (source, split, 0, 0, train)
        if key not in self.datasets:
            self.datasets[key] = open_dataset(source, split=split, frames=max(frames, 1), size=max(size, 1),
                                              train=train, cache_dir=self.cache_dir,
                                              gmacs_per_frame=self.gmacs_per_frame)
            ds = self.datasets[key]
            if train and hasattr(ds, "frame_memo") and _memo_bytes(ds) <= FRAME_MEMO_BYTES:
                # decode each training clip once (every frame); later draws at any T index it
                ds.frame_memo = self.frame_memos.setdefault((source, split, size), {})
        return self.datasets[key]


def build_method(name: str, config: str, overrides: dict[str, Any], num_classes: int, dataset: Any, *,
                 seed: int = 0) -> tuple[Method, dict[str, Any]]:
    """Build a method for a dataset, seeded: feature methods take D and the per-frame input cost from the data.

    Shared by the runner's cells and ``evbench profile``, so the same build on
    the same data gives the same initial weights and costs in both.

    Args:
        name: Registered method name.
        config: Configuration name.
        overrides: Builder overrides.
        num_classes: Classifier width.
        dataset: The data it will see (``dataset[0].x`` gives ``D`` for
            feature methods; ``gmacs_per_frame`` attribute, when not None,
            the declared per-frame input cost in GMACs).
        seed: Seed of every RNG before building (initial weights).

    Returns:
        The method and the overrides actually applied.

    Raises:
        DataError: ``dataset`` holds features and the method takes pixels, or
            the reverse (:func:`evbench.harness.checks.check_input_kind`).
        UserError: Its batch-1 input clip cannot fit in the memory available.
    """
    from evbench.harness.checks import check_build_fits, check_input_kind
    from evbench.harness.registry import method_card

    overrides = dict(overrides)
    card = method_card(name, config, **overrides)  # data only: the build below happens once
    # a features file for a pixel method (or pixels for a feature method) is refused before building,
    # and so is an input clip that cannot fit in the memory available
    check_input_kind(card, dataset, getattr(dataset, "path", None) or getattr(dataset, "name", "the data"))
    if card.input_kind == "features" and len(dataset):
        # D from the file's header when it has one: clip 0 may be a bad clip (NaN features) that is skipped
        shape = getattr(dataset, "feature_shape", None)
        dim = int(shape[-1]) if shape else int(dataset[0].x.shape[-1])
        data_cost = getattr(dataset, "gmacs_per_frame", None)
        extra = {"feature_dim": dim} if dim != card.feature_dim else {}
        if data_cost is not None:
            extra["gmacs_per_frame"] = float(data_cost)
        overrides = {**overrides, **extra}
    check_build_fits(name, config, overrides)
    seed_everything(seed)  # initial weights are part of a reproducible run
    method = create_method(name, config=config, num_classes=num_classes, **overrides)
    return method, overrides


def _build(cell: Cell, num_classes: int, dataset: Any) -> tuple[Method, dict[str, Any]]:
    """Build the cell's method (:func:`build_method`, seeded with the cell's training seed, else 0)."""
    return build_method(cell.method, cell.config, cell.overrides, num_classes, dataset, seed=_init_seed(cell))


def _train_seed(cell: Cell) -> int | None:
    """The cell's training seed (``TrainSpec.seed``), or ``None`` for an untrained cell."""
    if cell.train is None or cell.train_data is None:
        return None
    return int(cell.train.get("seed", TrainSpec.seed))


def _init_seed(cell: Cell) -> int:
    """Seed of every RNG before the cell's method is built: its training seed, else 0."""
    seed = _train_seed(cell)
    return 0 if seed is None else seed


def _trained(cell: Cell, method: Method, ctx: RunContext, class_names: Sequence[str]) -> tuple[dict[str, Any], list]:
    """Train (or load the sibling's checkpoint); returns training info and skipped-clip errors."""
    ckpt = ctx.out / "checkpoints" / f"{cell.build_id}.pt"
    if ckpt.exists():
        payload = load_checkpoint(ckpt)
        if list(payload["class_names"]) != list(class_names):
            raise ValueError(f"{ckpt}: classes differ from the test data's")
        method.load_state_dict(payload["state_dict"])
        bb = (payload.get("train") or {}).get("backbones") or {}
        return {"trained": True, "train_s": 0.0, "checkpoint": str(ckpt), "train_reused": True,
                "train_seconds_original": payload.get("train_seconds"),
                "train_threads": payload.get("train_threads"),
                # the sibling's backbones are in its checkpoint: none trained for this cell
                "backbone_reused": True if bb else None, "backbone_keys": bb.get("keys"),
                "backbone_train_s": 0.0 if bb else None}, []
    spec = TrainSpec(**cell.train)
    train_ds = ctx.dataset(cell.train_data, split=cell.train_split, frames=method.card.frames,
                           size=method.card.resolution, train=True)
    if list(train_ds.class_names) != list(class_names):
        raise ValueError(f"train data {cell.train_data} has classes {train_ds.class_names[:5]}... "
                         f"but test data has {list(class_names)[:5]}...")
    device = _run_device(cell)
    pre = _pretrained_backbones(cell, method, ctx, spec, class_names, device)
    report = train_method(method, train_ds, spec, device=device, progress=ctx.progress,
                          skip_stages=pre.covers if pre is not None else ())
    backbones = pre.to_dict() if pre is not None else None
    save_checkpoint(ckpt, method, build={"method": cell.method, "config": cell.config,
                                         "num_classes": len(class_names), "overrides": cell.overrides},
                    train={**spec.to_dict(), "data": cell.train_data, "split": cell.train_split,
                           **({"backbones": backbones} if backbones else {})},
                    class_names=class_names, report=report)
    return {"trained": True, "train_s": report.seconds + (pre.train_s if pre is not None else 0.0),
            "checkpoint": str(ckpt), "train_reused": False,
            "train_clips": len(train_ds), "train_threads": report.threads,
            "train_logs": report.logs[-1:] if report.logs else [], "train_memo": report.frozen_memo or None,
            "backbone_reused": pre.reused if pre is not None else None,
            "backbone_keys": pre.keys if pre is not None else None,
            "backbone_train_s": pre.train_s if pre is not None else None}, report.skipped


def _pretrained_backbones(cell: Cell, method: Method, ctx: RunContext, spec: TrainSpec,
                          class_names: Sequence[str], device: str) -> Any:
    """Initialise ``method`` from the cached TSN backbones it names (training any missing), if the recipe asks.

    Returns:
        :class:`~evbench.harness.backbone_cache.PretrainInfo`, or ``None``
        (``backbone_epochs`` is 0, or the method names no backbone).
    """
    if not spec.backbone_epochs or not callable(getattr(method, "backbone_slots", None)):
        return None
    from evbench.harness.backbone_cache import (
        BackboneCache,
        default_backbone_dir,
        pretrain_backbones,
    )

    size = method.card.resolution
    recipe = spec.backbone_recipe(size)

    def open_train() -> Any:
        return ctx.dataset(cell.train_data, split=cell.train_split, frames=recipe.frames, size=size, train=True)

    cache = BackboneCache(default_backbone_dir(ctx.cache_dir))
    return pretrain_backbones(method, cache, recipe, open_train=open_train, data=cell.train_fingerprint,
                              data_source=str(cell.train_data), split=cell.train_split, class_names=class_names,
                              device=device, progress=ctx.progress)


def run_cell(cell: Cell, ctx: RunContext) -> dict[str, Any]:
    """Build, train (or reuse the sibling's checkpoint) and measure one cell; returns its stored row.

    The measurement itself is :func:`evbench.harness.measure.measure_cell` with
    the cell's resolved :class:`~evbench.harness.settings.MeasureSettings`; this
    function opens the data, builds the method (seeded), trains it, and adds
    the run-level fields (cell id, suite, label, overrides, training, seeds,
    data source, timestamps).  Module level and picklable with its arguments,
    so any ``concurrent.futures`` executor can run it.

    Returns:
        ``CellResult.to_row()`` (``status="ok"``) plus ``"_samples"``: the
        per-video table, written to Parquet by :func:`run_cells`.

    Raises:
        Exception: Whatever failed; :func:`run_cells` records it as a failed row.
    """
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    probe = ctx.dataset(cell.test_data, split=cell.test_split, frames=1, size=1, train=False)
    class_names = list(probe.class_names)
    method, applied = _build(cell, len(class_names), probe)
    card = method.card
    test_ds = ctx.dataset(cell.test_data, split=cell.test_split, frames=card.frames, size=card.resolution, train=False)
    errors: list[dict[str, str]] = []
    info: dict[str, Any] = {"trained": False, "train_s": 0.0}
    if cell.train is not None and cell.train_data is not None:
        info, skipped = _trained(cell, method, ctx, class_names)
        errors += [{**e, "stage": "train"} for e in skipped]
    modeled = is_modeled_device(cell.device)
    res = measure_cell(method, test_ds, cell.measure, knobs=cell.knobs,
                       device=cell.device if modeled else _run_device(cell), backend=cell.backend,
                       trained=bool(info["trained"]), progress=ctx.progress, eval_memo=ctx.eval_memo)
    res.cell_id, res.suite, res.label, res.config = cell.id, cell.suite, cell.label, cell.config
    res.method, res.device = cell.method, cell.device
    res.overrides, res.applied_overrides = cell.overrides, applied
    res.dataset_source, res.dataset_split = cell.test_data, cell.test_split
    res.train_s, res.train_reused, res.checkpoint = info.get("train_s"), info.get("train_reused"), info.get("checkpoint")
    res.backbone_reused, res.backbone_keys = info.get("backbone_reused"), info.get("backbone_keys")
    res.backbone_train_s, res.train_memo = info.get("backbone_train_s"), info.get("train_memo")
    res.train_seconds_original, res.train_clips = info.get("train_seconds_original"), info.get("train_clips")
    if info["trained"]:
        res.train_last_epoch, res.train_data = info.get("train_logs"), cell.train_data
    res.data_errors = errors + (res.data_errors or [])
    res.seeds = run_seeds(_train_seed(cell), tsn_sampling=card.input_kind == "pixels",
                          carve_out=getattr(test_ds, "split_seed", None), train_threads=info.get("train_threads"))
    res.node = socket.gethostname()
    res.started = started
    res.wall_s = time.perf_counter() - t0
    row = res.to_row()
    row["_samples"] = res.samples.assign(cell_id=cell.id)
    return row


def _run_device(cell: Cell) -> str:
    """Where the cell's torch work runs: its device, or the CPU for a modeled device."""
    return "cpu" if is_modeled_device(cell.device) else split_device(cell.device)[0]


def _failed_row(cell: Cell, exc: BaseException) -> dict[str, Any]:
    """The stored row of a cell that failed: its identity, the error and the traceback (``status="failed"``)."""
    return CellResult(
        cell_id=cell.id, suite=cell.suite, method=cell.method, config=cell.config, overrides=cell.overrides,
        knobs=cell.knobs, label=cell.label, dataset_source=cell.test_data, dataset_split=cell.test_split,
        device=cell.device, backend=cell.backend, measure_settings=cell.measure.to_dict(), status="failed",
        error=f"{type(exc).__name__}: {exc}",
        traceback=getattr(exc, "remote_traceback", None) or traceback.format_exc(limit=8),
        env=_failed_env(cell),
    ).to_row()


def _failed_env(cell: Cell) -> dict[str, Any]:
    """The environment of a failed cell; never raises (a bad ``--device`` is what may have failed it).

    An unusable device name gives the host's CPU fingerprint with
    ``device_error`` saying why, so the failed row is still written and the
    run goes on.
    """
    try:
        return fingerprint(device=_run_device(cell), backend=cell.backend)
    except (RuntimeError, ValueError, TypeError) as exc:  # invalid device string (or a bad DEVICE@RESOURCE)
        env = fingerprint(device="cpu", backend=cell.backend)
        env.update(device=str(cell.device), device_error=f"{type(exc).__name__}: {exc}")
        return env


@dataclass
class RunSummary:
    """Counts of a run: cells ``done`` now, ``skipped`` (finished before), ``failed``."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


@exclusive_run  # DIR/.lock held for the whole run; Ctrl-C -> RunInterrupted
def run_cells(cells: Iterable[Cell], *, out: str | Path, resume: bool = False, progress: bool = True,
              cache_dir: str | None = None, executor: Executor | None = None,
              gmacs_per_frame: float | None = None) -> RunSummary:
    """Measure ``cells`` into the store at ``out``.

    Args:
        cells: Cells to run (duplicates by id are run once).
        out: Run directory.
        resume: Skip cells already finished with status ok (failed ones rerun).
        progress: Progress bars.
        cache_dir: Frame cache / generated data location.
        executor: Where cells run (default :class:`SerialExecutor`).
        gmacs_per_frame: Declared per-frame input cost for feature files without one.

    Returns:
        :class:`RunSummary`.

    Raises:
        FileExistsError: ``out`` already has results and ``resume`` is False.
        RunLockedError: Another run holds ``out`` (its ``.lock`` names the pid).
        ResultStoreError: A row or sample file could not be written (disk full,
            read-only, no permission); the run stops, finished rows are kept.
        RunInterrupted: Ctrl-C; carries the number of finished cells kept.
    """
    from tqdm.auto import tqdm

    store = ResultStore(out)
    if store.path.exists() and store.rows() and not resume:
        raise FileExistsError(f"{out} already holds results; pass --resume to continue it or choose another --out")
    finished = store.finished_ids() if resume else set()
    ctx = RunContext(out=Path(out), cache_dir=cache_dir, progress=progress, gmacs_per_frame=gmacs_per_frame,
                     eval_memo=EvalMemoStore(Path(out) / EVAL_MEMO_DIR))
    executor = executor or SerialExecutor()
    summary = RunSummary()
    unique = list({c.id: c for c in cells}.values())
    pending = [c for c in unique if c.id not in finished]
    summary.skipped = len(unique) - len(pending)
    check = getattr(executor, "check_cells", None)
    if check is not None:
        check(pending)  # fail fast: a resource no node offers would wait forever
    one_at_a_time = isinstance(executor, SerialExecutor)  # keeps the serial order and row-by-row writes
    sched = CellScheduler(executor, finished=[c for c in unique if c.id in finished], train_tasks=not one_at_a_time)
    bar = tqdm(total=len(unique), initial=summary.skipped, desc="cells", disable=not progress)
    inflight: dict[Future, Cell] = {}
    trains: dict[Future, Cell] = {}  # parallel executors: each model trained by an untimed task first

    def collect_training(fut: Future) -> None:
        cell = trains.pop(fut)
        try:
            fut.result()
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 — the build's cells then train themselves and record the error
            sched.training_done(cell, ok=False)
        else:
            sched.training_done(cell, ok=True)

    def collect(fut: Future) -> None:
        cell = inflight.pop(fut)
        try:
            row = fut.result()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 — recorded, the run goes on (a dead worker too)
            store.append(_failed_row(cell, exc))
            summary.failed += 1
            summary.failures.append(f"{cell.label}: {type(exc).__name__}: {exc}")
            sched.done(cell, ok=False)
        else:
            for key, value in (("node", socket.gethostname()),
                               ("executor", getattr(executor, "name", type(executor).__name__))):
                if row.get(key) is None:  # typed rows carry every key, None = not set by the worker
                    row[key] = value
            samples = row.pop("_samples")
            store.write_samples(cell.id, samples)
            store.append(row)
            summary.done += 1
            sched.done(cell, ok=True)
        bar.update(1)

    try:
        while pending or inflight or trains:
            to_train = sched.take_training(pending)
            for cell, fut in zip(to_train, submit_cells(executor, train_cell, to_train, ctx), strict=True):
                trains[fut] = cell
            ready = sched.take_ready(pending, limit=1 if one_at_a_time else None)
            for cell, fut in zip(ready, submit_cells(executor, _cell_fn(), ready, ctx), strict=True):
                inflight[fut] = cell
                if fut.done():  # the serial executor ran it already: write its row before the next starts
                    collect(fut)
            if not (inflight or trains):
                if pending and not (ready or to_train):  # cannot happen: a waiting cell waits on one in flight
                    raise RuntimeError(f"scheduler stalled with {len(pending)} cells pending")
                continue
            done, _ = wait([*trains, *inflight], return_when=FIRST_COMPLETED)
            for fut in [f for f in trains if f in done]:
                collect_training(fut)
            for fut in [f for f in inflight if f in done]:  # in submission order
                collect(fut)
    except BaseException:
        if inflight or trains:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
        if ctx.eval_memo is not None:
            ctx.eval_memo.close()  # the stored test-clip outputs are this run's only
    return summary


def _cell_fn() -> Callable[[Cell, RunContext], dict[str, Any]]:
    """The per-cell function, looked up at call time (tests substitute it)."""
    return run_cell


def train_cell(cell: Cell, ctx: RunContext) -> dict[str, Any]:
    """Train the model of ``cell``'s build and write its checkpoint: the untimed task of a parallel executor.

    Under Ray or Slurm every model is trained by such a task (asking for
    cores or a GPU, never a timing slot), then each of its cells loads the
    checkpoint (``train_reused``, ``train_seconds_original``) and is timed in
    its turn.  A checkpoint already there is loaded, not retrained.

    Returns:
        ``{"build_id", "train_s", "skipped_clips"}`` (``train_s`` in s).

    Raises:
        Exception: Whatever failed; the build's cells then train themselves, one at a time.
    """
    probe = ctx.dataset(cell.test_data, split=cell.test_split, frames=1, size=1, train=False)
    class_names = list(probe.class_names)
    method, _ = _build(cell, len(class_names), probe)
    info, skipped = _trained(cell, method, ctx, class_names)
    return {"build_id": cell.build_id, "train_s": info.get("train_s"), "skipped_clips": len(skipped)}


train_cell.untimed = True  # executors: no timing slot for this task


def knob_sweep(method_name: str, config: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Knob settings of the card's sweeps: the default, then one knob varied at a time.

    Reads the card only (:func:`evbench.harness.registry.method_card`): no network is built.

    Args:
        method_name: Registered method name.
        config: Configuration name.
        overrides: Builder keyword arguments (they may change the sweeps, e.g. ``frames``).

    Returns:
        ``[{}]`` followed by one ``{knob: value}`` per sweep value that is not the knob's default.

    Raises:
        evbench.harness.registry.UnknownMethodError: Unknown method or configuration.
        TypeError: An override the builder does not accept.
    """
    card = method_card(method_name, config, **(overrides or {}))
    settings: list[dict[str, Any]] = [{}]
    for knob in card.knobs:
        settings += [{knob.name: v} for v in knob.sweep if v != knob.default]
    return settings

