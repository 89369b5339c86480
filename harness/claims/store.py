"""Storing verdict rows in a run directory (``claims.jsonl``) and reading them back."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CLAIMS_FILE", "append_rows", "load_claim_rows"]

#: File in a run directory that holds stored verdict rows (one JSON object per line).
CLAIMS_FILE = "claims.jsonl"


def append_rows(out_dir: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                extra: Mapping[str, Any] | None = None) -> Path:
    """Append verdict rows to ``out_dir/claims.jsonl``, one atomic line write each.

    Each row is one ``\\n``-terminated JSON line written with a single
    ``os.write`` on a file opened with ``O_APPEND``, then ``fsync`` — a crash
    leaves whole rows only (as :class:`evbench.harness.results.ResultStore`).

    Args:
        out_dir: Run directory (created if absent).
        rows: :func:`judge` rows.
        extra: Fields added to every row (e.g. ``checked_at``, ``env``).

    Returns:
        The path of ``claims.jsonl``.
    """
    from evbench.harness.results import append_jsonl

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / CLAIMS_FILE
    append_jsonl(path, ({**dict(r), **dict(extra or {})} for r in rows))
    return path


def load_claim_rows(path: str | os.PathLike[str], *, latest_only: bool = True) -> list[dict[str, Any]]:
    """Stored verdict rows of a run directory (or a ``claims.jsonl`` file).

    Args:
        path: Run directory or the file itself.
        latest_only: Keep the last stored row per claim id (a re-check replaces
            an older one), in first-seen order.

    Returns:
        The rows; empty when there is no ``claims.jsonl``.  A torn or
        unreadable line is skipped with a warning (:func:`evbench.harness.results.read_jsonl`).
    """
    from evbench.harness.results import read_jsonl

    p = Path(path)
    f = p if p.is_file() else p / CLAIMS_FILE

    rows = [r for r in read_jsonl(f) if isinstance(r, dict) and "id" in r]
    if not latest_only:
        return rows
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        last.pop(r["id"], None)
        last[r["id"]] = r
    return list(last.values())
