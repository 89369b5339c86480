"""Page sections that do not depend on a dataset: header, measurements, failures, decode.

Each ``*_section`` function returns an HTML fragment; every data string in it
is escaped.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import pandas as pd
from evbench.harness.results import UNITS
from evbench.reports._fields import (
    cell_name,
    is_missing,
    parse_records,
    text_column,
    truthy,
    truthy_column,
)
from evbench.reports._markup import NOT_MEASURED, esc, html_table, num_td, td
from evbench.reports.format import MISSING, display_unit, numeric_columns, shown_as, stored_unit

__all__ = [
    "ID_COLUMNS",
    "data_errors_frame",
    "decode_section",
    "distinct",
    "failures_section",
    "header_section",
    "measurements_section",
    "per_file_frame",
]

#: Identification columns of the measurement table, in order, when present.
ID_COLUMNS = (
    "cell_id",
    "label",
    "method",
    "config",
    "knobs",
    "overrides",
    "dataset",
    "device",
    "backend",
    "modeled",
    "status",
)

#: Environment fields summarised in the header (the rest go in a details box).
ENV_SUMMARY = (
    ("env_cpu_model", "CPU"),
    ("env_torch", "torch"),
    ("env_threads", "threads"),
    ("env_device", "device"),
    ("env_gpu_name", "GPU"),
    ("env_git_commit", "git commit"),
)

_TIME_COLUMN = re.compile(r"(^|_)(time|timestamp|date|datetime|started|finished|start|end)(_|$)")
_TOP_LEVEL_TIME = {"time", "timestamp", "started_at", "finished_at", "start_time", "end_time"}
_PER_FILE_ROWS_SHOWN = 200


# --------------------------------------------------------------------------- header


def distinct(df: pd.DataFrame, column: str) -> list[str]:
    """Distinct non-missing values of ``column`` as strings, in order of appearance.

    Args:
        df: Results table.
        column: Column name (absent: no values).

    Returns:
        The values.
    """
    if column not in df.columns:
        return []
    seen: list[str] = []
    for v in df[column]:
        if is_missing(v):
            continue
        s = str(v)
        if s not in seen:
            seen.append(s)
    return seen


def _to_times(series: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().any() and numeric.notna().sum() >= series.notna().sum():
        unit = "ms" if numeric.dropna().median() > 1e11 else "s"
        return pd.to_datetime(numeric, unit=unit, utc=True, errors="coerce")
    return pd.to_datetime(series.astype("string"), utc=True, errors="coerce", format="mixed")


def _time_range(df: pd.DataFrame) -> str | None:
    columns = [
        c
        for c in df.columns
        if isinstance(c, str)
        and ((c.startswith("env_") and _TIME_COLUMN.search(c[4:])) or c in _TOP_LEVEL_TIME)
    ]
    stamps = []
    for c in columns:
        try:
            t = _to_times(df[c]).dropna()
        except (ValueError, TypeError, OverflowError):  # unparsable stamps: leave them out
            continue
        if not t.empty:
            stamps.append(t)
    if not stamps:
        return None
    allt = pd.concat(stamps)
    fmt = "%Y-%m-%d %H:%M:%S UTC"
    lo, hi = allt.min().strftime(fmt), allt.max().strftime(fmt)
    return lo if lo == hi else f"{lo} – {hi}"


def _unreadable_rows(df: pd.DataFrame) -> str:
    """Header cell: how many lines of the results file(s) were skipped as unreadable, and which.

    ``df.attrs["unreadable_rows"]`` is set by :func:`evbench.harness.results.load`
    (torn fragments of an interrupted write, lines that are not JSON, JSON
    that is not an object).
    """
    bad = df.attrs.get("unreadable_rows") or []
    if not bad:
        return "none"
    items = "".join(f"<li><code>{esc(f'{b.path}:{b.line}')}</code> {esc(b.reason)}</li>" for b in bad[:20])
    more = f"<li>… {len(bad) - 20} more</li>" if len(bad) > 20 else ""
    return (f'<b class="bad">{len(bad)}</b> line(s) of the results file skipped (not counted as cells)'
            f"<ul>{items}{more}</ul>")


def header_section(df: pd.DataFrame, where: str, title: str, n_data_errors: int, first_screen: str = "") -> str:
    """Title, SYNTHETIC banner, the first-screen findings, run directory, cell counts, environment, dataset notes.

    Args:
        df: All rows of the run.
        where: Run directory (or description of the source) shown verbatim.
        title: Page title.
        n_data_errors: Number of distinct bad input files, linked to the failures section.
        first_screen: Built HTML placed right under the title and banner (the findings,
            :func:`evbench.reports.findings.findings_section`), above every table and plot.

    Returns:
        HTML fragment.
    """
    parts = [f"<h1>{esc(title)}</h1>"]
    synthetic = df[truthy_column(df, "dataset_synthetic")]
    if not synthetic.empty:
        names = ", ".join(distinct(synthetic, "dataset")) or "(unnamed)"
        parts.append(
            '<div class="banner synthetic">SYNTHETIC DATA — dataset(s) '
            f"{esc(names)} are generated (dataset_synthetic = true). Their accuracies test "
            "the harness and the methods' mechanics; they are not comparable with published "
            "numbers on real datasets.</div>"
        )
    if first_screen:
        parts.append(first_screen)
    status = (
        text_column(df, "status", "(no status)")
        if "status" in df.columns
        else pd.Series("ok", index=df.index)
    )
    n_ok = int((status == "ok").sum())
    n_bad = int(len(df) - n_ok)
    other = status[status != "ok"].value_counts()
    breakdown = ", ".join(f"{esc(k)}: {v}" for k, v in other.items())
    cells = f"{len(df)} cells: <b>{n_ok} ok</b>, "
    cells += f'<a href="#failures"><b>{n_bad} failed</b></a>' if n_bad else "0 failed"
    if breakdown:
        cells += f" ({breakdown})"
    meta = [
        ("Run directory", f"<code>{esc(where)}</code>"),
        ("Cells", cells),
        (
            "Data errors",
            f'<a href="#data-errors"><b>{n_data_errors}</b> bad input file(s)</a>'
            if n_data_errors
            else "none recorded",
        ),
        ("Unreadable rows", _unreadable_rows(df)),
    ]
    for column, name in ENV_SUMMARY:
        values = distinct(df, column)
        if not values:
            text = f'{MISSING} <span class="note">not recorded</span>'
        else:
            text = " | ".join(f"<code>{esc(v)}</code>" for v in values)
            if len(values) > 1:
                text += ' <span class="note">(differs between cells)</span>'
        meta.append((name, text))
    span = _time_range(df)
    meta.append(
        ("Time", esc(span) if span else f'{MISSING} <span class="note">not recorded</span>')
    )
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta.append(("Report generated", esc(now)))
    parts.append(
        "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in meta) + "</table>"
    )
    env_cols = sorted(c for c in df.columns if isinstance(c, str) and c.startswith("env_"))
    if env_cols:
        rows = []
        for c in env_cols:
            values = distinct(df, c)
            text = " | ".join(values[:5]) + (
                f" … (+{len(values) - 5} more)" if len(values) > 5 else ""
            )
            rows.append([td(c), td(text or None)])
        parts.append(
            "<details><summary>Full environment fingerprint (distinct values over all cells)"
            "</summary>" + html_table(["field", "value(s)"], rows) + "</details>"
        )
    notes = []
    if "dataset_note" in df.columns:
        for ds in distinct(df, "dataset") or [""]:
            sub = df[text_column(df, "dataset", "") == ds] if ds else df
            for note in distinct(sub, "dataset_note"):
                notes.append((ds, note))
    if notes:
        parts.append("<h3>Dataset notes</h3><ul>")
        for ds, note in notes:
            label = f"<b>{esc(ds)}</b>: " if ds else ""
            parts.append(f'<li>{label}<span class="pre">{esc(note)}</span></li>')
        parts.append("</ul>")
    if truthy_column(df, "modeled").any():
        parts.append(
            '<div class="banner warn">Some cells are <b>modeled</b> (device roofline model, '
            "not measured): hollow markers in plots, marked “modeled” in tables.</div>"
        )
    return "\n".join(parts)


# --------------------------------------------------------------------------- tables


def _display_id(column: str, value: Any) -> str:
    if column == "modeled":
        return "modeled" if truthy(value) else ""
    if is_missing(value):
        return MISSING
    return str(value)


def measurements_section(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The table of every measured number (one row per cell) and its unit legend.

    Args:
        df: All rows of the run.

    Returns:
        The HTML fragment and the same table unformatted (for ``results.csv``).
    """
    ids = [c for c in ID_COLUMNS if c in df.columns]
    nums = numeric_columns(df)
    header: list[str | tuple[str, str]] = [(c, "") for c in ids] + [
        (c, stored_unit(c)) for c in nums
    ]
    units: list[str | tuple[str, str]] = [""] * len(ids) + [
        (display_unit(c), stored_unit(c)) for c in nums
    ]
    order = [c for c in ("dataset", "method", "config", "gmacs_per_video") if c in df.columns]
    shown = df.sort_values(order, kind="stable", na_position="last") if order else df
    rows = []
    for _, row in shown.iterrows():
        r = [
            td("modeled" if truthy(row[c]) else "", raw=True)
            if c == "modeled"
            else td(_display_id(c, row[c]))
            for c in ids
        ]
        r += [num_td(c, row[c]) for c in nums]
        rows.append(r)
    table = html_table(header, rows, units=units, scroll=True)
    legend_rows = [[td(c), td(display_unit(c)), td(stored_unit(c)), td(shown_as(c))] for c in nums]
    unmeasured = [c for c in UNITS if c in df.columns and c not in nums]
    parts = [
        '<section id="measurements"><h2>Every measured number</h2>',
        "<p>One row per cell (failed cells included). Hover a header for its stored unit. "
        f"<b>{MISSING}</b> = {NOT_MEASURED} (the cell did not record this quantity). "
        "<code>results.csv</code> holds the same rows and columns, unformatted, in the stored "
        "units.</p>",
        table,
        '<h3 id="units">Units</h3>',
        html_table(
            ["column", "shown unit", "stored unit (evbench.harness.results.UNITS)", "shown as"], legend_rows
        ),
    ]
    if unmeasured:
        parts.append(
            f'<p class="note">Present but {NOT_MEASURED} in any cell: '
            + ", ".join(f"<code>{esc(c)}</code>" for c in unmeasured)
            + ".</p>"
        )
    parts.append("</section>")
    csv = shown[ids + nums].copy()
    return "\n".join(parts), csv


