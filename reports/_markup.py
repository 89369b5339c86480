"""HTML building blocks of the report: escaping, table cells, tables, the style sheet.

Every string that comes from data goes through :func:`esc` (``html.escape``) or
through :func:`td`, which escapes unless told the text is already built HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from evbench.reports._fields import is_missing
from evbench.reports.format import MISSING, format_number

__all__ = ["CSS", "NOT_MEASURED", "attr", "esc", "html_table", "num_col", "num_td", "slug", "td"]

#: Tooltip and note for a value that a cell did not record.
NOT_MEASURED = "not measured"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 1400px; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; padding-bottom: 0.2em;
       margin-top: 2em; } h3 { margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
tr.units th { background: #fafafa; font-weight: normal; font-style: italic; color: #555; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.na { text-align: center; color: #999; }
td.front { font-weight: bold; }
.scroll { overflow: auto; max-height: 70vh; border: 1px solid #ddd; }
.scroll table { margin: 0; }
.scroll thead th { position: sticky; top: 0; z-index: 2; }
.scroll thead tr.units th { top: 1.9em; }
.scroll td:first-child, .scroll th:first-child { position: sticky; left: 0; background: #fff;
       z-index: 1; }
.scroll thead th:first-child { z-index: 3; background: #f2f2f2; }
.banner { padding: 0.8em 1em; margin: 1em 0; border-radius: 4px; font-weight: bold; }
.synthetic { background: #fde2e1; border: 2px solid #c0392b; color: #8e1b12; }
.warn { background: #fff4d6; border: 1px solid #e0b440; }
.okbox { background: #e6f4ea; border: 1px solid #7bbf8e; font-weight: normal; }
.note { color: #555; font-size: 0.9em; }
pre, .pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: 0.9em; }
pre.err { max-height: 16em; overflow: auto; background: #fbf3f3; padding: 0.3em; }
code { font-size: 0.9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
nav ul { columns: 2; } .tag { font-size: 0.7em; vertical-align: middle; padding: 0.1em 0.4em;
       border-radius: 3px; background: #c0392b; color: #fff; }
"""


def esc(value: Any) -> str:
    """``str(value)`` HTML-escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def attr(name: str, value: str | None) -> str:
    """`` name="value"`` with the value escaped; empty when ``value`` is None."""
    return "" if value is None else f' {name}="{esc(value)}"'


def td(text: Any, *, title: str | None = None, cls: str | None = None, raw: bool = False) -> str:
    """One table cell; ``text`` is escaped unless ``raw`` (already-built HTML)."""
    if not raw and (is_missing(text) or text == MISSING):
        return f'<td class="na" title="{NOT_MEASURED}">{MISSING}</td>'
    body = text if raw else esc(text)
    return f"<td{attr('class', cls)}{attr('title', title)}>{body}</td>"


def num_td(column: str, value: Any, *, cls: str = "num") -> str:
    """A right-aligned cell holding ``value`` formatted for ``column``."""
    text = format_number(column, value)
    if text == MISSING:
        return td(None)
    return td(text, cls=cls)


def html_table(
    header: Sequence[str | tuple[str, str]],
    rows: Iterable[Sequence[str]],
    *,
    units: Sequence[str | tuple[str, str]] | None = None,
    scroll: bool = False,
) -> str:
    """A table; header entries are text or (text, tooltip); rows are built ``<td>`` strings."""

    def th(entry: str | tuple[str, str]) -> str:
        if isinstance(entry, tuple):
            return f"<th{attr('title', entry[1])}>{esc(entry[0])}</th>"
        return f"<th>{esc(entry)}</th>"

    head = "<tr>" + "".join(th(h) for h in header) + "</tr>"
    if units is not None:
        head += '<tr class="units">' + "".join(th(u) for u in units) + "</tr>"
    body = "\n".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    table = f"<table>\n<thead>{head}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    return f'<div class="scroll">{table}</div>' if scroll else table


def slug(text: str, i: int) -> str:
    """A safe file-name fragment for ``text``, prefixed by ``i`` so fragments stay unique."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40]
    return f"{i:02d}-{s or 'x'}"


def num_col(df: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as floats (NaN where missing or not numeric; all NaN when absent)."""
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce")
