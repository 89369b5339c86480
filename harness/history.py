"""Run history: every finished run's cells in one embedded database, for nightly comparison.

``DIR/history.duckdb`` holds three tables:

* ``runs`` — one row per added run: ``run_id`` (content hash of its
  ``results.jsonl`` or benchmark JSON), ``source`` (the path added), ``kind``
  (``"evbench-run"`` / ``"pytest-benchmark"``), ``suite``, ``commit``, ``time``
  (UTC, the earliest cell start), ``added`` and ``n_cells``.
* ``cells`` — one row per cell of each run: the cell id, method / config /
  knobs / overrides / dataset identity, the commit, the environment fingerprint
  (``env`` as JSON) and the *machine key* derived from it
  (:func:`machine_identity`), the time, the ``noisy`` flag and the machine state
  of the timed window, the decision statistics (``decisions``: every ``*_hist``
  dict, JSON), the raw latency samples (``latency_samples_ms``, ``DOUBLE[]``,
  ms) and **every scalar** of the row as its own column (numbers as ``DOUBLE``,
  flags as ``BOOLEAN``, text as ``VARCHAR``; a new key adds a column).
* ``clips`` — per-clip outcome of each cell (``clip_id``, ``label``, ``pred``),
  from ``samples/<cell_id>.parquet``: the paired accuracy test of
  :mod:`evbench.harness.compare` needs the same clips on both sides.

Why DuckDB (``duckdb`` on PyPI) rather than SQLite: the history is read as
whole columns (one metric over every night and cell), which is what a columnar
engine is built for; list columns (``DOUBLE[]``) keep each cell's raw latency
samples in its row instead of in a blob or a million-row side table; and a
query result comes back as a pandas DataFrame in one call
(``DuckDBPyConnection.df()``), so 1,000 runs load in well under the 2 s asked
(``bench/bench_history.py``).  SQLite would need one row per sample or
pickled blobs, and row-by-row conversion to pandas.  DuckDB allows one writing
process at a time; nightly jobs are sequential, and a second writer gets a
clear "history is in use" error.

Only cells with the same cell id **and** the same machine key are ever
compared (:mod:`evbench.harness.compare`, :mod:`evbench.harness.changepoints`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "DB_FILE",
    "MACHINE_FIELDS",
    "History",
    "HistoryError",
    "RunData",
    "bench_data",
    "history",
    "machine_identity",
    "machine_key",
    "run_data",
]

DB_FILE = "history.duckdb"

#: Fingerprint fields that make two measurements comparable (the machine key).
MACHINE_FIELDS = (
    "cpu_model", "cpu_cores_available", "cpu_cores_logical", "gpu_name", "gpu_driver", "torch",
    "onnxruntime", "threads", "backend", "precision", "device", "jetson_power_mode",
)

#: Identity and bookkeeping columns of ``cells`` (everything else is a row scalar).
_FIXED: dict[str, str] = {
    "run_id": "VARCHAR", "cell_id": "VARCHAR", "machine_key": "VARCHAR", "machine": "VARCHAR",
    "method": "VARCHAR", "config": "VARCHAR", "knobs": "VARCHAR", "overrides": "VARCHAR",
    "label": "VARCHAR", "dataset": "VARCHAR", "dataset_source": "VARCHAR", "suite": "VARCHAR",
    "device": "VARCHAR", "backend": "VARCHAR", "commit": "VARCHAR", "time": "TIMESTAMP",
    "status": "VARCHAR", "noisy": "BOOLEAN", "env": "VARCHAR", "machine_state": "VARCHAR",
    "decisions": "VARCHAR", "latency_samples_ms": "DOUBLE[]",
}
#: Row keys never stored as scalars (long text, or kept in a fixed column).
_SKIP = {"traceback", "latency_convention", "paper", "conventions", "dataset_note", "accuracy_note",
         "started", "_samples"}


class HistoryError(RuntimeError):
    """The history cannot be opened or a source cannot be added (the message names the path)."""


@dataclass
class RunData:
    """One run as the history stores it.

    Attributes:
        run: The ``runs`` row (dict): ``run_id``, ``source``, ``kind``, ``suite``,
            ``commit``, ``time``, ``n_cells``.
        cells: One row per cell (``cells`` columns; scalars as columns).
        clips: Per-clip outcomes: ``run_id``, ``cell_id``, ``clip_id``, ``label``, ``pred``.
    """

    run: dict[str, Any]
    cells: pd.DataFrame
    clips: pd.DataFrame


# --------------------------------------------------------------------------- identity


def machine_identity(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint fields that decide comparability, from a result row.

    Args:
        row: A result row (``env`` nested as stored in ``results.jsonl``).

    Returns:
        ``{field: value}`` for :data:`MACHINE_FIELDS`: CPU model and cores,
        GPU and driver, torch / onnxruntime versions, threads, backend,
        precision, the cell's device (a modeled device stays distinct from the
        CPU it was evaluated on) and the Jetson power mode (None off a Jetson).
    """
    env = row.get("env") or {}
    jetson = env.get("jetson") or {}
    ident = {k: env.get(k) for k in MACHINE_FIELDS}
    ident["threads"] = row.get("threads", env.get("threads"))
    ident["backend"] = env.get("backend") or row.get("backend")
    ident["precision"] = row.get("precision") or env.get("precision")
    ident["device"] = row.get("device") or env.get("device")
    ident["jetson_power_mode"] = jetson.get("power_mode") if isinstance(jetson, Mapping) else None
    return ident


