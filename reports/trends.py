"""Trend pages of a run history: per dataset, every cell's p50 latency, top-1 and GMACs over the nights.

``write_trends(HISTORY, OUT)`` writes ``OUT/index.html`` (one link per dataset)
and ``OUT/<dataset>.html`` pages, with one figure per (cell, machine key)
series in ``OUT/fig/`` as PNG + SVG:

* top panel — p50 latency (ms) per run, with the p50–p90 band shaded; noisy
  timing windows drawn hollow (and left out of step detection unless asked);
* middle — top-1 (fraction 0-1) with its 95 % bootstrap interval, when measured;
* bottom — GMACs per video (exact; any step is a cost change).

Steps found by :func:`evbench.harness.changepoints.detect_changes` are drawn as
dashed vertical lines labelled with the first run's short commit, and listed
in a table whose commit links go to ``commit_url`` (a template with
``{commit}``, e.g. ``https://example.org/evbench/commit/{commit}``) or, without
one, to the page's table of runs.  The latest night comes first: the cells of
the newest run compared (:func:`evbench.harness.compare.compare`) with the
previous run that shares cells on the same machine key, regressions on top.

Reports read only stored results (the history database), never live models.
Every string from data is escaped (:func:`evbench.reports._markup.esc`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evbench.harness.changepoints import detect_changes
from evbench.harness.compare import CompareSettings, compare
from evbench.harness.history import History
from evbench.reports._markup import CSS, esc, html_table, slug, td
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["latest_comparison", "write_trends"]

_DPI = 110
_METRIC_TITLE = {"latency_ms_p50": "p50 latency (ms)", "top1": "top-1 (0-1)", "gmacs_per_video": "GMACs/video"}


def _mpl(text: object) -> str:
    return str(text).replace("$", r"\$")


def _short(commit: Any) -> str:
    return str(commit)[:8] if isinstance(commit, str) and commit else "?"


def _commit_link(commit: Any, commit_url: str | None) -> str:
    if not isinstance(commit, str) or not commit:
        return td("commit not recorded")
    sha = commit.removesuffix("-dirty")
    href = commit_url.format(commit=sha) if commit_url else f"index.html#commit-{sha}"
    return td(f'<a href="{esc(href)}"><code>{esc(_short(commit))}</code></a>'
              + (" (dirty)" if commit.endswith("-dirty") else ""), raw=True)


def latest_comparison(hist: pd.DataFrame, root: str | os.PathLike[str],
                      settings: CompareSettings | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The newest run compared with the previous run sharing at least one (cell id, machine key).

    Returns:
        ``(result, info)``: :func:`evbench.harness.compare.compare`'s frame
        restricted to the cells present in the newest run (empty when there is
        no earlier comparable run) and ``{"new": run_id, "base": run_id|None}``.
    """
    if hist.empty:
        return pd.DataFrame(), {"new": None, "base": None}
    runs = hist.drop_duplicates("run_id")[["run_id", "run_time", "run_added"]].sort_values(["run_time", "run_added"])
    new_id = runs["run_id"].iloc[-1]
    keys = set(zip(hist.loc[hist["run_id"] == new_id, "cell_id"], hist.loc[hist["run_id"] == new_id, "machine_key"], strict=False))
    base_id = None
    for rid in reversed(runs["run_id"].iloc[:-1].tolist()):
        sub = hist[hist["run_id"] == rid]
        if keys & set(zip(sub["cell_id"], sub["machine_key"], strict=False)):
            base_id = rid
            break
    if base_id is None:
        return pd.DataFrame(), {"new": new_id, "base": None}
    with History(root, read_only=True) as h:
        base, new = h.run(base_id), h.run(new_id)
    result = compare(base, new, settings or CompareSettings())
    result = result[~result["verdict"].eq("not comparable (only in BASE)")].reset_index(drop=True)
    return result, {"new": new_id, "base": base_id}


