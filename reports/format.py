"""Units and number formatting for report tables (plain text, no HTML).

The stored unit of every numeric column (``evbench.harness.results.UNITS``), the
short unit shown in a header and the display format all come from the field
metadata of :class:`evbench.harness.row.CellResult` (``unit``, ``short``,
``fmt``), so the report's column legend is generated from the row schema:
accuracies (stored as fractions 0-1) as percentages with two decimals, GMACs
with three significant digits, milliseconds with two decimals, counts as
integers.  Columns outside the schema (keys of older rows) fall back to a
guess from their name.  A missing value is shown as ``—`` ("not measured").
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from evbench.harness.results import UNITS
from evbench.harness.row import column_meta

__all__ = [
    "MISSING",
    "display_unit",
    "format_number",
    "format_value",
    "is_fraction",
    "numeric_columns",
    "shown_as",
    "stored_unit",
]

#: Text shown for a value that was not measured.
MISSING = "—"

#: Columns of a results table that are never measurements even if numeric.
_NOT_MEASURES = {"run", "cell_id"}


def stored_unit(column: str) -> str:
    """The stored unit of ``column`` as declared in ``evbench.harness.results.UNITS``.

    Args:
        column: Column name.

    Returns:
        The declared unit text, or a note that none is declared.
    """
    return UNITS.get(column, "unit not declared in evbench.harness.results.UNITS")


def is_fraction(column: str) -> bool:
    """Whether ``column`` is stored as a fraction 0-1 (shown as %).

    Args:
        column: Column name.

    Returns:
        True for accuracy-like columns (``top1``, ``top5``, ``map``, CIs).
    """
    return UNITS.get(column, "").startswith("fraction")


def _kind(column: str) -> str:
    """Display format of ``column``: the schema's ``fmt``, else a guess from the name (undeclared columns)."""
    meta = column_meta(column)
    if meta is not None and meta.get("fmt"):
        return meta["fmt"]
    unit = UNITS.get(column, "")
    if is_fraction(column):
        return "fraction"
    if "gflops" in column:
        return "gflops"
    if "gmacs" in column:
        return "gmacs"
    if column.startswith("fps"):
        return "fps"
    if column.startswith("frames"):
        return "frames"
    if unit.startswith("ms") or column.endswith("_ms") or "_ms_" in column:
        return "ms"
    if unit.startswith("MiB") or column.endswith("_mb"):
        return "mib"
    if column.endswith("_s") or unit.startswith("s,"):
        return "seconds"
    if column.startswith("energy") or column.endswith("_j"):
        return "joules"
    return "other"


_SHORT = {
    "fraction": "%",
    "gflops": "GFLOPs",
    "gmacs": "GMACs",
    "fps": "frames/s",
    "frames": "frames",
    "ms": "ms",
    "mib": "MiB",
    "seconds": "s",
    "joules": "J",
}

_SHOWN = {
    "fraction": "percent (stored fraction × 100), 2 decimals",
    "gflops": "3 significant digits",
    "gmacs": "3 significant digits",
    "count": "integer",
    "fps": "1 decimal",
    "frames": "2 decimals",
    "ms": "2 decimals",
    "mib": "1 decimal",
    "seconds": "2 decimals",
    "joules": "3 significant digits",
    "other": "4 significant digits",
}


def display_unit(column: str) -> str:
    """Short unit for a table header, matching how values are shown.

    Args:
        column: Column name.

    Returns:
        The schema's ``short`` unit (e.g. ``"%"`` for ``top1``, ``"GMACs"``,
        ``"ms"``, ``"queries"``); for undeclared columns a guess from the
        name, else ``"?"``.
    """
    meta = column_meta(column)
    if meta is not None and meta.get("short") is not None:
        return meta["short"]
    kind = _kind(column)
    if kind in _SHORT:
        return _SHORT[kind]
    unit = UNITS.get(column)
    if unit is None:
        return "?"
    return unit.split(",")[0].split("(")[0].strip()


def shown_as(column: str) -> str:
    """How values of ``column`` are formatted in the report.

    Args:
        column: Column name.

    Returns:
        A short description such as ``"2 decimals"``.
    """
    return _SHOWN[_kind(column)]


def _sig(x: float, digits: int) -> str:
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def format_number(column: str, value: Any) -> str:
    """Format one numeric value of ``column`` for display.

    Args:
        column: Column name, which picks the format (see :func:`shown_as`).
        value: The stored value (number, numeric string, None or NaN).

    Returns:
        The formatted number without its unit, or :data:`MISSING`.
    """
    if isinstance(value, bool):
        return str(value).lower()
    try:
        x = float(value)
    except (TypeError, ValueError):
        return MISSING if value is None else str(value)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    kind = _kind(column)
    if kind == "fraction":
        return f"{100.0 * x:.2f}"
    if kind in {"gmacs", "gflops", "joules"}:
        return _sig(x, 3)
    if kind == "count":
        return f"{x:.0f}" if x.is_integer() else f"{x:.2f}"
    if kind == "fps":
        return f"{x:.1f}"
    if kind in {"frames", "ms", "seconds"}:
        return f"{x:.2f}"
    if kind == "mib":
        return f"{x:.1f}"
    return f"{x:.4g}"


def format_value(column: str, value: Any) -> str:
    """Format a value with its display unit (``"78.93 %"``, ``"12.30 ms"``).

    Args:
        column: Column name.
        value: The stored value.

    Returns:
        Number and unit, or :data:`MISSING` when not measured.
    """
    text = format_number(column, value)
    if text == MISSING:
        return text
    unit = display_unit(column)
    if unit in {"?", ""} or _kind(column) == "count":
        return text
    return f"{text} {unit}"


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """Measured numeric columns of a results table, in a stable, readable order.

    A column counts when it holds at least one number (booleans excluded) and is
    not an environment field (``env_*``).  Columns declared in
    ``evbench.harness.results.UNITS`` come first in that order, then the rest sorted.

    Args:
        df: Results table.

    Returns:
        Column names.
    """
    found = []
    for col in df.columns:
        if not isinstance(col, str) or col.startswith("env_") or col in _NOT_MEASURES:
            continue
        series = df[col]
        if pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_numeric_dtype(series):
            if series.notna().any():
                found.append(col)
            continue
        values = series.dropna()
        if values.empty:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            found.append(col)
    order = {name: i for i, name in enumerate(UNITS)}
    return sorted(found, key=lambda c: (order.get(c, len(order)), c))
