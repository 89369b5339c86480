"""The results store: one JSON line per finished cell, per-sample Parquet beside it.

Layout of a run directory ``DIR``::

    DIR/results.jsonl          one row per finished (or failed) cell, appended atomically
    DIR/samples/<cell_id>.parquet   per-video rows of that cell (written before its row)
    DIR/report/                written by ``evbench report``
    DIR/.lock                  held (``flock``) by the run writing ``DIR``, naming its pid

A row is appended with one ``write`` of one ``\\n``-terminated line on a file
opened with ``O_APPEND``, checked for a short write, then ``fsync``-ed; only then
does the cell count as finished.  If the file does not end in ``\\n`` (a torn
fragment left by a crash), a newline is written first, so a new row never
fuses with the fragment.  A write that fails (disk full, read-only, no
permission) raises :class:`~evbench.harness.rundir.ResultStoreError` naming the
file, after cutting the file back to its previous length.  Unreadable lines
(torn fragments, non-JSON, JSON that is not an object) are skipped with a
warning and counted: :func:`read_jsonl` reports them, :func:`load` keeps them in
``df.attrs["unreadable_rows"]``.  :func:`load` is the one way to read results.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from evbench.harness.row import CellResult, RowError, units
from evbench.harness.rundir import ResultStoreError, RunLock, describe_os_error

__all__ = ["UNITS", "BadRow", "ResultStore", "ResultStoreError", "append_jsonl", "history", "load", "load_samples", "read_jsonl"]

RESULTS_FILE = "results.jsonl"
SAMPLES_DIR = "samples"

#: Unit (and convention) of every numeric column a row may carry — generated from the field
#: metadata of :class:`evbench.harness.row.CellResult` (plus the derived ``gflops_per_video``).
UNITS: dict[str, str] = units()


def _clean(value: Any) -> Any:
    """Make ``value`` strict-JSON serialisable (NaN/inf -> None, tuples -> lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _clean(value.item())
    return value


class ResultStore:
    """Append-only store of cell results in ``root``.

    Args:
        root: Run directory; created if absent.

    Raises:
        ResultStoreError: ``root`` (or its ``samples/``) cannot be created.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for d in (self.root, self.root / SAMPLES_DIR):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ResultStoreError(d, describe_os_error(exc), hint="choose a writable --out") from exc
        self.path = self.root / RESULTS_FILE

    def lock(self) -> RunLock:
        """The run directory's exclusive lock (a context manager; see :class:`~evbench.harness.rundir.RunLock`)."""
        return RunLock(self.root)

    def finished_ids(self) -> set[str]:
        """Ids of cells that finished with status ``"ok"`` (failed cells are retried)."""
        return {r["cell_id"] for r in read_jsonl(self.path) if r.get("status") == "ok" and "cell_id" in r}

    def rows(self) -> list[dict[str, Any]]:
        """Every complete row, in append order."""
        return list(read_jsonl(self.path))

    def unreadable(self) -> list[BadRow]:
        """Lines of ``results.jsonl`` that are not a whole JSON object (torn, corrupt, non-object)."""
        bad: list[BadRow] = []
        for _ in read_jsonl(self.path, bad=bad, warn=False):
            pass
        return bad

    def remove_stale_tmp(self) -> list[Path]:
        """Delete ``samples/*.tmp`` left by a run killed mid-write (call under the lock).

        Returns:
            The files removed.
        """
        removed = []
        for tmp in (self.root / SAMPLES_DIR).glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
        return removed

    def write_samples(self, cell_id: str, frame: pd.DataFrame) -> Path:
        """Write per-sample rows atomically (tmp file, ``fsync``, ``os.replace``).

        Nothing is left behind on failure: the tmp file is removed and an
        earlier file of the cell, if any, is untouched.

        Returns:
            The Parquet path.

        Raises:
            ResultStoreError: The file cannot be written (disk full, read-only,
                no permission), naming it.
        """
        dest = self.root / SAMPLES_DIR / f"{cell_id}.parquet"
        tmp = dest.with_suffix(".parquet.tmp")
        try:
            frame.to_parquet(tmp, index=False)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise ResultStoreError(dest, describe_os_error(exc),
                                       hint="the cell is not counted as finished") from exc
            raise
        return dest

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row (newline guard, one ``write``, short-write check, ``fsync``).

        Raises:
            ValueError: If ``row`` has no ``cell_id``.
            ResultStoreError: The row could not be written whole; the cell is
                not finished.
        """
        if "cell_id" not in row:
            raise ValueError("result row needs a cell_id")
        append_jsonl(self.path, [row])


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to a JSON Lines file so that no finished row is ever lost.

    Per row: if the file does not end in ``\\n`` (a torn fragment of a crashed
    writer), a ``\\n`` is written first so the row starts its own line; the
    line is written with one ``write`` on ``O_APPEND`` (the remainder of a
    short write is retried; a write of 0 bytes is an error), then ``fsync``-ed.
    On any failure the file is cut back to its length before that row and
    :class:`~evbench.harness.rundir.ResultStoreError` is raised, naming the
    file.  Values are made strict JSON first (NaN/inf -> null).  Used for cell
    rows and for claim verdicts.

    Args:
        path: The ``.jsonl`` file (created if absent).
        rows: Rows (mappings); serialised with sorted keys.

    Raises:
        ResultStoreError: Open, write or ``fsync`` failed (``ENOSPC``, ``EROFS``,
            ``EACCES``, short write, ...).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultStoreError(path, describe_os_error(exc), hint="choose a writable --out") from exc
    try:
        for row in rows:
            line = (json.dumps(_clean(dict(row)), sort_keys=True, allow_nan=False) + "\n").encode()
            size = os.fstat(fd).st_size
            try:
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # newline guard: never append onto a torn fragment
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # leave the file as it was before this row
                raise ResultStoreError(path, describe_os_error(exc),
                                       hint="the row was not stored and its cell is not finished") from exc
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written; a 0-byte write raises ``ENOSPC``."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(28, f"short write: {len(data) - len(view)} of {len(data)} bytes written")
        view = view[n:]


@dataclass(frozen=True)
class BadRow:
    """A line of a JSON Lines file that is not a whole JSON object.

    Attributes:
        path: The file.
        line: 1-based line number.
        reason: ``"torn"`` (no final newline: interrupted write), ``"invalid JSON: ..."``
            or ``"not an object (list)"``.
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def read_jsonl(path: str | os.PathLike[str], *, bad: list[BadRow] | None = None,
               warn: bool = True) -> Iterator[dict[str, Any]]:
    """Rows (JSON objects) of a JSON Lines file written by :func:`append_jsonl`.

    A torn last line, a line that is not JSON and a line whose JSON is not an
    object are skipped, each with a warning naming file and line, and appended
    to ``bad`` when given.  Blank lines are ignored.

    Args:
        path: The file; a missing file yields nothing.
        bad: Collects the skipped lines as :class:`BadRow`.
        warn: Emit a ``UserWarning`` per skipped line.

    Yields:
        Each row as a dict.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            reason = None
            if not line.endswith("\n"):
                reason = "torn last row (interrupted write)"
            else:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    reason = f"invalid JSON, a torn or corrupt row ({exc.msg}, column {exc.colno})"
                else:
                    if not isinstance(row, dict):
                        reason = f"not a JSON object ({type(row).__name__})"
            if reason is None:
                yield row
                continue
            if bad is not None:
                bad.append(BadRow(str(path), lineno, reason))
            if warn:
                warnings.warn(f"{path}:{lineno}: {reason}, ignored", stacklevel=3)


def _result_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / RESULTS_FILE).exists():
        return [path / RESULTS_FILE]
    return sorted(path.rglob(RESULTS_FILE))


def load(path: str | os.PathLike[str], *, latest_only: bool = True) -> pd.DataFrame:
    """Read results into a DataFrame — the one way to read results.

    Args:
        path: A run directory, a ``results.jsonl`` file, or a folder of run
            directories (every ``results.jsonl`` below it is read; a ``run``
            column names the directory each row came from).
        latest_only: Keep only the last row per ``cell_id`` within a run (a
            failed cell retried on ``--resume`` then shows its final outcome).

    Returns:
        One row per cell.  Nested ``env`` fields become ``env_<key>`` columns;
        ``knobs``/``overrides`` stay canonical JSON strings so they group and
        compare; ``gflops_per_video`` is derived as ``2 * gmacs_per_video``.
        ``df.attrs["unreadable_rows"]`` lists the skipped lines as
        :class:`BadRow` (torn, not JSON, not an object).

    Raises:
        FileNotFoundError: If ``path`` holds no results file.
    """
    root = Path(path)
    files = _result_files(root)
    if not files:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {root}")
    records: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    for f in files:
        for nth, raw in enumerate(read_jsonl(f, bad=bad), 1):
            try:
                row = CellResult.from_row(raw).to_row()
            except RowError as exc:  # a JSON object that is not a result row of any schema version
                bad.append(BadRow(str(f), nth, f"row {nth} is not a result row ({exc})"))
                warnings.warn(f"{f}: row {nth} is not a result row ({exc}), ignored", stacklevel=2)
                continue
            flat = {k: v for k, v in row.items() if k != "env"}
            env = row.get("env")
            for k, v in (env if isinstance(env, Mapping) else {}).items():
                flat[f"env_{k}"] = v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)
            for k in ("knobs", "overrides"):
                if isinstance(flat.get(k), (dict, list)):
                    flat[k] = json.dumps(flat[k], sort_keys=True)
            flat["run"] = str(f.parent)
            records.append(flat)
    df = pd.DataFrame.from_records(records)
    df.attrs["unreadable_rows"] = bad
    if df.empty:
        return df
    if latest_only and "cell_id" in df:
        df = df.drop_duplicates(subset=["run", "cell_id"], keep="last").reset_index(drop=True)
    if "gmacs_per_video" in df:
        df["gflops_per_video"] = 2.0 * pd.to_numeric(df["gmacs_per_video"], errors="coerce")
    return df


def load_samples(path: str | os.PathLike[str], cell_id: str) -> pd.DataFrame:
    """Per-sample rows of one cell (``DIR/samples/<cell_id>.parquet``).

    Raises:
        FileNotFoundError: If the cell has no per-sample file.
    """
    f = Path(path) / SAMPLES_DIR / f"{cell_id}.parquet"
    if not f.exists():
        raise FileNotFoundError(f"no per-sample results for cell {cell_id} at {f}")
    return pd.read_parquet(f)


def history(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Every cell of every run in a run history, in one DataFrame (one DuckDB query).

    See :func:`evbench.harness.history.history` (columns, units) and
    ``evbench history add`` / ``evbench run --history DIR`` to fill one.

    Raises:
        evbench.harness.history.HistoryError: No history at ``root``.
    """
    from evbench.harness.history import history as _history

    return _history(root)
