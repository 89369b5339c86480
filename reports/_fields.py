"""Reading the columns of a results table (shared by plots and HTML).

Rows come from ``evbench.harness.results.load``, which reads every stored row
through :class:`evbench.harness.row.CellResult`: each column holds its field's
type (numbers, bools, dicts, lists) or ``None``/NaN for "not measured"; only
``knobs``/``overrides`` are canonical JSON strings (so they group).  The
helpers here only tell missing values apart and turn those two JSON columns
back into mappings — no guessing at stringly-typed values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = [
    "cell_name",
    "is_missing",
    "ok_rows",
    "op_label",
    "parse_mapping",
    "parse_records",
    "text_column",
    "truthy",
    "truthy_column",
]

#: Short names of common knobs/overrides used in plot annotations.
_KEY_ABBREV: dict[str, str] = {
    "frames": "T",
    "num_frames": "T",
    "num_segments": "T",
    "t": "T",
    "resolution": "r",
    "res": "r",
    "threshold": "thr",
    "exit_threshold": "thr",
    "confidence_threshold": "thr",
    "gate_threshold": "gate",
    "gate_bias": "bias",
    "backbone": "",
}


def is_missing(value: Any) -> bool:
    """Whether ``value`` is an absent measurement (None, NaN, NA, NaT or ``""``).

    Args:
        value: Any cell value; containers are never missing.

    Returns:
        True for None, float NaN, ``pd.NA``, ``pd.NaT`` and the empty string.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value == ""
    return False


def truthy(value: Any) -> bool:
    """Whether a stored flag (a ``bool`` column of a typed row) is set; missing is False.

    Args:
        value: A cell of a boolean column (``True``/``False``/``None``/NaN).

    Returns:
        True only for a true value.
    """
    return not is_missing(value) and bool(value)


def truthy_column(df: pd.DataFrame, column: str) -> pd.Series:
    """A boolean Series for ``column`` (all False when the column is absent).

    Args:
        df: Results table.
        column: Name of a flag column such as ``modeled``.

    Returns:
        Boolean Series aligned with ``df.index``.
    """
    if column not in df.columns:
        return pd.Series(False, index=df.index, dtype=bool)
    return df[column].map(truthy).astype(bool)


def text_column(df: pd.DataFrame, column: str, fill: str) -> pd.Series:
    """``column`` as strings, missing values (and an absent column) replaced by ``fill``.

    Args:
        df: Results table.
        column: Column name.
        fill: Text for missing values.

    Returns:
        An object Series of ``str`` aligned with ``df.index``.
    """
    if column not in df.columns:
        return pd.Series(fill, index=df.index, dtype=object)
    return df[column].map(lambda v: fill if is_missing(v) else str(v)).astype(object)


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished cells (``status == "ok"``; all rows when no status column).

    Args:
        df: Results table.

    Returns:
        The subset of ``df`` whose measurements are results.
    """
    if "status" not in df.columns:
        return df
    return df[text_column(df, "status", "") == "ok"]


def parse_mapping(value: Any) -> dict[str, Any]:
    """A dict-valued cell as a dict: a mapping, or the canonical JSON of ``knobs``/``overrides``.

    Args:
        value: Cell value, e.g. ``{"224": 10}`` or ``'{"threshold": 0.5}'``.

    Returns:
        The mapping with string keys; ``{}`` when missing (or not a mapping).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def parse_records(value: Any) -> list[Any]:
    """A list-valued cell (``data_errors``, ``per_file``) as a list; ``[]`` when missing.

    Args:
        value: Cell value.

    Returns:
        The list.
    """
    return list(value) if isinstance(value, (list, tuple)) else []


def _short_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 4:
            return f"[{len(value)} items]"
        return "[" + ",".join(_short_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_short_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def op_label(row: Mapping[str, Any], *, max_len: int = 28) -> str:
    """Compact operating point of a cell from its ``overrides`` and ``knobs``.

    ``{"frames": 8, "resolution": 112}`` gives ``"T=8 r=112"``; ``{"threshold":
    0.9}`` gives ``"thr=0.9"``.  Without knobs or overrides the mean frames used
    (``"8f"``) is shown instead.

    Args:
        row: One result row (a mapping or ``pandas.Series``).
        max_len: Longest label returned; longer ones end in ``…``.

    Returns:
        The label, possibly empty.
    """
    merged: dict[str, Any] = {}
    merged.update(parse_mapping(row.get("overrides")))
    merged.update(parse_mapping(row.get("knobs")))
    parts = []
    for key, value in merged.items():
        short = _KEY_ABBREV.get(key.lower(), key)
        text = _short_value(value)
        parts.append(f"{short}={text}" if short else text)
    label = " ".join(parts)
    if not label:
        frames = pd.to_numeric(pd.Series([row.get("frames_used")]), errors="coerce").iloc[0]
        if pd.notna(frames):
            label = f"{frames:.3g}f"
    if len(label) > max_len:
        label = label[: max_len - 1] + "…"
    return label


def cell_name(row: Mapping[str, Any]) -> str:
    """Display name of a cell: its ``label``, else ``method`` [``config``].

    Args:
        row: One result row.

    Returns:
        A human-readable name (never empty).
    """
    label = row.get("label")
    if not is_missing(label) and not isinstance(label, (list, dict)):
        return str(label)
    method = row.get("method")
    name = "?" if is_missing(method) else str(method)
    config = row.get("config")
    if not is_missing(config):
        name += f" [{config}]"
    op = op_label(row)
    if op:
        name += f" {op}"
    return name