def _figure(g: pd.DataFrame, x: np.ndarray, ticks: tuple[list[int], list[str]], steps: pd.DataFrame,
            title: str, out_stem: Path) -> list[Path]:
    fig = Figure(figsize=(9, 6.4))
    axes = fig.subplots(3, 1, sharex=True)
    p50 = pd.to_numeric(g.get("latency_ms_p50"), errors="coerce").to_numpy(dtype=float) \
        if "latency_ms_p50" in g else np.full(len(g), np.nan)
    p90 = pd.to_numeric(g.get("latency_ms_p90"), errors="coerce").to_numpy(dtype=float) \
        if "latency_ms_p90" in g else np.full(len(g), np.nan)
    noisy = g["noisy"].fillna(False).astype(bool).to_numpy() if "noisy" in g else np.zeros(len(g), bool)
    ax = axes[0]
    if np.isfinite(p50).any():
        ax.fill_between(x, p50, np.where(np.isfinite(p90), p90, p50), color="tab:blue", alpha=0.2, label="p50–p90")
        ax.plot(x, p50, "-", color="tab:blue", lw=1)
        ax.plot(x[~noisy], p50[~noisy], "o", color="tab:blue", ms=4, label="p50")
        if noisy.any():
            ax.plot(x[noisy], p50[noisy], "o", mfc="none", mec="tab:red", ms=6, label="p50 (noisy window)")
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "latency not measured", transform=ax.transAxes, ha="center", color="#888")
    ax.set_ylabel("p50 latency, ms")
    ax = axes[1]
    top1 = pd.to_numeric(g["top1"], errors="coerce").to_numpy(dtype=float) if "top1" in g else np.full(len(g), np.nan)
    if np.isfinite(top1).any():
        lo = pd.to_numeric(g.get("top1_ci_low"), errors="coerce").to_numpy(dtype=float) if "top1_ci_low" in g else top1
        hi = pd.to_numeric(g.get("top1_ci_high"), errors="coerce").to_numpy(dtype=float) if "top1_ci_high" in g else top1
        err = np.vstack([np.nan_to_num(top1 - lo), np.nan_to_num(hi - top1)])
        ax.errorbar(x, top1, yerr=err, fmt="o-", color="tab:green", ms=4, lw=1, capsize=2)
    else:
        ax.text(0.5, 0.5, "top-1 not measured", transform=ax.transAxes, ha="center", color="#888")
    ax.set_ylabel("top-1 (0-1)")
    ax = axes[2]
    gm = pd.to_numeric(g["gmacs_per_video"], errors="coerce").to_numpy(dtype=float) \
        if "gmacs_per_video" in g else np.full(len(g), np.nan)
    if np.isfinite(gm).any():
        ax.plot(x, gm, "o-", color="tab:purple", ms=4, lw=1, drawstyle="steps-post")
    ax.set_ylabel("GMACs/video")
    ax.set_xlabel("night (run), oldest first")
    metric_ax = {"latency_ms_p50": axes[0], "top1": axes[1], "gmacs_per_video": axes[2]}
    for st in steps.itertuples():
        a = metric_ax.get(st.metric)
        if a is None:
            continue
        xs = x[int(st.position)]
        a.axvline(xs - 0.5, color="tab:red", ls="--", lw=1.2)
        a.annotate(_mpl(f"step {st.rel_change * 100:+.1f} % @ {_short(st.commit)}"), (xs - 0.5, 1.0),
                   xycoords=("data", "axes fraction"), fontsize=7, color="tab:red", va="top", ha="left",
                   xytext=(3, -3), textcoords="offset points")
    axes[2].set_xticks(ticks[0], ticks[1], rotation=45, ha="right", fontsize=7)
    fig.suptitle(_mpl(title), fontsize=10)
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    png, svg = out_stem.with_name(out_stem.name + ".png"), out_stem.with_name(out_stem.name + ".svg")
    fig.savefig(png, dpi=_DPI)
    fig.savefig(svg, metadata={"Date": None})
    return [png, svg]


