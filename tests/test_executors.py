"""Executors: a local Ray cluster and submitit's local executor give the serial executor's rows.

One ``ray.init(num_cpus=2)`` is shared by the module (Ray starts slowly on 2
cores); the suite is tiny (2 classes x 4 generated videos, a 56 px
MobileNetV2-0.35 trained one epoch, two knob settings sharing one checkpoint, a
second build, 4 latency queries).  Skips cleanly without the ``ray`` /
``slurm`` extras.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from evbench.harness import runner
from evbench.harness.executors import (
    FAULT_EXIT_ENV,
    TIMING_SLOT_CPU,
    CellScheduler,
    ExecutorError,
    SerialExecutor,
    ray_options,
    split_device,
    timing_key,
)
from evbench.harness.results import load
from evbench.harness.suites import load_suite

SUITE = """
name = "tiny-exec"
dataset = "generated:{root}"
[train]
epochs = 1
batch_size = 4
[measure]
min_queries = 4
min_duration_s = 0.0
max_duration_s = 5.0
offline = false
latency_clips = 2
[[methods]]
name = "uniform"
config = "lite"
overrides = [{{ backbone = "mobilenet_v2_035", resolution = 56, frames = 2 }},
             {{ backbone = "mobilenet_v2_035", resolution = 48, frames = 2 }}]
