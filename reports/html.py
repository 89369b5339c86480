"""The static HTML report: one self-contained page plus its figures and CSVs.

:func:`write_report` reads stored results only and writes into ``out_dir``::

    index.html      the page (no JavaScript; figures referenced beside it)
    *.png, *.svg    Pareto and decision-statistics figures
    results.csv     the measurement table as shown, unformatted, stored units
    frontier.csv    every frontier drawn (column ``frontier`` names the plot)
    units.csv       column -> stored unit -> how the page shows it
    per_file.csv    per-file decode times (only when a run recorded them)

Every string that comes from data is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evbench.harness.results import load
from evbench.reports._fields import (
    cell_name,
    is_missing,
    ok_rows,
    parse_mapping,
    text_column,
    truthy,
    truthy_column,
)
from evbench.reports._markup import CSS, NOT_MEASURED, esc, html_table, num_col, num_td, slug, td
from evbench.reports.claims import claims_section, find_claims
from evbench.reports.findings import findings_section, oracle_section, plot_series
from evbench.reports.format import (
    MISSING,
    display_unit,
    format_number,
    numeric_columns,
    shown_as,
    stored_unit,
)
from evbench.reports.modeled import find_validation, modeled_section
from evbench.reports.pareto import pareto_frontier
from evbench.reports.plots import plot_breakdown, plot_histograms, plot_pareto
from evbench.reports.sections import (
    ID_COLUMNS,
    data_errors_frame,
    decode_section,
    distinct,
    failures_section,
    header_section,
    measurements_section,
    per_file_frame,
)
from evbench.reports.training_curves import training_section

__all__ = ["write_report"]


def _has_pairs(df: pd.DataFrame, cost: str, quality: str) -> bool:
    return bool((np.isfinite(num_col(df, cost)) & np.isfinite(num_col(df, quality))).any())


def _load(results: str | os.PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(results, pd.DataFrame):
        runs = sorted({str(r) for r in results["run"].dropna()}) if "run" in results.columns else []
        where = "; ".join(runs) if runs else "(in-memory DataFrame)"
        return results.reset_index(drop=True), where
    try:
        return load(results).reset_index(drop=True), str(Path(results).resolve())
    except FileNotFoundError:
        # a folder holding only claim verdicts or the device model's validation still has a report
        base = Path(results)
        if base.is_dir() and (find_claims(base) is not None or find_validation(base) is not None):
            return pd.DataFrame(), str(base.resolve())
        raise


# --------------------------------------------------------------------------- datasets


@dataclass
class _PlotSpec:
    key: str
    cost: str
    title: str
    xlabel: str
    data: pd.DataFrame
    group: str
    device: str | None = None


def _dedupe_devices(df: pd.DataFrame, cost: str, quality: str) -> pd.DataFrame:
    """One point per model: the same cell measured on several devices has equal accuracy/GMACs."""
    if df.empty:
        return df.assign(_latency_text="")
    keys = [c for c in ("method", "config", "knobs", "overrides") if c in df.columns]
    cost_v, quality_v = num_col(df, cost).round(9), num_col(df, quality).round(9)
    key = pd.Series(
        [
            "|".join(
                [
                    *("" if is_missing(df.at[i, c]) else str(df.at[i, c]) for c in keys),
                    repr(cost_v[i]),
                    repr(quality_v[i]),
                ]
            )
            for i in df.index
        ],
        index=df.index,
        dtype=object,
    )
    texts: dict[Any, str] = {}
    devices: dict[Any, str] = {}
    for _, idx in key.groupby(key).groups.items():
        parts, devs = [], []
        for i in idx:
            dev = df.at[i, "device"] if "device" in df.columns else None
            if not is_missing(dev) and str(dev) not in devs:
                devs.append(str(dev))
            lat = (
                format_number("latency_ms_p50", df.at[i, "latency_ms_p50"])
                if "latency_ms_p50" in df.columns
                else MISSING
            )
            if lat == MISSING:
                continue
            tag = ", modeled" if "modeled" in df.columns and truthy(df.at[i, "modeled"]) else ""
            parts.append(f"{lat} ({dev}{tag})" if not is_missing(dev) else lat + tag)
        texts[idx[0]] = "; ".join(parts)
        devices[idx[0]] = ", ".join(devs)
    first = ~key.duplicated(keep="first")
    out = df[first].copy()
    out["_latency_text"] = [texts.get(i, "") for i in out.index]
    out["_devices"] = [devices.get(i, "") for i in out.index]
    return out


def _latency_text(row: pd.Series) -> str:
    if "_latency_text" in row.index and isinstance(row["_latency_text"], str):
        return row["_latency_text"] or MISSING
    lat = format_number("latency_ms_p50", row.get("latency_ms_p50"))
    if lat != MISSING and truthy(row.get("modeled")):
        lat += " (modeled)"
    return lat


def _quality_text(row: pd.Series, quality: str) -> str:
    value = format_number(quality, row.get(quality))
    if value == MISSING:
        return value
    lo = format_number(quality, row.get(f"{quality}_ci_low"))
    hi = format_number(quality, row.get(f"{quality}_ci_high"))
    if lo != MISSING and hi != MISSING:
        value += f" [{lo}–{hi}]"
    return value


def _knobs_html(row: pd.Series) -> str:
    parts = []
    for column in ("knobs", "overrides"):
        value = row.get(column)
        if is_missing(value) or (not parse_mapping(value) and str(value).strip() in {"{}", "null"}):
            continue
        prefix = "" if column == "knobs" else "overrides: "
        parts.append(f"{prefix}<code>{esc(value)}</code>")
    return "<br>".join(parts) if parts else MISSING


def _frontier_table(front: pd.DataFrame, quality: str, spec: _PlotSpec) -> str:
    header: list[str | tuple[str, str]] = [
        ("cell", "label of the cell"),
        "method",
        "config",
        ("knobs", "inference knobs (and construction overrides) of the operating point"),
        ("device(s)", "devices this model was measured on"),
        (f"{'top-1' if quality == 'top1' else quality} % [95 % CI]", stored_unit(quality)),
        ("GMACs / video", stored_unit("gmacs_per_video")),
        ("p50 latency ms (device)", stored_unit("latency_ms_p50")),
        ("frames used", stored_unit("frames_used")),
    ]
    extra = spec.cost not in {"gmacs_per_video", "latency_ms_p50", "frames_used"}
    if extra:
        header.append((f"{spec.cost} ({display_unit(spec.cost)})", stored_unit(spec.cost)))
    rows = []
    for _, row in front.iterrows():
        modeled = truthy(row.get("modeled"))
        r = [
            td(cell_name(row) + (" (modeled)" if modeled else "")),
            td(row.get("method")),
            td(row.get("config")),
            td(_knobs_html(row), raw=True),
            td(row.get("_devices") if isinstance(row.get("_devices"), str) else row.get("device")),
            td(_quality_text(row, quality), cls="num front"),
            num_td("gmacs_per_video", row.get("gmacs_per_video")),
            td(_latency_text(row), cls="num"),
            num_td("frames_used", row.get("frames_used")),
        ]
        if extra:
            r.append(num_td(spec.cost, row.get(spec.cost)))
        rows.append(r)
    return html_table(header, rows)


def _plot_specs(sub: pd.DataFrame, ds: str, quality: str) -> list[_PlotSpec]:
    qname = "top-1" if quality == "top1" else quality
    sub = sub.assign(_series=plot_series(sub))  # the method, split by build where it was built two ways
    specs = [
        _PlotSpec(
            "gmacs_per_video",
            "gmacs_per_video",
            f"{ds}: {qname} vs GMACs per video",
            "GMACs per video (mean over videos; 1 GMAC = 1e9 multiply-accumulates)",
            _dedupe_devices(sub, "gmacs_per_video", quality),
            "_series",
        )
    ]
    if "latency_ms_p50" not in sub.columns:
        specs.append(
            _PlotSpec(
                "latency_ms_p50",
                "latency_ms_p50",
                f"{ds}: {qname} vs p50 latency",
                "p50 latency (ms)",
                sub,
                "_series",
            )
        )
    else:
        devices = text_column(sub, "device", "(device not recorded)")
        for dev in dict.fromkeys(devices):
            data = sub[devices == dev].copy()
            if "backend" in data.columns and data["backend"].nunique(dropna=True) > 1:
                data["_series"] = (
                    text_column(data, "_series", "?")
                    + " ["
                    + text_column(data, "backend", "?")
                    + "]"
                )
            specs.append(
                _PlotSpec(
                    f"latency_ms_p50@{dev}",
                    "latency_ms_p50",
                    f"{ds}: {qname} vs p50 latency on {dev}",
                    f"p50 latency per clip, batch 1 single-stream (ms) — {dev}",
                    data,
                    "_series",
                    device=dev,
                )
            )
    specs.append(
        _PlotSpec(
            "frames_used",
            "frames_used",
            f"{ds}: {qname} vs frames used",
            "frames processed per video (mean)",
            _dedupe_devices(sub, "frames_used", quality),
            "_series",
        )
    )
    for col in numeric_columns(sub):
        if col.startswith("energy"):
            specs.append(
                _PlotSpec(
                    col,
                    col,
                    f"{ds}: {qname} vs {col}",
                    f"{col} ({display_unit(col)})",
                    sub,
                    "_series",
                )
            )
    return specs


def _auto_logx(values: pd.Series) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return bool(len(v) >= 2 and v.max() / v.min() >= 30)


def _dataset_section(
    df: pd.DataFrame, ds: str, k: int, out_dir: Path, frontiers: list[pd.DataFrame]
) -> str:
    sub = ok_rows(df)
    n_bad = len(df) - len(sub)
    synthetic = bool(truthy_column(df, "dataset_synthetic").any())
    tag = ' <span class="tag">SYNTHETIC</span>' if synthetic else ""
    parts = [f'<section id="ds-{k}"><h2>Dataset: {esc(ds)}{tag}</h2>']
    parts.append(
        f"<p>{len(sub)} cell(s) ok, {n_bad} failed"
        + (' (<a href="#failures">see failures</a>)' if n_bad else "")
        + ".</p>"
    )
    for note in distinct(df, "dataset_note"):
        parts.append(f'<p class="note pre">{esc(note)}</p>')
    quality = next((q for q in ("top1", "map") if np.isfinite(num_col(sub, q)).any()), None)
    if quality is None:
        parts.append("<p>No accuracy (top1 or map) measured for this dataset: no Pareto plots.</p>")
    else:
        qlabel = "top-1 accuracy (%)" if quality == "top1" else "mAP (%)"
        for j, spec in enumerate(_plot_specs(sub, ds, quality)):
            heading = spec.title.split(": ", 1)[1] if ": " in spec.title else spec.title
            parts.append(f"<h3>{esc(heading)}</h3>")
            if not _has_pairs(spec.data, spec.cost, quality):
                parts.append(
                    f'<p class="note">{esc(spec.cost)} {NOT_MEASURED} for any cell with '
                    f"{esc(quality)}.</p>"
                )
                continue
            stem = out_dir / f"ds{slug(ds, k)}_{slug(spec.key, j)}"
            paths = plot_pareto(
                spec.data,
                cost=spec.cost,
                quality=quality,
                group=spec.group,
                out_stem=stem,
                title=spec.title,
                xlabel=spec.xlabel,
                ylabel=qlabel,
                logx=_auto_logx(num_col(spec.data, spec.cost)),
                oracle=spec.cost == "gmacs_per_video",
            )
            png, svg = paths[0].name, paths[1].name
            with_oracle = spec.cost == "gmacs_per_video" and np.isfinite(
                num_col(spec.data, "oracle_gmacs_per_video")).any()
            oracle_caption = (
                " Stars and dotted verticals: the oracle bound per method family — the mean GMACs/video of "
                "the cheapest schedule in its action space that sees each test video's evidence at a "
                "sufficient resolution (generator manifest), drawn at the share of test videos whose evidence "
                "that action space can see (an upper bound for a perfect policy, not a measured top-1); "
                "dashed black: the oracle frontier over families." if with_oracle else "")
            parts.append(
                f'<figure><img src="{esc(png)}" alt="{esc(spec.title)}">'
                f"<figcaption>Points: finished cells; thin lines: each method's frontier; thick "
                f"grey line with rings: overall frontier; bars: 95 % CI; hollow: modeled.{oracle_caption} "
                f'<a href="{esc(png)}">PNG</a> · <a href="{esc(svg)}">SVG</a></figcaption>'
                "</figure>"
            )
            if spec.cost == "gmacs_per_video":
                parts.append(oracle_section(spec.data))
            front = pareto_frontier(spec.data, cost=spec.cost, quality=quality)
            parts.append(f"<p><b>Frontier</b> ({len(front)} of {len(spec.data)} points):</p>")
            parts.append(_frontier_table(front, quality, spec))
            keep = [c for c in (*ID_COLUMNS, *numeric_columns(df)) if c in front.columns]
            rec = front[keep].copy()
            rec.insert(0, "cost", num_col(front, spec.cost))
            rec.insert(0, "cost_column", spec.cost)
            rec.insert(0, "frontier", spec.key)
            rec.insert(0, "dataset_section", ds)
            frontiers.append(rec)
    bd_paths = plot_breakdown(sub, out_stem=out_dir / f"ds{slug(ds, k)}_latency_breakdown",
                              title=f"{ds}: where the latency goes")
    if bd_paths:
        png, svg = bd_paths[0].name, bd_paths[1].name
        parts.append("<h3>Latency breakdown per cell</h3>")
        parts.append(
            f'<figure><img src="{esc(png)}" alt="latency breakdown by module role">'
            "<figcaption>ms per clip (batch 1) inside each costed module role (outermost costed module "
            "only, forward hooks) and <i>other</i> (Python control flow, framework dispatch, the harness), over "
            "a separate set of hooked queries after the latency window; black tick: the unhooked p50. "
            "Streaming baselines run one frame per call (no batching across frames). "
            f'<a href="{esc(png)}">PNG</a> · <a href="{esc(svg)}">SVG</a></figcaption></figure>'
        )
    hist_paths = plot_histograms(sub, out_stem=out_dir / f"ds{slug(ds, k)}_decisions", title=ds)
    pngs = [p for p in hist_paths if p.suffix == ".png"]
    if pngs:
        parts.append("<h3>Decision statistics</h3>")
        for png in pngs:
            svg = png.with_suffix(".svg").name
            parts.append(
                f'<figure><img src="{esc(png.name)}" alt="decision histogram">'
                f"<figcaption>Share of decisions per cell (count above each bar). "
                f'<a href="{esc(png.name)}">PNG</a> · <a href="{esc(svg)}">SVG</a>'
                "</figcaption></figure>"
            )
    parts.append("</section>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- page


def write_report(
    results: str | os.PathLike[str] | pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    title: str = "evbench report",
) -> Path:
    """Render the static HTML report of a run.

    Args:
        results: A run directory / ``results.jsonl`` / folder of runs (read with
            ``evbench.harness.results.load``), or an already loaded DataFrame.
        out_dir: Folder for ``index.html``, figures and CSVs (created).
        title: Page title.

    Returns:
        Path of ``out_dir/index.html``.

    Raises:
        FileNotFoundError: If ``results`` is a path holding no results file
            (nor ``claims.jsonl`` / a device-model validation to show).
    """
    df, where = _load(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    errors = data_errors_frame(df)
    n_bad_files = (
        int(errors[["path", "error"]].drop_duplicates().shape[0]) if not errors.empty else 0
    )
    body = [header_section(df, where, title, n_bad_files, first_screen=findings_section(df))]
    if df.empty:
        body.append("<p>The run holds no result rows.</p>")

    datasets = text_column(df, "dataset", "(dataset not recorded)")
    names = list(dict.fromkeys(datasets))
    nav = [f'<li><a href="#ds-{k}">Dataset: {esc(ds)}</a></li>' for k, ds in enumerate(names)]
    nav += [
        '<li><a href="#measurements">Every measured number</a> (<a href="#units">units</a>)</li>',
        '<li><a href="#failures">Failures</a> · <a href="#data-errors">data errors</a></li>',
    ]
    files = per_file_frame(df)
    if not files.empty:
        nav.append('<li><a href="#decode">Per-file decode times</a></li>')
    modeled_html, claims_html = modeled_section(results), claims_section(results)
    if modeled_html:
        nav.append('<li><a href="#modeled">Modeled devices: validation</a></li>')
    if claims_html:
        nav.append('<li><a href="#claims">Published claims</a></li>')
    training_html = training_section(df, where, out)  # evbench.reports.training_curves
    if training_html:
        nav.append('<li><a href="#training">Training curves</a></li>')
    if (out / "trends" / "index.html").is_file():  # evbench report --history DIR
        nav.append('<li><a href="trends/index.html">Trends over the run history</a></li>')
    body.append("<nav><h3>Contents</h3><ul>" + "".join(nav) + "</ul></nav>")

    frontiers: list[pd.DataFrame] = []
    for k, ds in enumerate(names):
        body.append(_dataset_section(df[datasets == ds], ds, k, out, frontiers))

    body.append(training_html)
    table_html, flat = measurements_section(df)
    body.append(table_html)
    body.append(failures_section(df, errors))
    body.append(modeled_html)
    body.append(claims_html)
    if not files.empty:
        body.append(decode_section(files))
        files.to_csv(out / "per_file.csv", index=False)

    flat.to_csv(out / "results.csv", index=False)
    frontier = (
        pd.concat(frontiers, ignore_index=True)
        if frontiers
        else pd.DataFrame(columns=["dataset_section", "frontier", "cost_column", "cost"])
    )
    frontier.to_csv(out / "frontier.csv", index=False)
    measured = set(numeric_columns(df))
    units = pd.DataFrame(
        {
            "column": flat.columns,
            "stored_unit": [stored_unit(c) if c in measured else "" for c in flat.columns],
            "shown_unit": [display_unit(c) if c in measured else "" for c in flat.columns],
            "shown_as": [shown_as(c) if c in measured else "" for c in flat.columns],
        }
    )
    units.to_csv(out / "units.csv", index=False)

    csvs = ["results.csv", "frontier.csv", "units.csv"] + (
        ["per_file.csv"] if not files.empty else []
    )
    body.append(
        "<footer><h2>Files</h2><p>"
        + " · ".join(f'<a href="{c}">{c}</a>' for c in csvs)
        + '</p><p class="note">Generated by evbench reports from stored results only.</p></footer>'
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    index = out / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, index)
    return index
