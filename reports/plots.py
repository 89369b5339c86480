"""Pareto and decision-statistics plots (PNG + SVG) from a results table.

Matplotlib is used through :class:`matplotlib.figure.Figure` objects with the
Agg canvas only, so nothing touches ``pyplot``'s global figure registry and a
report can be rendered from a server or a test without a display.  Failed cells
(``status != "ok"``) are never drawn: their numbers are not results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from evbench.harness.results import UNITS
from evbench.reports._fields import (
    cell_name,
    is_missing,
    ok_rows,
    op_label,
    parse_mapping,
    text_column,
    truthy_column,
)
from evbench.reports.pareto import pareto_frontier
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = ["ORACLE_LABEL", "draw_oracle", "oracle_points", "plot_breakdown", "plot_histograms", "plot_pareto"]

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
_DPI = 150


def _mpl(text: object) -> str:
    """Text safe for matplotlib: ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _colour(i: int) -> tuple[float, float, float, float]:
    cmap = colormaps["tab10"] if i < 10 else colormaps["tab20"]
    return cmap(i % cmap.N)


def _synthetic(df: pd.DataFrame) -> bool:
    return bool(truthy_column(df, "dataset_synthetic").any())


def _save(fig: Figure, out_stem: Path) -> list[Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    png = out_stem.with_name(out_stem.name + ".png")
    svg = out_stem.with_name(out_stem.name + ".svg")
    fig.savefig(png, dpi=_DPI)
    fig.savefig(svg, metadata={"Date": None})
    return [png, svg]


def _title(title: str, synthetic: bool) -> str:
    return f"SYNTHETIC DATA — {title}" if synthetic else title


def plot_pareto(
    df: pd.DataFrame,
    *,
    cost: str,
    quality: str,
    group: str = "method",
    out_stem: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    percent: bool | None = None,
    oracle: bool = False,
) -> list[Path]:
    """Draw quality against cost, one marker/colour per group, with frontiers.

    Every finished cell with a finite ``cost`` and ``quality`` is a point,
    annotated with its operating point (knobs/overrides, else frames used).
    Each group's own frontier is a thin line in its colour; the frontier over
    all groups is a thick grey line with ringed points.  Cells whose
    ``modeled`` column is true (numbers from a device model, not a measurement)
    are drawn hollow and annotated ``(modeled)``.  When ``quality`` has
    ``<quality>_ci_low``/``_ci_high`` columns they are drawn as error bars.  The
    title starts with ``SYNTHETIC DATA`` when any row has ``dataset_synthetic``.

    Args:
        df: Results table.
        cost: Column for the x axis (lower is better).
        quality: Column for the y axis (higher is better).
        group: Column whose values define series (absent: one series).
        out_stem: Output path without suffix; ``.png`` and ``.svg`` are written.
        title: Figure title.
        xlabel: X axis label.
        ylabel: Y axis label.
        logx: Logarithmic x axis.
        percent: Multiply quality by 100 for display; ``None`` decides from
            ``evbench.harness.results.UNITS`` (fractions are shown as percent).
        oracle: Also draw the oracle bound (:func:`draw_oracle`) where rows carry
            ``oracle_gmacs_per_video`` (the generated dataset; ``cost`` must be
            ``gmacs_per_video``).

    Returns:
        The written ``[png, svg]`` paths.  With no drawable point the figure
        says so instead of failing.
    """
    if percent is None:
        percent = UNITS.get(quality, "").startswith("fraction")
    scale = 100.0 if percent else 1.0
    data = ok_rows(df).reset_index(drop=True)
    if cost in data.columns and quality in data.columns:
        x_all = pd.to_numeric(data[cost], errors="coerce")
        y_all = pd.to_numeric(data[quality], errors="coerce")
        data = data[np.isfinite(x_all) & np.isfinite(y_all)]
    else:
        data = data.iloc[0:0]
    if logx and cost in data.columns:
        data = data[pd.to_numeric(data[cost], errors="coerce") > 0]

    fig = Figure(figsize=(9.0, 5.4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(
        _mpl(_title(title, _synthetic(df))),
        fontsize=11,
        color="firebrick" if _synthetic(df) else "black",
    )
    ax.set_xlabel(_mpl(xlabel))
    ax.set_ylabel(_mpl(ylabel))
    ax.grid(True, alpha=0.3, linewidth=0.6)
    if data.empty:
        ax.text(
            0.5,
            0.5,
            "no cell has both values measured",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="grey",
        )
        return _save(fig, out_stem)

    groups = text_column(data, group, "(none)" if group in data.columns else "all")
    modeled = truthy_column(data, "modeled")
    lo_col, hi_col = f"{quality}_ci_low", f"{quality}_ci_high"
    handles: list[Line2D] = []
    colours: dict[str, tuple[float, float, float, float]] = {}
    for i, name in enumerate(sorted(groups.unique())):
        sub = data[groups == name]
        colour = _colour(i)
        colours[name] = colour
        marker = _MARKERS[i % len(_MARKERS)]
        x = pd.to_numeric(sub[cost], errors="coerce").to_numpy(float)
        y = pd.to_numeric(sub[quality], errors="coerce").to_numpy(float) * scale
        if lo_col in sub.columns and hi_col in sub.columns:
            lo = pd.to_numeric(sub[lo_col], errors="coerce").to_numpy(float) * scale
            hi = pd.to_numeric(sub[hi_col], errors="coerce").to_numpy(float) * scale
            err = np.vstack([np.nan_to_num(y - lo).clip(0), np.nan_to_num(hi - y).clip(0)])
            if err.any():
                ax.errorbar(
                    x, y, yerr=err, fmt="none", ecolor=colour, alpha=0.45, elinewidth=0.8, zorder=2
                )
        hollow = modeled[sub.index].to_numpy(bool)
        if (~hollow).any():
            ax.scatter(
                x[~hollow],
                y[~hollow],
                marker=marker,
                s=38,
                color=colour,
                edgecolors=colour,
                linewidths=1.0,
                zorder=4,
            )
        if hollow.any():
            ax.scatter(
                x[hollow],
                y[hollow],
                marker=marker,
                s=38,
                facecolors="none",
                edgecolors=colour,
                linewidths=1.3,
                zorder=4,
            )
        front = pareto_frontier(sub, cost=cost, quality=quality)
        if len(front) >= 2:
            ax.plot(
                pd.to_numeric(front[cost]).to_numpy(float),
                pd.to_numeric(front[quality]).to_numpy(float) * scale,
                color=colour,
                linewidth=1.0,
                alpha=0.8,
                zorder=3,
            )
        for (_, row), xi, yi, h in zip(sub.iterrows(), x, y, hollow, strict=True):
            text = op_label(row)
            if h:
                text = f"{text} (modeled)".strip()
            if text:
                ax.annotate(
                    _mpl(text),
                    (xi, yi),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=6.5,
                    color=colour,
                    zorder=5,
                )
        handles.append(
            Line2D(
                [], [], color=colour, marker=marker, linewidth=1.0, markersize=6, label=_mpl(name)
            )
        )

    overall = pareto_frontier(data, cost=cost, quality=quality)
    fx = pd.to_numeric(overall[cost]).to_numpy(float)
    fy = pd.to_numeric(overall[quality]).to_numpy(float) * scale
    ax.plot(fx, fy, color="black", linewidth=4.0, alpha=0.18, zorder=1, solid_capstyle="round")
    ax.scatter(
        fx, fy, s=130, facecolors="none", edgecolors="black", linewidths=0.8, alpha=0.7, zorder=3
    )
    handles.append(
        Line2D(
            [],
            [],
            color="black",
            linewidth=4.0,
            alpha=0.25,
            marker="o",
            markerfacecolor="none",
            markersize=9,
            label="overall frontier",
        )
    )
    if modeled.any():
        handles.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="o",
                markerfacecolor="none",
                linestyle="none",
                label="modeled (not measured)",
            )
        )
    if oracle and cost == "gmacs_per_video":
        handles += draw_oracle(ax, data, groups, colours, scale)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.08, y=0.06)
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    return _save(fig, out_stem)