def _fmt(v: Any, spec: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "—"
    return format(x, spec) if math.isfinite(x) else "—"


def _latest_html(result: pd.DataFrame, info: dict[str, Any], runs: pd.DataFrame, dataset: str | None) -> str:
    if info.get("base") is None:
        return ("<h2 id=\"latest\">Latest night</h2><p class=\"note\">No earlier run shares cells on the same machine "
                "key: nothing to compare with yet.</p>")
    sub = result if dataset is None else result[result["dataset"].fillna("") == dataset]
    t = {r.run_id: r.run_time for r in runs.itertuples()}
    head = (f'<h2 id="latest">Latest night</h2><p>Run <code>{esc(info["new"])}</code> ({esc(t.get(info["new"]))}) '
            f'compared with <code>{esc(info["base"])}</code> ({esc(t.get(info["base"]))}).</p>')
    if sub.empty:
        return head + "<p>No cell of this dataset in the latest run.</p>"
    n_reg = int(sub["regression"].sum())
    head += (f'<p class="banner {"synthetic" if n_reg else "okbox"}">{n_reg} regression(s) among {len(sub)} cells; '
             f'{int((sub["verdict"] == "no change").sum())} with no change.</p>')
    rows = []
    for r in sub.itertuples():
        rows.append([
            td(r.label), td(r.cell_id), td(r.verdict + (" (regression)" if r.regression else ""),
                                           cls="front" if r.regression else None),
            td(f"{_fmt(getattr(r, 'p50_base', None), '.2f')} → {_fmt(getattr(r, 'p50_new', None), '.2f')}"),
            td(f"{_fmt(getattr(r, 'ratio', None), '.3f')} [{_fmt(getattr(r, 'ratio_ci_low', None), '.3f')}, "
               f"{_fmt(getattr(r, 'ratio_ci_high', None), '.3f')}]"),
            td(_fmt(getattr(r, "mwu_p", None), ".2g")),
            td(f"{_fmt(getattr(r, 'top1_base', None), '.3f')} → {_fmt(getattr(r, 'top1_new', None), '.3f')}"),
            td(_fmt(getattr(r, "acc_mcnemar_p", None), ".2g")),
            td(f"{_fmt(getattr(r, 'gmacs_base', None), '.4g')} → {_fmt(getattr(r, 'gmacs_new', None), '.4g')}"),
            td("; ".join(r.notes) if isinstance(r.notes, list) and r.notes else ""),
        ])
    return head + html_table(["cell", "cell id", "verdict", "p50 ms", "p50 ratio [95 % CI]", "Mann–Whitney p",
                              "top-1", "McNemar p", "GMACs/video", "notes"], rows, scroll=True)


def _page(title: str, body: list[str]) -> str:
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_trends(root: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, include_noisy: bool = False,
                 commit_url: str | None = None, settings: CompareSettings | None = None,
                 title: str = "evbench — trends") -> Path:
    """Render the trend pages of the history at ``root`` into ``out_dir``.

    Args:
        root: History folder (``history.duckdb``).
        out_dir: Output folder (created): ``index.html``, one page per dataset, ``fig/``.
        include_noisy: Keep noisy timing windows in step detection and the latest comparison.
        commit_url: Template for commit links, with ``{commit}``; default: the page's runs table.
        settings: Comparison thresholds of the latest-night table.
        title: Page title.

    Returns:
        Path of ``out_dir/index.html``.

    Raises:
        evbench.harness.history.HistoryError: No history at ``root``.
    """
    from evbench.harness.history import history

    settings = settings or CompareSettings(include_noisy=include_noisy)
    hist = history(root)
    out = Path(out_dir)
    (out / "fig").mkdir(parents=True, exist_ok=True)
    runs = (hist.drop_duplicates("run_id")[["run_id", "run_time", "run_added", "commit", "run_source", "run_kind"]]
            .sort_values(["run_time", "run_added"]).reset_index(drop=True)) if not hist.empty else pd.DataFrame(
        columns=["run_id", "run_time", "run_added", "commit", "run_source", "run_kind"])
    night = {rid: i for i, rid in enumerate(runs["run_id"])}
    labels = [str(t)[:16] if t is not None and not pd.isna(t) else str(rid)[:8]
              for rid, t in zip(runs["run_id"], runs["run_time"], strict=False)]
    steps = detect_changes(hist, include_noisy=include_noisy)
    result, info = latest_comparison(hist, root, settings)
    datasets = list(dict.fromkeys(hist["dataset"].fillna("(dataset not recorded)"))) if not hist.empty else []

    runs_rows = [[td(r.run_id), td(str(r.run_time)), td(f'<span id="commit-{esc(str(r.commit).removesuffix("-dirty"))}">'
                                                         f'<code>{esc(r.commit)}</code></span>', raw=True)
                  if isinstance(r.commit, str) else td(None), td(r.run_kind), td(r.run_source)]
                 for r in runs.itertuples()]
    runs_html = ('<h2 id="runs">Runs in the history</h2>'
                 + html_table(["run id", "time (UTC)", "commit", "kind", "source"], runs_rows, scroll=True))
    nav = "".join(f'<li><a href="{esc(slug(ds, k))}.html">{esc(ds)}</a></li>' for k, ds in enumerate(datasets))
    index_body = [f"<h1>{esc(title)}</h1>", f"<p>History <code>{esc(Path(root).resolve())}</code>: "
                  f"{len(runs)} runs, {hist['cell_id'].nunique() if not hist.empty else 0} cells.</p>",
                  f"<nav><h3>Datasets</h3><ul>{nav or '<li>none</li>'}</ul></nav>",
                  _latest_html(result, info, runs, None), runs_html]
    _write(out / "index.html", _page(title, index_body))
    ticks_every = max(1, len(runs) // 15)
    ticks = (list(range(0, len(runs), ticks_every)), labels[::ticks_every])
    for k, ds in enumerate(datasets):
        sub = hist[hist["dataset"].fillna("(dataset not recorded)") == ds]
        body = [f"<h1>{esc(title)}: {esc(ds)}</h1>", '<p><a href="index.html">all datasets</a> · '
                '<a href="#steps">detected steps</a> · <a href="#cells">cells</a></p>',
                _latest_html(result, info, runs, ds)]
        st = steps[steps["cell_id"].isin(sub["cell_id"])] if not steps.empty else steps
        st_rows = [[td(s.label), td(s.cell_id), td(_METRIC_TITLE.get(s.metric, s.metric)), td(str(s.time)),
                    td(s.run_id), _commit_link(s.commit, commit_url),
                    td(f"{_fmt(s.before, '.4g')} → {_fmt(s.after, '.4g')}"), td(f"{s.rel_change * 100:+.1f} %")]
                   for s in st.sort_values("time", ascending=False).itertuples()]
        body.append('<h2 id="steps">Detected steps</h2><p class="note">asv step detection (piecewise-constant L1 fit) '
                    "per cell, machine key and metric; the run named is the first after the step.</p>"
                    + (html_table(["cell", "cell id", "metric", "first run after (UTC)", "run id", "commit",
                                   "before → after", "change"], st_rows) if st_rows else "<p>No step detected.</p>"))
        body.append('<h2 id="cells">Cells</h2>')
        for _j, ((cid, mkey), g) in enumerate(sub.groupby(["cell_id", "machine_key"], sort=False, dropna=False)):
            g = g.sort_values(["run_time", "run_added"], kind="stable")
            x = np.array([night[r] for r in g["run_id"]], dtype=float)
            cst = st[(st["cell_id"] == cid) & (st["machine_key"] == mkey)] if not st.empty else st
            label = g["label"].iloc[-1]
            stem = out / "fig" / f"{slug(ds, k)}-{cid}-{mkey}"
            png, svg = _figure(g, x, ticks, cst, f"{label} [{cid}] on machine {mkey}", stem)
            body.append(f'<figure id="cell-{esc(cid)}-{esc(mkey)}"><img src="fig/{esc(png.name)}" alt="{esc(label)}">'
                        f"<figcaption>{esc(label)} — cell <code>{esc(cid)}</code>, machine key <code>{esc(mkey)}"
                        f"</code>, {len(g)} runs; {len(cst)} step(s). "
                        f'<a href="fig/{esc(png.name)}">PNG</a> · <a href="fig/{esc(svg.name)}">SVG</a></figcaption></figure>')
        body.append(runs_html)
        _write(out / f"{slug(ds, k)}.html", _page(f"{title}: {ds}", body))
    return out / "index.html"