knobs = [{{}}, {{ frames = 1 }}]
"""

COMPARED = ["gmacs_per_video", "frames_used", "num_videos", "top1", "top5"]


def _suite_file(tmp_path: Path, root: Path) -> Path:
    f = tmp_path / "tiny-exec.toml"
    f.write_text(SUITE.format(root=root))
    return f


def _by_id(df: pd.DataFrame) -> dict[str, dict]:
    return {r["cell_id"]: {k: r[k] for k in COMPARED} for _, r in df.iterrows()}


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory, tiny_generated) -> Path:
    return _suite_file(tmp_path_factory.mktemp("suite"), tiny_generated)


@pytest.fixture(scope="module")
def cells(suite_file):
    return load_suite(str(suite_file)).cells()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def serial_rows(cells, cache, tmp_path_factory, one_thread) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("serial") / "run"
    summary = runner.run_cells(cells, out=out, progress=False, cache_dir=cache)
    assert summary.done == len(cells) == 4 and summary.failed == 0
    return load(out)


# --------------------------------------------------------------------------- no cluster needed


def test_device_resources_and_timing_keys(cells):
    cpu = cells[0]
    assert is_cpu_timed(cpu)
    assert ray_options(cpu, threads=2) == {"num_cpus": 2, "resources": {TIMING_SLOT_CPU: 1.0}}
    cuda = _with(cpu, device="cuda")
    assert ray_options(cuda) == {"num_cpus": 1, "num_gpus": 1} and timing_key(cuda) == "cuda:0"
    jet = _with(cpu, device="cuda@jetson-nano")
    assert ray_options(jet) == {"num_cpus": 1, "resources": {"jetson-nano": 1.0}}
    assert timing_key(jet) == "cuda:0@jetson-nano" and split_device(jet.device) == ("cuda", "jetson-nano")
    modeled = _with(cpu, device="jetson-nano-modeled")
    assert timing_key(modeled) is None and ray_options(modeled) == {"num_cpus": 1}  # evaluated here, latency modeled
    untimed = _with(cpu, measure=cpu.measure.replace(latency=False) if hasattr(cpu.measure, "replace")
                    else {**cpu.measure, "latency": False})
    assert timing_key(untimed) is None and "resources" not in ray_options(untimed)
    with pytest.raises(ExecutorError, match="DEVICE@RESOURCE"):
        split_device("cuda@")


def is_cpu_timed(cell) -> bool:
    return timing_key(cell) == "cpu"


def _with(cell, **changes):
    import dataclasses

    return dataclasses.replace(cell, **changes)


class _Parallel:
    enforces_timing = False


def test_scheduler_one_trainer_per_model_and_one_timed_cell_per_device(cells):
    a1, a2, b1, b2 = cells  # two builds x two knob settings, all timed on the CPU
    assert a1.build_id == a2.build_id != b1.build_id == b2.build_id
    gated = CellScheduler(_Parallel())
    pending = list(cells)
    assert gated.take_ready(pending) == [a1]  # one timed CPU cell at a time
    gated.done(a1, ok=True)
    assert gated.take_ready(pending) == [a2]
    ungated = CellScheduler(SerialExecutor())  # enforces timing itself: only the trainer rule applies
    pending = list(cells)
    assert ungated.take_ready(pending) == [a1, b1]
    ungated.done(b1, ok=False)  # training failed: the next sibling trains
    assert ungated.take_ready(pending) == [b2]
    ungated.done(a1, ok=True)
    assert ungated.take_ready(pending) == [a2] and pending == []
    resumed = CellScheduler(SerialExecutor(), finished=[a1])  # the checkpoint exists: siblings need not wait
    assert resumed.take_ready([a2, b1, b2]) == [a2, b1]


def test_scheduler_trains_every_model_first_in_untimed_tasks(cells):
    a1, a2, b1, b2 = cells
    sched = CellScheduler(_Parallel(), train_tasks=True)
    pending = list(cells)
    assert sched.take_training(pending) == [a1, b1]  # one training task per build, all at once
    assert sched.take_training(pending) == [] and sched.take_ready(pending) == []  # cells wait for their model
    sched.training_done(b1, ok=True)
    assert sched.take_ready(pending) == [b1]  # one timed CPU cell at a time (gated: enforces nothing itself)
    sched.training_done(a1, ok=False)  # a failed training task: the build's cells train themselves, one at a time
    assert sched.take_training(pending) == []
    sched.done(b1, ok=True)
    assert sched.take_ready(pending) == [a1]
    sched.done(a1, ok=True)
    assert sched.take_ready(pending) == [a2]
    assert CellScheduler(SerialExecutor()).take_training(list(cells)) == []  # serial: unchanged


def test_cli_executor_flags_are_checked(suite_file, tmp_path, capsys):
    from evbench.harness.cli import main

    with pytest.raises(SystemExit, match="--address: only with --executor ray"):
        main(["run", "--suite", str(suite_file), "--out", str(tmp_path / "r"), "--address", "auto"])
    with pytest.raises(SystemExit, match="placement on a node resource needs --executor ray"):
        main(["run", "--suite", str(suite_file), "--out", str(tmp_path / "r"), "--device", "cuda@jetson-nano"])


# --------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, resources={TIMING_SLOT_CPU: 1}, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_rows(ray_cluster, suite_file, cache, tmp_path_factory, serial_rows) -> pd.DataFrame:
    from evbench.harness.cli import main

    out = tmp_path_factory.mktemp("ray") / "run"
    rc = main(["run", "--suite", str(suite_file), "--executor", "ray", "--threads", "1", "--out", str(out),
               "--cache-dir", cache, "--no-report", "--quiet"])
    assert rc == 0
    return load(out)


@pytest.mark.slow
def test_ray_gives_the_serial_rows_with_the_node_in_every_row(ray_rows, serial_rows, ray_cluster):
    assert (ray_rows["status"] == "ok").all()
    assert _by_id(ray_rows) == _by_id(serial_rows)
    assert (ray_rows["executor"] == "ray").all()
    nodes = {n["NodeID"] for n in ray_cluster.nodes()}
    assert ray_rows["node"].astype(bool).all() and set(ray_rows["node_id"]) <= nodes
    assert (serial_rows["executor"] == "serial").all() and serial_rows["node"].astype(bool).all()
    # each model was trained once, by an untimed training task; every cell loaded its checkpoint
    assert ray_rows["train_reused"].all() and serial_rows["train_reused"].sum() == 2
    assert ray_rows["train_seconds_original"].notna().all()


def _assert_no_timed_overlap(df: pd.DataFrame) -> None:
    assert df["timed_start"].notna().all() and (df["timed_end"] > df["timed_start"]).all()
    spans = sorted(zip(df["timed_start"], df["timed_end"], strict=True))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"timed phases overlap: one ends at {end:.3f}, the next starts at {start:.3f}"


@pytest.mark.slow
def test_ray_timed_cells_never_overlap_on_one_device(ray_rows, cells):
    assert all(ray_options(c)["resources"] == {TIMING_SLOT_CPU: 1.0} for c in cells)
    _assert_no_timed_overlap(ray_rows)


@pytest.mark.slow
def test_ray_killed_worker_loses_only_its_cell_which_resume_reruns(ray_cluster, cells, cache, tmp_path, serial_rows):
    from evbench.harness.executors import RayExecutor

    victim = cells[1]  # a knob sibling: dies after its build's trainer wrote the checkpoint
    out = tmp_path / "run"
    dying = RayExecutor(threads=1, runtime_env={"env_vars": {FAULT_EXIT_ENV: victim.id}})
    summary = runner.run_cells(cells[:2], out=out, progress=False, cache_dir=cache, executor=dying)
    assert (summary.done, summary.failed) == (1, 1)
    rows = {r["cell_id"]: r for r in (json.loads(line) for line in (out / "results.jsonl").read_text().splitlines())}
    assert rows[victim.id]["status"] == "failed" and "Worker" in rows[victim.id]["error"]
    assert rows[cells[0].id]["status"] == "ok"
    again = runner.run_cells(cells[:2], out=out, resume=True, progress=False, cache_dir=cache,
                             executor=RayExecutor(threads=1))
    assert (again.done, again.skipped, again.failed) == (1, 1, 0)
    df = load(out)
    assert (df["status"] == "ok").all() and len(df) == 2
    assert _by_id(df) == {k: v for k, v in _by_id(serial_rows).items() if k in rows}


@pytest.mark.slow
def test_ray_cluster_without_the_resource_is_a_clear_error(ray_cluster, cells):
    from evbench.harness.executors import RayExecutor

    ex = RayExecutor()
    with pytest.raises(ExecutorError, match=r"no node of the Ray cluster offers jetson-nano=1 .*--resources='\{\"jetson-nano\": 1\}'"):
        ex.check_cells([_with(cells[0], device="cuda@jetson-nano")])
    with pytest.raises(ExecutorError, match="GPU=1"):
        ex.check_cells([_with(cells[0], device="cuda")])
    ex.check_cells(cells)


# --------------------------------------------------------------------------- Slurm through submitit's local executor


@pytest.mark.slow
def test_slurm_local_gives_the_serial_rows(cells, cache, tmp_path, serial_rows):
    pytest.importorskip("submitit")
    from evbench.harness.executors import SlurmExecutor

    out = tmp_path / "run"
    ex = SlurmExecutor(out / "slurm", cluster="local", threads=1, timeout_min=20)
    assert not ex.enforces_timing  # local processes: the runner gates timed cells itself
    some = cells[:2]  # one model (a training job, then two timed jobs): each job is a fresh Python
    try:
        summary = runner.run_cells(some, out=out, progress=False, cache_dir=cache, executor=ex)
    finally:
        ex.shutdown()
    assert summary.done == 2 and summary.failed == 0, summary.failures
    df = load(out)
    assert _by_id(df) == {c.id: _by_id(serial_rows)[c.id] for c in some}
    assert len(list((out / "slurm").glob("*_submitted.pkl"))) == 3  # one job per cell, plus the training job
    assert (df["executor"] == "slurm").all() and df["node_id"].astype(bool).all()
    _assert_no_timed_overlap(df)


def test_ray_executor_defaults_to_the_drivers_torch_threads():
    pytest.importorskip("ray")
    import torch
    from evbench.harness.executors import RayExecutor

    assert RayExecutor().threads == torch.get_num_threads()  # not Ray's OMP_NUM_THREADS=1 (other machine key)
    assert RayExecutor(threads=1).threads == 1