#: Legend text of the oracle markers (what the y value of an oracle point is — not a measured accuracy).
ORACLE_LABEL = "oracle per family (x: GMACs/video; y: share of\nvideos whose evidence it sees, not a top-1)"


def oracle_points(data: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
    """One oracle point per (series, method, config): ``x`` = oracle GMACs/video, ``y`` = evidence fraction.

    Args:
        data: Result rows with ``oracle_gmacs_per_video`` and ``oracle_evidence_fraction``.
        groups: Series label per row (default: ``method``).

    Returns:
        Columns ``group``, ``method``, ``config``, ``x``, ``y`` (fraction 0-1),
        ``measured_best`` (the cheapest measured GMACs/video of those rows);
        empty when no row carries the oracle columns.
    """
    cols = ("oracle_gmacs_per_video", "oracle_evidence_fraction")
    if data.empty or any(c not in data.columns for c in cols):
        return pd.DataFrame(columns=["group", "method", "config", "x", "y", "measured_best"])
    x = pd.to_numeric(data[cols[0]], errors="coerce")
    y = pd.to_numeric(data[cols[1]], errors="coerce")
    ok = np.isfinite(x) & np.isfinite(y)
    g = groups if groups is not None else text_column(data, "method", "?")
    tab = pd.DataFrame({
        "group": g[ok].astype(str), "method": text_column(data, "method", "?")[ok],
        "config": text_column(data, "config", "")[ok], "x": x[ok], "y": y[ok],
        "measured": pd.to_numeric(data.loc[ok, "gmacs_per_video"], errors="coerce")
        if "gmacs_per_video" in data.columns else np.nan,
    })
    if tab.empty:
        return tab.assign(measured_best=[]).drop(columns="measured")
    out = tab.groupby(["group", "method", "config"], sort=True).agg(
        x=("x", "mean"), y=("y", "mean"), measured_best=("measured", "min")).reset_index()
    return out


def draw_oracle(ax: object, data: pd.DataFrame, groups: pd.Series, colours: dict, scale: float) -> list[Line2D]:
    """Draw the oracle bound on a quality-vs-GMACs axis; return its legend handles.

    Per series, a star at (oracle GMACs/video, share of test videos whose
    evidence the family's action space can see × ``scale``) and a dotted
    vertical line at its x (no policy of that action space can, on average,
    see the evidence for less); the oracle frontier over all series (the
    non-dominated stars) is a dashed black step line.  The star's y is not a
    measured accuracy: it is what a perfect policy could see
    (:mod:`evbench.harness.oracle`).

    Returns:
        Legend handles (empty when no row carries the oracle columns).
    """
    pts = oracle_points(data, groups)
    if pts.empty:
        return []
    clusters: list[list] = []  # one label per cluster of nearby stars (e.g. the uniform variants)
    for _, p in pts.sort_values("x").iterrows():
        colour = colours.get(p["group"], "black")
        ax.axvline(p["x"], color=colour, linestyle=":", linewidth=1.0, alpha=0.7, zorder=1)
        ax.scatter([p["x"]], [p["y"] * scale], marker="*", s=170, color=colour, edgecolors="black",
                   linewidths=0.7, zorder=6)
        x, y = float(p["x"]), float(p["y"])
        if clusters and x <= clusters[-1][0] * 1.08 and abs(y - clusters[-1][1]) < 0.03:
            clusters[-1][2].append(str(p["group"]))
        else:
            clusters.append([x, y, [str(p["group"])]])
    for x, y, names in clusters:
        ax.annotate(_mpl("oracle " + ", ".join(names)), (x, y * scale), xytext=(5, -9),
                    textcoords="offset points", fontsize=6.5, color="black", zorder=6)
    front = pareto_frontier(pts, cost="x", quality="y")
    fx, fy = front["x"].to_numpy(float), front["y"].to_numpy(float) * scale
    if len(front):
        right = max(float(np.nanmax(pd.to_numeric(data["gmacs_per_video"], errors="coerce"))), fx[-1]) \
            if "gmacs_per_video" in data.columns else fx[-1]
        ax.step(np.r_[fx, right], np.r_[fy, fy[-1]], where="post", color="black", linestyle="--", linewidth=1.2,
                alpha=0.8, zorder=2)
    return [
        Line2D([], [], color="grey", marker="*", markersize=11, markeredgecolor="black", linestyle=":",
               label=_mpl(ORACLE_LABEL)),
        Line2D([], [], color="black", linestyle="--", linewidth=1.2, label="oracle frontier (over families)"),
    ]


def _ordered_keys(hists: Sequence[dict[str, float]]) -> list[str]:
    keys: list[str] = []
    for h in hists:
        for k in h:
            if k not in keys:
                keys.append(k)
    try:
        return sorted(keys, key=float)
    except ValueError:
        return keys


def plot_histograms(
    df: pd.DataFrame,
    *,
    out_stem: Path,
    title: str,
    columns: Sequence[str] = ("resolution_hist", "exit_hist"),
    max_cells: int = 48,
) -> list[Path]:
    """Bar charts of decision statistics, one small panel per cell.

    For each of ``columns`` present (dict-valued: decision label -> count, dicts
    or JSON strings) one figure is written, ``<out_stem>_<column>.png/.svg``,
    with a panel per finished cell showing the share of each decision and its
    count.  Bars line up across panels (one shared, numerically sorted label
    order) so cells can be compared.  Absent or empty columns are skipped
    silently.

    Args:
        df: Results table.
        out_stem: Output path stem; the column name is appended.
        title: Figure title prefix (the column name is added).
        columns: Histogram columns to draw.
        max_cells: At most this many panels per figure (the title says when
            cells were left out).

    Returns:
        Written paths (PNG and SVG per figure); empty when nothing to draw.
    """
    data = ok_rows(df).reset_index(drop=True)
    written: list[Path] = []
    synthetic = _synthetic(df)
    for column in columns:
        if column not in data.columns:
            continue
        cells: list[tuple[str, dict[str, float]]] = []
        several_devices = text_column(data, "device", "").nunique() > 1
        for _, row in data.iterrows():
            raw = parse_mapping(row[column])
            hist: dict[str, float] = {}
            for k, v in raw.items():
                try:
                    value = float(v)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(value):
                    hist[k] = value
            if hist and sum(hist.values()) > 0:
                name = cell_name(row)
                if several_devices and not is_missing(row.get("device")):
                    name += f" @ {row['device']}"
                cells.append((name, hist))
        if not cells:
            continue
        omitted = max(0, len(cells) - max_cells)
        cells = cells[:max_cells]
        keys = _ordered_keys([h for _, h in cells])
        ncols = min(4, len(cells))
        nrows = math.ceil(len(cells) / ncols)
        fig = Figure(figsize=(3.3 * ncols, 2.5 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        heading = f"{title}: {column}"
        if omitted:
            heading += f" (first {max_cells} cells; {omitted} more in results.csv)"
        fig.suptitle(
            _mpl(_title(heading, synthetic)),
            fontsize=11,
            color="firebrick" if synthetic else "black",
        )
        pos = np.arange(len(keys))
        for ax, (name, hist) in zip(axes.flat, cells, strict=False):
            total = sum(hist.values())
            counts = np.array([hist.get(k, 0.0) for k in keys])
            ax.bar(pos, counts / total, color="tab:blue", alpha=0.8)
            for p, c in zip(pos, counts, strict=True):
                if c:
                    ax.text(p, c / total, f"{c:g}", ha="center", va="bottom", fontsize=6.5)
            ax.set_xticks(
                pos, [_mpl(k) for k in keys], fontsize=7, rotation=45 if len(keys) > 5 else 0
            )
            ax.set_ylim(0, 1.15)
            short = name if len(name) <= 38 else name[:37] + "…"
            ax.set_title(_mpl(f"{short}\nn={total:g}"), fontsize=7.5)
            ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
        for ax in axes.flat[len(cells) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("share of decisions", fontsize=8)
        stem = Path(out_stem)
        written += _save(fig, stem.with_name(f"{stem.name}_{column}"))
    return written


#: Stacking order of the latency breakdown's roles (others follow alphabetically, ``other`` last).
_ROLE_ORDER = ("input", "policy", "backbone", "head")
_ROLE_COLOURS = {"input": "tab:purple", "policy": "tab:orange", "backbone": "tab:blue", "head": "tab:green",
                 "other": "lightgrey"}


def plot_breakdown(
    df: pd.DataFrame,
    *,
    out_stem: Path,
    title: str,
    column: str = "latency_breakdown_ms",
    max_cells: int = 60,
) -> list[Path]:
    """Stacked horizontal bars: per finished cell, ms per clip in each costed module role and ``other``.

    ``latency_breakdown_ms`` (role -> ms per clip, dict or JSON string; see
    :mod:`evbench.harness.breakdown`) comes from a separate set of hooked
    batch-1 queries; each bar is labelled with the cell and, when measured,
    its unhooked p50 (``latency_ms_p50``) is drawn as a black tick for
    comparison.  Cells are grouped by device (one bar label suffix per device
    when several).

    Args:
        df: Results table.
        out_stem: Output path without suffix; ``.png`` and ``.svg`` are written.
        title: Figure title.
        column: The breakdown column.
        max_cells: At most this many bars (the title says when cells were left out).

    Returns:
        The written ``[png, svg]`` paths; empty when no cell has a breakdown.
    """
    data = ok_rows(df).reset_index(drop=True)
    if column not in data.columns:
        return []
    several_devices = text_column(data, "device", "").nunique() > 1
    cells: list[tuple[str, dict[str, float], float]] = []
    for _, row in data.iterrows():
        parts: dict[str, float] = {}
        for k, v in parse_mapping(row[column]).items():
            try:
                value = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                parts[str(k)] = max(value, 0.0)
        if not parts or sum(parts.values()) <= 0:
            continue
        name = cell_name(row)
        if several_devices and not is_missing(row.get("device")):
            name += f" @ {row['device']}"
        p50 = pd.to_numeric(pd.Series([row.get("latency_ms_p50")]), errors="coerce").iloc[0]
        cells.append((name, parts, float(p50) if np.isfinite(p50) else math.nan))
    if not cells:
        return []
    omitted = max(0, len(cells) - max_cells)
    cells = cells[:max_cells]
    roles = sorted({r for _, p, _ in cells for r in p},
                   key=lambda r: (r == "other", _ROLE_ORDER.index(r) if r in _ROLE_ORDER else len(_ROLE_ORDER), r))
    synthetic = _synthetic(df)
    fig = Figure(figsize=(10.0, 1.2 + 0.28 * len(cells)), layout="constrained")
    ax = fig.add_subplot()
    heading = title + (f" (first {max_cells} cells; {omitted} more in results.csv)" if omitted else "")
    ax.set_title(_mpl(_title(heading, synthetic)), fontsize=11, color="firebrick" if synthetic else "black")
    pos = np.arange(len(cells))
    left = np.zeros(len(cells))
    extra = 0
    for role in roles:
        width = np.array([p.get(role, 0.0) for _, p, _ in cells])
        colour = _ROLE_COLOURS.get(role)
        if colour is None:
            colour = _colour(5 + extra)
            extra += 1
        ax.barh(pos, width, left=left, color=colour, edgecolor="white", linewidth=0.4, label=_mpl(role))
        left += width
    p50 = np.array([c[2] for c in cells])
    if np.isfinite(p50).any():
        ax.scatter(p50, pos, marker="|", s=160, color="black", zorder=5, label="p50 (unhooked)")
    ax.set_yticks(pos, [_mpl(n if len(n) <= 44 else n[:43] + "…") for n, _, _ in cells], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms per clip, batch 1 (hooked queries; parts sum to their mean)")
    ax.grid(True, axis="x", alpha=0.3, linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _save(fig, Path(out_stem))
