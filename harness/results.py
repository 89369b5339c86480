"""The results store: one JSON line per finished cell, per-sample Parquet beside it.

Layout of a run directory ``DIR``::

    DIR/results.jsonl          one row per finished (or failed) cell, appended atomically
    DIR/samples/<cell_id>.parquet   per-video rows of that cell (written before its row)
    DIR/report/                written by ``evbench report``

A row is appended with a single ``write`` of one ``\\n``-terminated line on a
file opened with ``O_APPEND`` followed by ``fsync``, so a crash leaves either the
whole row or none of it; a torn last line (power loss mid-write) is ignored by
:func:`load` with a warning.  :func:`load` is the one way to read results.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["UNITS", "ResultStore", "load", "load_samples"]

RESULTS_FILE = "results.jsonl"
SAMPLES_DIR = "samples"

#: Unit (and convention) of every numeric column a row may carry.
UNITS: dict[str, str] = {
    "top1": "fraction 0-1 (top-1 accuracy over test videos)",
    "top1_ci_low": "fraction 0-1 (95 % bootstrap, percentile)",
    "top1_ci_high": "fraction 0-1 (95 % bootstrap, percentile)",
    "top5": "fraction 0-1",
    "map": "fraction 0-1 (mean per-class AP over softmax scores)",
    "num_videos": "videos evaluated",
    "gmacs_per_video": "GMACs (1e9 multiply-accumulates) per video, mean over videos, sum over trace",
    "gmacs_per_video_p5": "GMACs per video, 5th percentile",
    "gmacs_per_video_p95": "GMACs per video, 95th percentile",
    "gmacs_static_upper": "GMACs per video if every step that can run ran (static upper bound)",
    "gmacs_policy_per_video": "GMACs per video spent in policy / gate modules",
    "gmacs_backbone_per_video": "GMACs per video spent in backbones and heads",
    "gmacs_input_per_video": "GMACs per video declared for producing the input (e.g. feature extractor)",
    "gmacs_per_frame": "GMACs per frame actually processed (gmacs_per_video / frames_used)",
    "gflops_per_video": "derived: 2 x gmacs_per_video",
    "executed_gmacs_per_video": "GMACs counted while the forward ran (FlopCounterMode/2 + LSTM formulas), mean per video",
    "frames_used": "frames actually processed per video, mean",
    "frames_total": "frames available per video",
    "latency_ms_p50": "ms, single-stream batch 1 wall clock, 50th percentile",
    "latency_ms_p90": "ms, single-stream batch 1, 90th percentile",
    "latency_ms_p99": "ms, single-stream batch 1, 99th percentile",
    "latency_ms_mean": "ms, single-stream batch 1, mean",
    "latency_queries": "queries timed",
    "fps_offline": "frames/s processed, offline (best batch)",
    "fps_offline_batch": "batch size giving fps_offline",
    "fps_stream_processed": "frames/s actually processed, single-stream (frames_used / mean latency)",
    "fps_stream_covered": "frames/s of video covered, single-stream (frames_total / mean latency); exceeds the processed rate when frames are skipped or exited",
    "peak_rss_mb": "MiB, peak process resident set during latency measurement",
    "peak_cuda_mb": "MiB, peak CUDA allocation (None off CUDA)",
    "decode_ms_mean": "ms per video, PyAV decode (cache misses only)",
    "preprocess_ms_mean": "ms per video, resize/crop/normalise",
    "train_s": "s, wall time of training this cell's model (0 when reused)",
    "wall_s": "s, wall time of the whole cell",
    "threads": "torch intra-op threads",
    "energy_j_per_clip": "J per clip (batch 1), from the platform counter named in energy_source (NVML, RAPL, Jetson INA3221 rails); absent where none is readable",
    "energy_interval_s": "s between power samples integrated into energy_j_per_clip (sampled meters)",
    "energy_samples": "power samples integrated into energy_j_per_clip",
    "latency_ms_std": "ms, sample standard deviation (ddof=1) of single-stream latency",
    "latency_clips": "distinct clips cycled through by the latency queries",
    "max_abs_logit_diff": "max |logit - logit of torch eager| over the latency clips (non-torch backends)",
}


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
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / SAMPLES_DIR).mkdir(exist_ok=True)
        self.path = self.root / RESULTS_FILE

    def finished_ids(self) -> set[str]:
        """Ids of cells that finished with status ``"ok"`` (failed cells are retried)."""
        return {r["cell_id"] for r in read_jsonl(self.path) if r.get("status") == "ok"}

    def rows(self) -> list[dict[str, Any]]:
        """Every complete row, in append order."""
        return list(read_jsonl(self.path))

    def write_samples(self, cell_id: str, frame: pd.DataFrame) -> Path:
        """Write per-sample rows atomically (tmp file + ``os.replace``).

        Returns:
            The Parquet path.
        """
        dest = self.root / SAMPLES_DIR / f"{cell_id}.parquet"
        tmp = dest.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, dest)
        return dest

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row atomically (one ``write`` + ``fsync`` on ``O_APPEND``).

        Raises:
            ValueError: If ``row`` has no ``cell_id``.
        """
        if "cell_id" not in row:
            raise ValueError("result row needs a cell_id")
        append_jsonl(self.path, [row])


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to a JSON Lines file, each with one ``write`` on ``O_APPEND`` then ``fsync``.

    A crash leaves whole rows only; values are made strict-JSON first (NaN/inf
    -> null).  Used for cell rows and for claim verdicts.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for row in rows:
            os.write(fd, (json.dumps(_clean(dict(row)), sort_keys=True, allow_nan=False) + "\n").encode())
            os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    """Rows of a JSON Lines file written by :func:`append_jsonl`; a torn or unreadable line is skipped with a warning."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                warnings.warn(f"{path}:{lineno}: torn last row ignored (interrupted write)", stacklevel=3)
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                warnings.warn(f"{path}:{lineno}: unreadable row ignored ({exc})", stacklevel=3)


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

    Raises:
        FileNotFoundError: If ``path`` holds no results file.
    """
    root = Path(path)
    files = _result_files(root)
    if not files:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {root}")
    records: list[dict[str, Any]] = []
    for f in files:
        for row in read_jsonl(f):
            flat = {k: v for k, v in row.items() if k != "env"}
            for k, v in (row.get("env") or {}).items():
                flat[f"env_{k}"] = v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)
            for k in ("knobs", "overrides"):
                if isinstance(flat.get(k), (dict, list)):
                    flat[k] = json.dumps(flat[k], sort_keys=True)
            flat["run"] = str(f.parent)
            records.append(flat)
    df = pd.DataFrame.from_records(records)
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