def data_errors_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every recorded data error, one row per (cell, bad file).

    Args:
        df: All rows of the run (column ``data_errors``: list of ``{"path", "error"}``).

    Returns:
        Columns ``path``, ``error``, ``cell_id``; empty when none.
    """
    records = []
    if "data_errors" not in df.columns:
        return pd.DataFrame(columns=["path", "error", "cell_id"])
    for _, row in df.iterrows():
        for item in parse_records(row["data_errors"]):
            if isinstance(item, dict):
                path, error = item.get("path"), item.get("error")
            else:
                path, error = None, item
            records.append(
                {
                    "path": MISSING if is_missing(path) else str(path),
                    "error": MISSING if is_missing(error) else str(error),
                    "cell_id": str(row.get("cell_id", cell_name(row))),
                }
            )
    return pd.DataFrame.from_records(records, columns=["path", "error", "cell_id"])


def failures_section(df: pd.DataFrame, errors: pd.DataFrame) -> str:
    """Failed cells with their error, then every bad input file with the cells it affected.

    Args:
        df: All rows of the run.
        errors: Output of :func:`data_errors_frame`.

    Returns:
        HTML fragment.
    """
    parts = ['<section id="failures"><h2>Failures</h2>']
    if "status" in df.columns:
        bad = df[text_column(df, "status", "") != "ok"]
    else:
        bad = df.iloc[0:0]
    if bad.empty:
        parts.append('<div class="banner okbox">No failed cells.</div>')
    else:
        cols = [
            c
            for c in ("cell_id", "method", "config", "dataset", "device", "status")
            if c in bad.columns
        ]
        rows = []
        for _, row in bad.iterrows():
            r = [td(_display_id(c, row[c])) for c in cols]
            err = row.get("error")
            r.append(
                td(None) if is_missing(err) else td(f'<pre class="err">{esc(err)}</pre>', raw=True)
            )
            rows.append(r)
        parts.append(f"<p>{len(bad)} cell(s) did not finish:</p>")
        parts.append(html_table(cols + ["error"], rows))
    parts.append('<h3 id="data-errors">Data errors (bad input files)</h3>')
    if errors.empty:
        parts.append('<p class="note">No data errors recorded.</p>')
    else:
        grouped = errors.groupby(["path", "error"], sort=True)["cell_id"].agg(list).reset_index()
        rows = []
        for _, g in grouped.iterrows():
            cells = list(dict.fromkeys(g["cell_id"]))
            shown = ", ".join(cells[:10]) + (f" … (+{len(cells) - 10})" if len(cells) > 10 else "")
            rows.append(
                [
                    td(f"<code>{esc(g['path'])}</code>", raw=True),
                    td(f'<pre class="err">{esc(g["error"])}</pre>', raw=True),
                    td(f"{len(cells)}: {shown}"),
                ]
            )
        parts.append(
            f'<div class="banner warn">{len(grouped)} bad input file(s) / error(s); the cells '
            "ran on without them.</div>"
        )
        parts.append(html_table(["path", "error", "cells affected"], rows))
    parts.append("</section>")
    return "\n".join(parts)


def per_file_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per-file decode records of every cell (column ``per_file``), flattened.

    Args:
        df: All rows of the run.

    Returns:
        Columns ``dataset``, ``cell_id``, ``id``, ``path``, ``frames``,
        ``decode_ms``; empty when no cell recorded them.
    """
    records = []
    if "per_file" not in df.columns:
        return pd.DataFrame()
    for _, row in df.iterrows():
        for item in parse_records(row["per_file"]):
            if not isinstance(item, dict):
                continue
            records.append(
                {
                    "dataset": row.get("dataset"),
                    "cell_id": row.get("cell_id"),
                    "id": item.get("id"),
                    "path": item.get("path"),
                    "frames": item.get("frames"),
                    "decode_ms": pd.to_numeric(
                        pd.Series([item.get("decode_ms")]), errors="coerce"
                    ).iloc[0],
                }
            )
    return pd.DataFrame.from_records(records)