def machine_key(identity: Mapping[str, Any]) -> str:
    """Short stable hash (12 hex) of :func:`machine_identity`'s dict."""
    text = json.dumps(dict(identity), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _parse_time(text: Any) -> _dt.datetime | None:
    """Naive-UTC datetime from an ISO-8601 string (``Z`` or offset), None if unparsable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    return t


def _scalar(value: Any) -> Any:
    """``value`` if it is a storable scalar (finite number, bool, str), else a sentinel None-ish."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _cell_record(row: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """One ``cells`` record from a result row."""
    env = row.get("env") or {}
    ident = machine_identity(row)
    rec: dict[str, Any] = {
        "run_id": run_id, "cell_id": str(row["cell_id"]), "machine_key": machine_key(ident),
        "machine": _canonical(ident), "method": row.get("method"), "config": row.get("config"),
        "knobs": _canonical(row.get("knobs") or {}), "overrides": _canonical(row.get("overrides") or {}),
        "label": row.get("label"), "dataset": row.get("dataset"), "dataset_source": row.get("dataset_source"),
        "suite": row.get("suite"), "device": row.get("device"), "backend": row.get("backend"),
        "commit": env.get("git_commit"), "time": _parse_time(row.get("started")) or _parse_time(env.get("time")),
        "status": row.get("status", "ok"), "noisy": row.get("noisy"),
        "env": _canonical(env), "machine_state": _canonical(row.get("machine_state")),
        "decisions": _canonical({k: v for k, v in row.items() if k.endswith("_hist") and isinstance(v, Mapping)}),
        "latency_samples_ms": [float(x) for x in row["latency_samples_ms"]]
        if isinstance(row.get("latency_samples_ms"), list) else None,
    }
    state = row.get("machine_state")
    if isinstance(state, Mapping):  # the timed window's competition and load, as queryable scalars
        rec["others_cpu_cores"] = _scalar(state.get("others_cpu_cores")) if state.get("others_cpu_cores") is not None else None
        before = state.get("before") if isinstance(state.get("before"), Mapping) else {}
        rec["load_1min"] = float(before["load_1min"]) if isinstance(before.get("load_1min"), (int, float)) else None
    for key, value in row.items():
        if key in rec or key in _SKIP or key in _FIXED:
            continue
        v = _scalar(value)
        if v is not _NOT_SCALAR:
            rec[key] = v
    return rec


def _content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


_CLIP_COLUMNS = ["run_id", "cell_id", "clip_id", "label", "pred"]


def run_data(source: str | os.PathLike[str]) -> RunData:
    """Read a run directory (or its ``results.jsonl``) as the history would store it.

    The last row per cell id is kept (a cell retried on ``--resume`` shows its
    final outcome); per-clip outcomes come from ``samples/<cell_id>.parquet``
    where present.

    Args:
        source: A run directory or a ``results.jsonl`` file.

    Returns:
        :class:`RunData`; ``run["run_id"]`` is the content hash of ``results.jsonl``.

    Raises:
        HistoryError: No ``results.jsonl`` at ``source``, or it holds no row.
    """
    from evbench.harness.results import RESULTS_FILE, SAMPLES_DIR, read_jsonl

    path = Path(source)
    file = path if path.is_file() else path / RESULTS_FILE
    if not file.is_file():
        raise HistoryError(f"{path}: no {RESULTS_FILE} (not an evbench run directory)")
    rows: dict[str, dict[str, Any]] = {}
    for row in read_jsonl(file):
        if "cell_id" in row:
            rows[str(row["cell_id"])] = row
    if not rows:
        raise HistoryError(f"{file}: holds no result row")
    run_id = _content_hash(file)
    cells = [_cell_record(r, run_id) for r in rows.values()]
    times = [c["time"] for c in cells if c["time"] is not None]
    commits = [c["commit"] for c in cells if c["commit"]]
    clip_frames = []
    for cid, row in rows.items():
        f = file.parent / SAMPLES_DIR / f"{cid}.parquet"
        if row.get("status", "ok") != "ok" or not f.is_file():
            continue
        s = pd.read_parquet(f, columns=None)
        if not {"id", "label", "pred"} <= set(s.columns):
            continue
        clip_frames.append(pd.DataFrame({"run_id": run_id, "cell_id": cid, "clip_id": s["id"].astype(str),
                                         "label": s["label"].astype("int64"), "pred": s["pred"].astype("int64")}))
    clips = pd.concat(clip_frames, ignore_index=True) if clip_frames else pd.DataFrame(columns=_CLIP_COLUMNS)
    suites = sorted({str(c["suite"]) for c in cells if c.get("suite")})
    run = {"run_id": run_id, "source": str(file.parent.resolve()), "kind": "evbench-run",
           "suite": ",".join(suites) or None, "commit": commits[0] if commits else None,
           "time": min(times) if times else None, "n_cells": len(cells)}
    return RunData(run=run, cells=pd.DataFrame.from_records(cells), clips=clips)


def bench_data(source: str | os.PathLike[str]) -> RunData:
    """Read a pytest-benchmark JSON file (``--benchmark-autosave`` / ``--benchmark-json``) as a run.

    Each benchmark becomes a cell: ``cell_id`` = ``bench:<fullname>``,
    ``method`` = its group (or name), ``dataset`` = ``"pytest-benchmark"``,
    ``latency_ms_p50`` / ``latency_ms_mean`` / ``latency_ms_std`` = the median /
    mean / stddev of its rounds in ms, ``latency_samples_ms`` = the raw rounds
    when the file has them (``--benchmark-save-data``), and every scalar of
    ``extra_info`` as its own column.  The machine key comes from
    ``machine_info`` (CPU brand and count, machine, Python) so benchmark cells
    only ever compare with benchmark cells of the same machine.

    Raises:
        HistoryError: The file is not pytest-benchmark JSON.
    """
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HistoryError(f"{path}: not readable as pytest-benchmark JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise HistoryError(f"{path}: not pytest-benchmark JSON (no 'benchmarks' list)")
    run_id = _content_hash(path)
    mi = data.get("machine_info") or {}
    cpu = mi.get("cpu") or {}
    ci = data.get("commit_info") or {}
    commit = ci.get("id")
    if commit and ci.get("dirty"):
        commit = f"{commit}-dirty"
    when = _parse_time(data.get("datetime"))
    ident = {"cpu_model": cpu.get("brand_raw") or mi.get("processor"), "cpu_cores_logical": cpu.get("count"),
             "machine": mi.get("machine"), "python": mi.get("python_version"), "kind": "pytest-benchmark"}
    env = {"cpu_model": ident["cpu_model"], "cpu_cores_logical": ident["cpu_cores_logical"],
           "python": ident["python"], "hostname": mi.get("node"), "git_commit": commit,
           "pytest_benchmark": data.get("version")}
    cells = []
    for b in data["benchmarks"]:
        stats = b.get("stats") or {}
        raw = stats.get("data")
        samples = [float(x) * 1e3 for x in raw] if isinstance(raw, list) and raw else None
        rec: dict[str, Any] = {
            "run_id": run_id, "cell_id": f"bench:{b.get('fullname') or b.get('name')}",
            "machine_key": machine_key(ident), "machine": _canonical(ident),
            "method": b.get("group") or b.get("name"), "config": None, "knobs": _canonical(b.get("params") or {}),
            "overrides": "{}", "label": b.get("name"), "dataset": "pytest-benchmark", "dataset_source": str(path),
            "suite": "bench", "device": None, "backend": None, "commit": commit, "time": when, "status": "ok",
            "noisy": None, "env": _canonical(env), "machine_state": None, "decisions": "{}",
            "latency_samples_ms": samples,
        }
        for key, src in (("latency_ms_p50", "median"), ("latency_ms_mean", "mean"), ("latency_ms_std", "stddev"),
                         ("latency_ms_min", "min"), ("latency_ms_max", "max")):
            if isinstance(stats.get(src), (int, float)):
                rec[key] = float(stats[src]) * 1e3
        if samples:
            import numpy as np

            rec["latency_ms_p90"], rec["latency_ms_p99"] = (float(v) for v in np.percentile(samples, [90, 99]))
        if isinstance(stats.get("rounds"), (int, float)):
            rec["latency_queries"] = float(stats["rounds"])
        for key, value in (b.get("extra_info") or {}).items():
            v = _scalar(value)
            if v is not _NOT_SCALAR and key not in rec:
                rec[key] = v
        cells.append(rec)
    if not cells:
        raise HistoryError(f"{path}: pytest-benchmark JSON with no benchmark")
    run = {"run_id": run_id, "source": str(path.resolve()), "kind": "pytest-benchmark", "suite": "bench",
           "commit": commit, "time": when, "n_cells": len(cells)}
    return RunData(run=run, cells=pd.DataFrame.from_records(cells), clips=pd.DataFrame(columns=_CLIP_COLUMNS))


# --------------------------------------------------------------------------- the store


_SQL_TYPE = {bool: "BOOLEAN", float: "DOUBLE", str: "VARCHAR"}


class History:
    """The history database in ``root`` (``root/history.duckdb``), created on first write.

    Use as a context manager (closes the connection)::

        with History("nightly-history") as h:
            h.add_run("runs/nightly-20261201-020000")
            df = h.cells()

    Args:
        root: History folder.
        read_only: Open without writing (the folder must already hold a history).

    Raises:
        HistoryError: The database is in use by another process, or
            ``read_only`` and there is no history at ``root``.
    """

    def __init__(self, root: str | os.PathLike[str], *, read_only: bool = False) -> None:
        import duckdb

        self.root = Path(root)
        self.path = self.root / DB_FILE
        if read_only and not self.path.is_file():
            raise HistoryError(f"{self.root}: no run history ({DB_FILE}); add runs with `evbench history add`")
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise HistoryError(f"{self.path}: cannot open the history ({exc}); is another evbench writing it?") from None
        if not read_only:
            self._create()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.con.close()

    def _create(self) -> None:
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, source VARCHAR, kind VARCHAR, "
            "suite VARCHAR, \"commit\" VARCHAR, time TIMESTAMP, added TIMESTAMP, n_cells INTEGER)")
        cols = ", ".join(f'"{k}" {t}' for k, t in _FIXED.items())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS cells ({cols})")
        self.con.execute("CREATE TABLE IF NOT EXISTS clips (run_id VARCHAR, cell_id VARCHAR, clip_id VARCHAR, "
                         "label BIGINT, pred BIGINT)")

    def _columns(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.con.execute("DESCRIBE cells").fetchall()}

    def _align(self, cells: pd.DataFrame) -> pd.DataFrame:
        """Add missing scalar columns to ``cells`` (typed by their values); coerce clashing values to None."""
        have = self._columns()
        out = cells.copy()
        for col in out.columns:
            if col in _FIXED:
                continue
            values = [v for v in out[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]
            kinds = {bool if isinstance(v, bool) else float if isinstance(v, (int, float)) else str for v in values}
            if col not in have:
                kind = kinds.pop() if len(kinds) == 1 else str
                self.con.execute(f'ALTER TABLE cells ADD COLUMN "{col}" {_SQL_TYPE[kind]}')
                have[col] = _SQL_TYPE[kind]
            want = {"BOOLEAN": bool, "DOUBLE": float, "VARCHAR": str}.get(have[col], str)

            def fit(v: Any, want: type = want) -> Any:
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    return None
                if want is str:
                    return v if isinstance(v, str) else json.dumps(v)
                if want is float:
                    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                return v if isinstance(v, bool) else None

            out[col] = pd.Series([fit(v) for v in out[col]], index=out.index, dtype=object)
        return out

    def add(self, data: RunData) -> str:
        """Add one run; returns ``"added"``, ``"replaced"`` (same source, new content) or ``"present"``."""
        return self.add_many([data])[0]

    def add_many(self, datas: Iterable[RunData]) -> list[str]:
        """Add several runs in one transaction (all or none), one bulk insert per table.

        Returns:
            One status per run, as :meth:`add`.
        """
        statuses: list[str] = []
        runs, cells, clips, stale = [], [], [], []
        seen: set[str] = set()
        now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
        for data in datas:
            run_id = data.run["run_id"]
            if run_id in seen or self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone():
                statuses.append("present")
                continue
            seen.add(run_id)
            old = [r[0] for r in self.con.execute("SELECT run_id FROM runs WHERE source = ?",
                                                  [data.run["source"]]).fetchall()]
            stale += old
            statuses.append("replaced" if old else "added")
            runs.append({**{k: data.run.get(k) for k in ("run_id", "source", "kind", "suite", "commit", "time",
                                                         "n_cells")}, "added": now})
            cells.append(data.cells)
            if len(data.clips):
                clips.append(data.clips[_CLIP_COLUMNS])
        if not runs:
            return statuses
        all_cells = self._align(pd.concat(cells, ignore_index=True))
        self.con.execute("BEGIN TRANSACTION")
        try:
            for rid in stale:
                for table in ("runs", "cells", "clips"):
                    self.con.execute(f"DELETE FROM {table} WHERE run_id = ?", [rid])
            for name, frame, table in (("_new_runs", pd.DataFrame.from_records(runs), "runs"),
                                       ("_new_cells", all_cells, "cells"),
                                       ("_new_clips", pd.concat(clips, ignore_index=True) if clips else None, "clips")):
                if frame is None:
                    continue
                self.con.register(name, frame)
                self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
                self.con.unregister(name)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return statuses

    def add_run(self, source: str | os.PathLike[str]) -> tuple[str, str]:
        """Add an evbench run directory; returns ``(run_id, "added"|"replaced"|"present")``.

        Raises:
            HistoryError: ``source`` is not a run directory with rows.
        """
        data = run_data(source)
        return data.run["run_id"], self.add(data)

    def add_bench(self, source: str | os.PathLike[str]) -> tuple[str, str]:
        """Add a pytest-benchmark JSON file; returns ``(run_id, status)`` as :meth:`add_run`.

        Raises:
            HistoryError: ``source`` is not pytest-benchmark JSON.
        """
        data = bench_data(source)
        return data.run["run_id"], self.add(data)

    def runs(self) -> pd.DataFrame:
        """Every run, oldest first (by ``time``, then ``added``)."""
        return self.con.execute("SELECT * FROM runs ORDER BY time NULLS LAST, added").df()

    def cells(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Cells of every run (or of ``run_ids``), with the run's ``source`` and ``kind``, oldest run first."""
        sql = ("SELECT c.*, r.source AS run_source, r.kind AS run_kind, r.time AS run_time, r.added AS run_added "
               "FROM cells c JOIN runs r USING (run_id)")
        params: list[Any] = []
        if run_ids is not None:
            ids = list(run_ids)
            if not ids:
                return self.con.execute(sql + " WHERE FALSE").df()
            sql += " WHERE c.run_id IN (" + ",".join("?" * len(ids)) + ")"
            params = ids
        return self.con.execute(sql + " ORDER BY r.time NULLS LAST, r.added, c.cell_id", params).df()

    def clips(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Per-clip outcomes of ``run_ids``."""
        ids = list(run_ids)
        if not ids:
            return pd.DataFrame(columns=_CLIP_COLUMNS)
        return self.con.execute("SELECT * FROM clips WHERE run_id IN (" + ",".join("?" * len(ids)) + ")", ids).df()

    def run_id_of(self, source: str | os.PathLike[str]) -> str:
        """Id of the run added from ``source`` (a run directory or pytest-benchmark file).

        Raises:
            HistoryError: ``source`` is not in the history.
        """
        p = Path(source)
        src = str((p.parent if p.name == "results.jsonl" else p).resolve())
        row = self.con.execute("SELECT run_id FROM runs WHERE source = ? ORDER BY added DESC", [src]).fetchone()
        if row is None:
            raise HistoryError(f"{source}: not in the history at {self.root}")
        return str(row[0])

    def run(self, run_id: str) -> RunData:
        """One stored run (a unique prefix of its id is enough).

        Raises:
            HistoryError: No run, or more than one, matches ``run_id``.
        """
        rows = self.con.execute("SELECT * FROM runs WHERE run_id LIKE ?", [f"{run_id}%"]).df()
        if len(rows) != 1:
            raise HistoryError(f"{self.root}: {'no' if rows.empty else 'more than one'} run matches id {run_id!r}")
        rid = rows["run_id"].iloc[0]
        return RunData(run=rows.iloc[0].to_dict(), cells=self.cells([rid]), clips=self.clips([rid]))


def history(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Every cell of every run in the history at ``root``, in one DataFrame (one query).

    Args:
        root: History folder (holding ``history.duckdb``).

    Returns:
        One row per (run, cell), oldest run first: identity columns
        (``run_id``, ``cell_id``, ``machine_key``, ``method``, ``config``,
        ``knobs``, ``dataset``, ``commit``, ``time``, ``noisy``...), every
        stored scalar (``latency_ms_p50`` in ms, ``top1`` 0-1,
        ``gmacs_per_video`` in GMACs, ...; units in
        :data:`evbench.harness.results.UNITS`), ``latency_samples_ms`` (numpy
        array of ms per row, or missing), and the run's ``run_source``,
        ``run_kind``, ``run_time``.

    Raises:
        HistoryError: No history at ``root``.
    """
    with History(root, read_only=True) as h:
        return h.cells()
