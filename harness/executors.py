"""Where cells run: in this process, over a Ray cluster, or as a Slurm job array (submitit).

Every executor has the :class:`concurrent.futures.Executor` shape: the runner
(:func:`evbench.harness.runner.run_cells`) submits every pending cell, collects
the futures *as they complete* and alone writes ``results.jsonl`` (one atomic
row per finished cell), so a run over many machines streams into one store and
``--resume`` works exactly as for a serial run.

* :class:`SerialExecutor` — the default: runs each cell at ``submit`` time in
  this process, one after the other.  Nothing else changes for a single-machine
  run.
* :class:`RayExecutor` — ``evbench run --executor ray [--address auto|HOST:PORT]``
  (``pip install "evbench[ray]"``).  Every cell is one Ray task, and devices are
  Ray resources (:func:`ray_options`): a ``cuda`` cell asks for one GPU, a cell
  placed on a Jetson (``--device cuda@jetson-nano``) for the custom resource the
  board's worker was started with (``{"jetson-nano": 1}``), a CPU cell for the
  cores it times with (``--threads``, default the driver's torch threads).
* :class:`SlurmExecutor` — ``--executor slurm`` (``pip install "evbench[slurm]"``):
  submitit's ``AutoExecutor``, one job per cell, submitted as job arrays
  (``--slurm-partition``, ``--slurm-gpus-per-task``); submitit's local
  executor (``cluster="local"``) runs the same jobs as local processes, which is
  how the tests exercise it.

Timing stays honest: at most one *timed* phase (latency, FPS, memory, energy)
per device at a time, while training and evaluation may share a device.  A
cell is *timed* when it measures latency on a real device (not a ``-modeled``
one, whose latency comes from the roofline model).  The rule is enforced by the
resource request, not by hope:

* Ray: every node declares one ``timing_slot:cpu`` (a custom resource of
  capacity 1, ``ray start --resources='{"timing_slot:cpu": 1}'``; a local
  cluster started by evbench declares it itself) and every timed CPU cell asks
  for it, so two timed CPU cells never share a node.  A timed GPU cell asks for
  a whole GPU (``num_gpus=1``), which Ray hands to one task at a time; a Jetson
  board's resource has capacity 1.  Untimed cells ask for cores only.
  Ray accounts cores, it does not pin them: an untimed cell may train on the
  node's other cores while a timed cell runs, as the issue allows.
* Slurm: a timed GPU cell gets its GPUs through ``--gpus-per-task`` (exclusive
  by Slurm's gres), a timed CPU cell's job is ``--exclusive`` on its node.
* An executor that enforces nothing (submitit's local executor, a plain
  ``ProcessPoolExecutor``; :attr:`enforces_timing` false or absent) is gated by
  the runner's :class:`CellScheduler`: at most one timed cell per device key
  in flight.

Each row records where it ran: ``node`` (host name), ``node_id`` (the Ray node
id, or the Slurm job id), ``executor``; the timed phase's wall-clock bounds are
``timed_start``/``timed_end`` (s since the epoch) so overlap can be audited.

Checkpoints and the frame cache are passed **by reference, as paths on a
shared filesystem** (the run directory ``--out`` and ``--cache-dir``), not
through Ray's object store, because (1) a checkpoint must outlive the cluster:
``--resume`` next week reads it, while object-store objects die with the
driver that owns them; (2) the frame cache is many small files written
incrementally by whichever worker decodes a clip first, and it is an
optimisation (a miss decodes), so a path shared by NFS is exactly right and the
object store would copy it to every node; (3) Slurm clusters have a shared
filesystem and no object store, so one convention serves both executors.  A
worker that cannot see the run directory fails its cell with a message saying
so instead of silently training its own model.

Training is most of a cell's time and is never timed, so under a parallel
executor every model is first trained by its own untimed task
(:func:`evbench.harness.runner.train_cell`: cores or a GPU, no timing slot),
all at once; the model's cells wait for it (:class:`CellScheduler`), then load
its checkpoint from the shared path (``train_reused`` with
``train_seconds_original`` in their rows) and take their turns on the timing
slot.  If a training task fails, the build's cells train themselves one at a
time, as in a serial run, and record the error.

A worker that dies (killed, out of memory, node lost) loses only its cell: Ray
tasks run with ``max_retries=0``, the driver records the cell as failed with
the Ray error, and ``--resume`` reruns it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

__all__ = [
    "SerialExecutor", "RayExecutor", "SlurmExecutor", "ExecutorError", "CellScheduler",
    "split_device", "is_timed", "timing_key", "ray_options", "make_executor", "submit_cells",
    "TIMING_SLOT_CPU", "FAULT_EXIT_ENV",
]

TIMING_SLOT_CPU = "timing_slot:cpu"
"""Custom Ray resource (capacity 1 per node) that every timed CPU cell holds."""

FAULT_EXIT_ENV = "EVBENCH_FAULT_EXIT_CELL"
"""Fault injection for tests: a worker whose environment names a cell id here ``os._exit``\\ s in that cell."""


class ExecutorError(RuntimeError):
    """An executor cannot run the requested cells (missing extra, missing cluster resource, bad placement)."""


# --------------------------------------------------------------------------- cells and resources


def split_device(device: str) -> tuple[str, str | None]:
    """Split a cell's device into the torch device and the node placement.

    ``"cuda@jetson-nano"`` runs on ``cuda`` on a node that offers the Ray
    resource ``jetson-nano``; ``"cpu"`` runs anywhere.

    Returns:
        ``(torch_device, placement or None)``.

    Raises:
        ExecutorError: An empty side of the ``@``.
    """
    dev, sep, where = str(device).partition("@")
    if sep and (not dev or not where):
        raise ExecutorError(f"--device {device}: write DEVICE@RESOURCE, e.g. cuda@jetson-nano")
    return dev, (where or None)


def is_timed(cell: Any) -> bool:
    """True when the cell times latency on a real device (not ``-modeled``, not ``latency = false``)."""
    from evbench.harness.devices.modeled import is_modeled_device

    m = cell.measure
    latency = m.get("latency", True) if isinstance(m, Mapping) else getattr(m, "latency", True)
    return bool(latency) and not is_modeled_device(cell.device)


def timing_key(cell: Any) -> str | None:
    """The device whose timing the cell needs to itself (``"cpu"``, ``"cuda:0"``, ``"cuda:0@jetson-nano"``), or None."""
    if not is_timed(cell):
        return None
    dev, where = split_device(cell.device)
    dev = "cuda:0" if dev == "cuda" else dev
    return f"{dev}@{where}" if where else dev


def ray_options(cell: Any, *, threads: int = 1, timed: bool | None = None) -> dict[str, Any]:
    """Ray task options (resources) for one cell.

    * ``cuda``/``cuda:N``: ``num_gpus=1`` (a whole GPU: Ray gives it to one task
      at a time) and one core;
    * ``DEVICE@BOARD``: ``resources={BOARD: 1}`` and one core (the board's
      worker declares the resource with capacity 1);
    * ``cpu``: ``num_cpus=threads``, plus :data:`TIMING_SLOT_CPU` when timed;
    * ``*-modeled``: ``num_cpus=threads`` (evaluated on the CPU, latency modeled, untimed).

    Args:
        cell: The cell.
        threads: Torch intra-op threads the cell times with (CPU cells).
        timed: Override :func:`is_timed` (``False`` for a cell's training task).

    Returns:
        Keyword arguments for ``remote_fn.options(...)``.
    """
    dev, where = split_device(cell.device)
    resources: dict[str, float] = {}
    if where:
        resources[where] = 1.0
        opts: dict[str, Any] = {"num_cpus": 1}
    elif dev.startswith("cuda"):
        opts = {"num_cpus": 1, "num_gpus": 1}
    else:
        opts = {"num_cpus": max(1, int(threads))}
        if (is_timed(cell) if timed is None else timed) and dev == "cpu":
            resources[TIMING_SLOT_CPU] = 1.0
    if resources:
        opts["resources"] = resources
    return opts


def _worker_context(ctx: Any) -> Any:
    """The run context as shipped to a worker: same paths and settings, no opened datasets, no progress bars."""
    if dataclasses.is_dataclass(ctx):
        changes = {f.name: {} for f in dataclasses.fields(ctx) if f.name == "datasets"}
        if any(f.name == "progress" for f in dataclasses.fields(ctx)):
            changes["progress"] = False
        return dataclasses.replace(ctx, **changes)
    return ctx


_WORKER_CONTEXTS: dict[tuple, Any] = {}


def _memoised_context(ctx: Any) -> Any:
    """One context per worker process and run, so cells in a reused worker share opened datasets."""
    key = (str(getattr(ctx, "out", "")), str(getattr(ctx, "cache_dir", "")), getattr(ctx, "gmacs_per_frame", None))
    return _WORKER_CONTEXTS.setdefault(key, ctx)


def _run_in_worker(fn: Callable[[Any, Any], dict[str, Any]], cell: Any, ctx: Any, threads: int | None,
                   executor: str) -> tuple[str, Any, str]:
    """Run one cell in a worker process (Ray task or Slurm job).

    Returns:
        ``("ok", row, "")`` or ``("error", exception, traceback text)``: the
        cell's own exception travels back as data so the driver records it as a
        failed row with the worker's traceback.  Only a dead worker surfaces as
        the executor's error.
    """
    if os.environ.get(FAULT_EXIT_ENV) == cell.id:  # fault injection (tests): die like an OOM-killed worker
        os._exit(70)
    try:
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        out = getattr(ctx, "out", None)
        if out is not None and not Path(out).is_dir():
            raise ExecutorError(f"run directory {out} is not visible on node {socket.gethostname()}: "
                                "--out (and --cache-dir) must be on a filesystem shared by every node")
        row = fn(cell, _memoised_context(ctx))
        row.update(_where(executor))
        return "ok", row, ""
    except Exception as exc:  # noqa: BLE001 — delivered to the driver, recorded as a failed row
        tb = traceback.format_exc(limit=12)
        try:
            import pickle

            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 — an unpicklable exception travels as its text
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return "error", exc, tb


def _where(executor: str) -> dict[str, Any]:
    """Row keys naming where a cell ran: ``node`` (host name), ``node_id``, ``executor``."""
    info: dict[str, Any] = {"node": socket.gethostname(), "executor": executor}
    if executor == "ray":
        import ray

        info["node_id"] = ray.get_runtime_context().get_node_id()
        info["node_ip"] = ray.util.get_node_ip_address()
    elif executor == "slurm":
        job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
        if job:
            task = os.environ.get("SLURM_ARRAY_TASK_ID")
            info["node_id"] = f"{job}_{task}" if task else job
        else:
            try:
                import submitit

                info["node_id"] = str(submitit.JobEnvironment().job_id)
            except Exception:  # noqa: BLE001 — outside a submitit job
                pass
    return info


def _unwrap(src: Future, dst: Future) -> None:
    """Copy a worker's ``(status, value, traceback)`` result into the driver-side future."""
    try:
        status, value, tb = src.result()
    except BaseException as exc:  # noqa: BLE001 — the executor's own error (dead worker, lost node)
        dst.set_exception(exc)
        return
    if status == "ok":
        dst.set_result(value)
    else:
        value.remote_traceback = tb
        dst.set_exception(value)


# --------------------------------------------------------------------------- executors


class SerialExecutor(Executor):
    """``concurrent.futures.Executor`` that runs each task at ``submit`` time, in this process.

    The default executor: latency cells need exclusive use of the device, and a
    2-core CPU has nothing to spare.  Any ``Executor`` (a process pool,
    :class:`RayExecutor`, :class:`SlurmExecutor`) can be passed to
    :func:`~evbench.harness.runner.run_cells` instead.
    """

    name = "serial"
    enforces_timing = True  # one cell at a time

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # noqa: D102
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 — delivered through the future
            fut.set_exception(exc)
        return fut


class RayExecutor(Executor):
    """Every cell a Ray task, resources per :func:`ray_options`; futures are Ray's ``ObjectRef.future()``.

    Args:
        address: ``None`` starts a local Ray instance (all cores, detected GPUs,
            one :data:`TIMING_SLOT_CPU`) unless Ray is already initialised in this
            process; ``"auto"`` joins the cluster this machine belongs to;
            ``"HOST:PORT"`` joins that head node.
        threads: Torch intra-op threads of each cell, and the cores a CPU cell
            asks for (default: the driver's ``torch.get_num_threads()``, what a
            serial run times with — so rows keep the serial run's machine key,
            and on a node with that many cores a cell holds the whole node
            while it trains or is timed; Ray's own worker default,
            ``OMP_NUM_THREADS=1``, gave 1-thread rows and let a timed cell share
            the cores with another cell's training).
        runtime_env: Ray runtime environment of the tasks (e.g. ``{"env_vars": ...}``).
        init_kwargs: Extra ``ray.init`` arguments for a local instance (e.g. ``num_cpus``).

    Raises:
        ExecutorError: Ray is not installed (``pip install "evbench[ray]"``).
    """

    name = "ray"
    enforces_timing = True

    def __init__(self, address: str | None = None, *, threads: int | None = None,
                 runtime_env: dict[str, Any] | None = None, init_kwargs: dict[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError('--executor ray needs Ray: pip install "evbench[ray]"') from exc
        import torch

        self._ray = ray
        self.threads = int(threads or torch.get_num_threads())
        self.runtime_env = runtime_env
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["resources"] = {TIMING_SLOT_CPU: 1}
                kwargs.update(init_kwargs or {})
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ExecutorError(f"--address {address}: cannot join a Ray cluster ({exc})") from exc
            self._started = True
        self._task = ray.remote(max_retries=0)(_run_in_worker)
        self._refs: list[Any] = []

    def check_cells(self, cells: Sequence[Any]) -> None:
        """Fail fast when the cluster lacks a resource some cell asks for (Ray would wait for it forever).

        Raises:
            ExecutorError: Naming the resource and the ``ray start`` flag that declares it.
        """
        nodes = [n["Resources"] for n in self._ray.nodes() if n.get("Alive")]
        for cell in cells:
            opts = ray_options(cell, threads=self.threads)
            need = {"CPU": opts.get("num_cpus", 1), **({"GPU": opts["num_gpus"]} if opts.get("num_gpus") else {}),
                    **opts.get("resources", {})}
            if not any(all(n.get(k, 0) >= v for k, v in need.items()) for n in nodes):
                missing = {k: v for k, v in need.items() if not any(n.get(k, 0) >= v for n in nodes)} or need
                hint = ", ".join(f"{k}={v:g}" for k, v in missing.items())
                custom = {k: 1 for k in missing if k not in ("CPU", "GPU")}
                flag = (f" (start such a node with ray start --address=HEAD:6379 --resources='{json.dumps(custom)}')"
                        if custom else "")
                raise ExecutorError(f"--device {cell.device}: no node of the Ray cluster offers {hint}{flag}")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Submit ``fn(cell, ctx)`` as a Ray task with the cell's resources.

        Raises:
            TypeError: Arguments other than ``(cell, ctx)``.
        """
        if kwargs or len(args) != 2:
            raise TypeError("RayExecutor.submit(fn, cell, ctx)")
        cell, ctx = args
        untimed = getattr(fn, "untimed", False)  # a cell's training task
        opts = ray_options(cell, threads=self.threads, timed=False if untimed else None)
        if self.runtime_env:
            opts["runtime_env"] = self.runtime_env
        name = f"evbench-{'train' if untimed else 'cell'}:{cell.label}"[:120]
        ref = self._task.options(name=name, **opts).remote(
            fn, cell, _worker_context(ctx), self.threads, self.name)
        self._refs.append(ref)
        fut: Future = Future()
        ref.future().add_done_callback(lambda src: _unwrap(src, fut))
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel unfinished tasks when asked; disconnect from a Ray instance this executor started."""
        if cancel_futures:
            for ref in self._refs:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 — already finished
                    pass
        if self._started:
            self._ray.shutdown()
            self._started = False


class SlurmExecutor(Executor):
    """Cells as Slurm jobs through submitit's ``AutoExecutor``: each wave of ready cells one job array.

    Args:
        folder: Where submitit keeps pickles and logs (``<out>/slurm``).
        cluster: ``None`` (Slurm when ``sbatch`` is found, else local), ``"slurm"``,
            ``"local"`` (jobs as local processes: the tests) or ``"debug"``.
        partition: ``--slurm-partition``.
        gpus_per_task: ``--slurm-gpus-per-task`` for ``cuda`` cells (default 1).
        threads: Torch threads of each cell and its ``cpus_per_task``.
        timeout_min: Wall-time limit of one job, minutes.
        poll_s: How often the driver polls job states, s.

    Raises:
        ExecutorError: submitit is not installed (``pip install "evbench[slurm]"``).
    """

    name = "slurm"

    def __init__(self, folder: str | Path, *, cluster: str | None = None, partition: str | None = None,
                 gpus_per_task: int | None = None, threads: int | None = None, timeout_min: int = 240,
                 poll_s: float | None = None) -> None:
        try:
            import submitit
        except ImportError as exc:
            raise ExecutorError('--executor slurm needs submitit: pip install "evbench[slurm]"') from exc
        self._ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.cluster = self._ex.cluster
        self.partition, self.gpus_per_task = partition, gpus_per_task
        self.threads = int(threads or 1)
        self.timeout_min = int(timeout_min)
        # A real Slurm cluster enforces exclusive timing through gres / --exclusive; local processes do not.
        self.enforces_timing = self.cluster == "slurm"
        self.poll_s = poll_s if poll_s is not None else (0.5 if self.cluster != "slurm" else 15.0)
        self._jobs: list[tuple[Any, Future]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="evbench-slurm-watch", daemon=True)
        self._watcher.start()

    def _parameters(self, cell: Any, timed: bool | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout_min": self.timeout_min, "nodes": 1, "tasks_per_node": 1,
                                  "cpus_per_task": self.threads, "name": "evbench"}
        if self.partition:
            params["slurm_partition"] = self.partition
        dev, where = split_device(cell.device)
        if where:
            raise ExecutorError(f"--device {cell.device}: placement on a Ray resource needs --executor ray "
                                "(with Slurm, choose the nodes with --slurm-partition)")
        if dev.startswith("cuda"):
            params["slurm_gpus_per_task"] = int(self.gpus_per_task or 1)
        elif is_timed(cell) if timed is None else timed:
            params["slurm_exclusive"] = True
        return params

    def check_cells(self, cells: Sequence[Any]) -> None:
        """Raises :class:`ExecutorError` for cells Slurm cannot place (``DEVICE@RESOURCE``)."""
        for cell in cells:
            self._parameters(cell)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Submit one ``fn(cell, ctx)`` job (a one-task array)."""
        return self.submit_many(fn, [args])[0]

    def submit_many(self, fn: Callable[..., Any], arg_list: Sequence[tuple[Any, Any]]) -> list[Future]:
        """Submit ``fn(cell, ctx)`` for each ``(cell, ctx)``: one job array per set of job parameters.

        Returns:
            One future per pair, in order.
        """
        groups: dict[str, list[int]] = {}
        params_of: dict[str, dict[str, Any]] = {}
        untimed = getattr(fn, "untimed", False)  # a cell's training task
        for i, (cell, _ctx) in enumerate(arg_list):
            p = self._parameters(cell, timed=False if untimed else None)
            key = repr(sorted(p.items()))
            groups.setdefault(key, []).append(i)
            params_of[key] = p
        futures: list[Future | None] = [None] * len(arg_list)
        for key, idx in groups.items():
            self._ex.update_parameters(**params_of[key])
            with self._ex.batch():
                jobs = [self._ex.submit(_run_in_worker, fn, arg_list[i][0], _worker_context(arg_list[i][1]),
                                        self.threads, self.name) for i in idx]
            for i, job in zip(idx, jobs, strict=True):
                fut: Future = Future()
                futures[i] = fut
                with self._lock:
                    self._jobs.append((job, fut))
        return [f for f in futures if f is not None]

    def _watch(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                jobs = list(self._jobs)
            for job, fut in jobs:
                if fut.done() or not job.done():
                    continue
                src: Future = Future()
                try:
                    src.set_result(job.result())
                except BaseException as exc:  # noqa: BLE001 — a job that died or was cancelled
                    src.set_exception(exc)
                _unwrap(src, fut)
                with self._lock:
                    self._jobs.remove((job, fut))
            self._stop.wait(self.poll_s)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop polling; cancel unfinished jobs when asked."""
        if cancel_futures:
            with self._lock:
                for job, _ in self._jobs:
                    try:
                        job.cancel(check=False)
                    except Exception:  # noqa: BLE001 — already finished
                        pass
        self._stop.set()
        if wait:
            self._watcher.join(timeout=5)


def make_executor(kind: str, *, out: str | Path, address: str | None = None, threads: int | None = None,
                  slurm_partition: str | None = None, slurm_gpus_per_task: int | None = None,
                  slurm_cluster: str | None = None) -> Executor:
    """The executor for ``--executor`` (``serial``, ``ray`` or ``slurm``).

    Raises:
        ExecutorError: Unknown kind, or its optional extra is not installed.
    """
    if kind == "serial":
        return SerialExecutor()
    if kind == "ray":
        return RayExecutor(address=address, threads=threads)
    if kind == "slurm":
        return SlurmExecutor(Path(out) / "slurm", cluster=slurm_cluster, partition=slurm_partition,
                             gpus_per_task=slurm_gpus_per_task, threads=threads)
    raise ExecutorError(f"--executor {kind}: choose from serial, ray, slurm")


def submit_cells(executor: Executor, fn: Callable[[Any, Any], Any], cells: Sequence[Any], ctx: Any) -> list[Future]:
    """Submit ``fn(cell, ctx)`` for each cell (as one batch where the executor supports it, e.g. a job array)."""
    many = getattr(executor, "submit_many", None)
    if many is not None:
        return many(fn, [(c, ctx) for c in cells])
    return [executor.submit(fn, c, ctx) for c in cells]


# --------------------------------------------------------------------------- scheduling


class CellScheduler:
    """Which pending cells may start now, so that parallel executors stay correct and honest.

    Two rules, both no-ops for one cell at a time (plus, with ``train_tasks``,
    :meth:`take_training`):

    1. *One trainer per model.*  Cells that train (``cell.train`` and
       ``cell.train_data``) share a checkpoint per ``build_id``; while one of
       them is in flight its siblings wait, and once one finished ok (or a
       sibling was finished before, on ``--resume``) they all go, loading the
       checkpoint.  After a failure the next sibling trains.
    2. *One timed phase per device* (only when the executor does not enforce it
       by resources, ``enforces_timing`` false): at most one in-flight cell per
       :func:`timing_key`.

    Args:
        executor: The executor (its ``enforces_timing`` attribute is read).
        finished: Cells finished before (``--resume``).
        train_tasks: Train each model in its own untimed task first (parallel executors).
    """

    def __init__(self, executor: Executor, finished: Iterable[Any] = (), *, train_tasks: bool = False) -> None:
        self.gate_timing = not getattr(executor, "enforces_timing", False)
        self.train_tasks = train_tasks
        self.trained: set[str] = {c.build_id for c in finished if self._build(c)}
        self.training: set[str] = set()
        self.untrainable: set[str] = set()
        self.timing: set[str] = set()

    def take_training(self, pending: Sequence[Any]) -> list[Any]:
        """With ``train_tasks``: one cell per build still to train, to train it in an untimed task.

        Training is most of a cell's time and needs no timing slot, so a
        parallel executor trains every model at once while timed cells take
        their turns; the cells then load the checkpoint.  The returned cells
        stay pending (marked training) until :meth:`training_done`.
        """
        if not self.train_tasks:
            return []
        out = []
        for cell in pending:
            build = self._build(cell)
            if build is None or build in self.trained or build in self.training or build in self.untrainable:
                continue
            self.training.add(build)
            out.append(cell)
        return out

    def training_done(self, cell: Any, ok: bool) -> None:
        """Record a training task's end; after a failure the build's cells train themselves (one at a time)."""
        build = self._build(cell)
        self.training.discard(build)
        (self.trained if ok else self.untrainable).add(build)

    @staticmethod
    def _build(cell: Any) -> str | None:
        return cell.build_id if cell.train is not None and cell.train_data is not None else None

    def take_ready(self, pending: list[Any], limit: int | None = None) -> list[Any]:
        """Remove and return, in order, up to ``limit`` pending cells that may start now (marking them started)."""
        ready, rest = [], []
        for cell in pending:
            build, key = self._build(cell), timing_key(cell) if self.gate_timing else None
            if (limit is not None and len(ready) >= limit) or (build is not None and build not in self.trained and build in self.training) or \
                    (key is not None and key in self.timing):
                rest.append(cell)
                continue
            if build is not None and build not in self.trained:
                self.training.add(build)
            if key is not None:
                self.timing.add(key)
            ready.append(cell)
        pending[:] = rest
        return ready

    def done(self, cell: Any, ok: bool) -> None:
        """Record that ``cell`` finished (``ok``: with a row of status ok)."""
        build = self._build(cell)
        if build is not None:
            self.training.discard(build)
            if ok:
                self.trained.add(build)
        key = timing_key(cell) if self.gate_timing else None
        if key is not None:
            self.timing.discard(key)