def decode_section(files: pd.DataFrame) -> str:
    """Decode-time summary per dataset (mean, p50, p90, max) and the slowest files.

    Args:
        files: Output of :func:`per_file_frame` (non-empty).

    Returns:
        HTML fragment.
    """
    parts = ['<section id="decode"><h2>Per-file decode times</h2>']
    groups = text_column(files, "dataset", MISSING)
    rows = []
    for name, g in files.groupby(groups, sort=True):
        ms = g["decode_ms"].dropna()
        rows.append(
            [
                td(name),
                td(str(len(g)), cls="num"),
                td(str(len(ms)), cls="num"),
                num_td("decode_ms", ms.mean() if len(ms) else None),
                num_td("decode_ms", ms.median() if len(ms) else None),
                num_td("decode_ms", ms.quantile(0.9) if len(ms) else None),
                num_td("decode_ms", ms.max() if len(ms) else None),
            ]
        )
    parts.append(
        html_table(
            ["dataset", "files", "timed", "mean decode", "p50 decode", "p90 decode", "max decode"],
            rows,
            units=["", "", "", "ms", "ms", "ms", "ms"],
        )
    )
    ordered = files.sort_values("decode_ms", ascending=False, na_position="first")
    shown = ordered.head(_PER_FILE_ROWS_SHOWN)
    note = (
        f"All {len(files)} entries; slowest first."
        if len(files) <= _PER_FILE_ROWS_SHOWN
        else f"The {_PER_FILE_ROWS_SHOWN} slowest of {len(files)} entries (all in per_file.csv)."
    )
    parts.append(f'<p class="note">{note} Untimed files first: no decode time recorded.</p>')
    rows = [
        [
            td(_display_id("dataset", r["dataset"])),
            td(_display_id("cell_id", r["cell_id"])),
            td(_display_id("id", r["id"])),
            td(f"<code>{esc(r['path'])}</code>", raw=True)
            if not is_missing(r["path"])
            else td(None),
            num_td("frames_total", r["frames"]),
            num_td("decode_ms", r["decode_ms"]),
        ]
        for _, r in shown.iterrows()
    ]
    parts.append(
        html_table(
            ["dataset", "cell", "id", "path", "frames", "decode"],
            rows,
            units=["", "", "", "", "frames", "ms"],
            scroll=True,
        )
    )
    parts.append("</section>")
    return "\n".join(parts)
