"""The report's first screen: one sentence per method on what the run found, and the oracle table.

:func:`findings` reads the result rows (pandas) and, per dataset and per
method configuration (split by builder overrides where an adaptive method was
built more than one way), states

1. its **best operating point** — the finished cell with the highest top-1
   (mAP when no top-1 was measured), ties to the lower GMACs/video;
2. its **cost against uniform at equal accuracy** — the cheapest uniform
   baseline cell (``uniform*`` methods, same dataset) whose top-1 is at least
   the best point's: the GMACs/video ratio.  No interpolation between uniform
   points (a frontier between two measured cells is not measured); when no
   uniform cell reaches that accuracy the sentence says so and names the best
   uniform cell instead;
3. its **realised latency ratio** — p50 latency of the best point over that
   uniform cell's on the same device (modeled devices say so);
4. on the generated dataset, its distance to the **oracle bound**
   (:mod:`evbench.harness.oracle`).

Every string from data is escaped in :func:`findings_section` / :func:`oracle_section`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from evbench.reports._fields import (
    cell_name,
    is_missing,
    ok_rows,
    op_label,
    parse_mapping,
    text_column,
    truthy,
)
from evbench.reports._markup import esc, html_table, num_col, num_td, td
from evbench.reports.format import MISSING, format_number

__all__ = ["Finding", "findings", "findings_section", "oracle_section", "plot_series"]

#: The card's ``action_space`` (row column) of a static baseline: the uniform frontier every adaptive method must beat.
_STATIC = "uniform-frames"


def _action_space(row: pd.Series) -> str:
    """The row's ``action_space``; for rows written before it existed, the registered card's (by method name)."""
    value = row.get("action_space")
    if isinstance(value, str) and value:
        return value
    from evbench.harness.registry import method_card

    try:
        return method_card(str(row.get("method", "")), str(row.get("config") or "paper")).action_space
    except Exception:  # unknown method / configuration (a row from another version): no baseline claim
        return ""


class Finding(NamedTuple):
    """One first-screen sentence (plain text, not escaped)."""

    dataset: str
    method: str
    sentence: str


def _build_tag(row: pd.Series) -> str:
    """The row's builder overrides as ``k=v, …`` (sorted keys)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(parse_mapping(row.get("overrides")).items()))


def _series_name(row: pd.Series, *, variant: bool = False) -> str:
    """``method [config]``; with ``variant``, the row's builder overrides too (``method [config, k=v]``)."""
    method = "?" if is_missing(row.get("method")) else str(row.get("method"))
    config = row.get("config")
    tags = [] if is_missing(config) else [str(config)]
    if variant and _build_tag(row):
        tags.append(_build_tag(row))
    return f"{method} [{', '.join(tags)}]" if tags else method


def _split_builds(sub: pd.DataFrame) -> pd.Series:
    """Per row: whether its builder overrides name its series — where an adaptive method configuration
    was built more than one way (e.g. AR-Net's policy input costed cheap and full), since each build is its
    own model and cost accounting; a uniform baseline's overrides (frames) are its operating points."""
    base = pd.Series([_series_name(r) for _, r in sub.iterrows()], index=sub.index)
    builds = text_column(sub, "overrides", "{}")
    split = {name for name in dict.fromkeys(base)
             if builds[base == name].nunique() > 1
             and not all(_action_space(r) == _STATIC for _, r in sub[base == name].iterrows())}
    return base.isin(split)


def _series_names(sub: pd.DataFrame) -> pd.Series:
    """Finding series per row: ``method [config]``, with the build where :func:`_split_builds` says so."""
    split = _split_builds(sub)
    return pd.Series([_series_name(r, variant=bool(split[i])) for i, r in sub.iterrows()], index=sub.index)


def plot_series(sub: pd.DataFrame) -> pd.Series:
    """Legend series per row of one dataset's plots: the method, with its build where
    :func:`_split_builds` says so (``arnet [policy_input=full]``)."""
    split = _split_builds(sub)
    method = text_column(sub, "method", "?")
    return pd.Series([f"{method[i]} [{_build_tag(r)}]" if split[i] and _build_tag(r) else method[i]
                      for i, r in sub.iterrows()], index=sub.index)


def _point(row: pd.Series, *, own: bool = False) -> str:
    """The cell's name (``own``: just its operating point, the method is named already)."""
    if own and is_missing(row.get("label")):
        return op_label(row, max_len=40) or "(its only cell)"
    return cell_name(row)


def _quality_text(row: pd.Series, quality: str) -> str:
    q = format_number(quality, row.get(quality))
    lo, hi = format_number(quality, row.get(f"{quality}_ci_low")), format_number(quality, row.get(f"{quality}_ci_high"))
    name = "top-1" if quality == "top1" else quality
    ci = f" [95 % CI {lo}–{hi}]" if lo != MISSING and hi != MISSING else ""
    return f"{q} % {name}{ci}"


def _gm(value: object) -> str:
    return format_number("gmacs_per_video", value)


def _latency(row: pd.Series) -> float:
    v = pd.to_numeric(pd.Series([row.get("latency_ms_p50")]), errors="coerce").iloc[0]
    return float(v) if np.isfinite(v) else float("nan")


def _device_of(row: pd.Series) -> str:
    dev = row.get("device")
    return "device not recorded" if is_missing(dev) else str(dev) + (", modeled" if truthy(row.get("modeled")) else "")


def _best(rows: pd.DataFrame, quality: str) -> pd.Series:
    q, g = num_col(rows, quality), num_col(rows, "gmacs_per_video")
    order = pd.DataFrame({"q": q.fillna(-np.inf), "g": g.fillna(np.inf)}, index=rows.index)
    return rows.loc[order.sort_values(["q", "g"], ascending=[False, True]).index[0]]


def _latency_clause(best: pd.Series, ref: pd.Series | None) -> str:
    lat = _latency(best)
    if not np.isfinite(lat):
        return "its latency was not measured"
    if ref is None:
        return f"its p50 latency is {lat:.2f} ms ({_device_of(best)})"
    ref_lat = _latency(ref)
    if not np.isfinite(ref_lat) or ref_lat <= 0:
        return f"its p50 latency is {lat:.2f} ms ({_device_of(best)}); the uniform cell's latency was not measured"
    ratio = lat / ref_lat
    g_ratio = num_col(pd.DataFrame([best]), "gmacs_per_video").iloc[0] / max(
        num_col(pd.DataFrame([ref]), "gmacs_per_video").iloc[0], 1e-12)
    tail = ""
    if np.isfinite(g_ratio) and g_ratio < 1 and ratio >= 1:
        tail = " — the GMACs saving is not realised as a speed-up"
    elif np.isfinite(g_ratio) and g_ratio < 1:
        tail = f" — a realised speed-up of {1 / ratio:.2f}×"
    return (f"its realised p50 latency is {ratio:.2f}× the uniform cell's ({lat:.2f} vs {ref_lat:.2f} ms, "
            f"{_device_of(best)}){tail}")


def _oracle_clause(best: pd.Series) -> str:
    oracle = pd.to_numeric(pd.Series([best.get("oracle_gmacs_per_video")]), errors="coerce").iloc[0]
    if not np.isfinite(oracle):
        return ""
    gap = pd.to_numeric(pd.Series([best.get("oracle_gap")]), errors="coerce").iloc[0]
    seen = format_number("evidence_seen_fraction", best.get("evidence_seen_fraction"))
    reach = format_number("oracle_evidence_fraction", best.get("oracle_evidence_fraction"))
    gap_text = f"{gap:.2f}× the oracle bound" if np.isfinite(gap) else "compared with the oracle bound"
    return (f"; it spends {gap_text} of {_gm(oracle)} GMACs/video and its schedules saw the evidence in "
            f"{seen} % of test videos (the oracle can in {reach} %)")


def _sentence(name: str, rows: pd.DataFrame, uniform: pd.DataFrame, quality: str | None) -> str:
    if quality is None or not np.isfinite(num_col(rows, quality)).any():
        g = num_col(rows, "gmacs_per_video")
        cheapest = rows.loc[g.idxmin()] if np.isfinite(g).any() else rows.iloc[0]
        return (f"{name}: accuracy not measured (untrained weights or no labels), so no best operating point; "
                f"its cheapest cell {_point(cheapest, own=True)} runs {_gm(cheapest.get('gmacs_per_video'))} GMACs/video "
                f"and {_latency_clause(cheapest, None)}.")
    best = _best(rows, quality)
    head = (f"{name}: best operating point {_point(best, own=True)} reaches {_quality_text(best, quality)} at "
            f"{_gm(best.get('gmacs_per_video'))} GMACs/video")
    is_uniform = _action_space(best) == _STATIC
    if is_uniform:
        return head + f" (a uniform baseline: the reference), and {_latency_clause(best, None)}{_oracle_clause(best)}."
    same_dev = uniform
    if "device" in uniform.columns and not is_missing(best.get("device")):
        same_dev = uniform[text_column(uniform, "device", "") == str(best.get("device"))]
    pool = same_dev if not same_dev.empty else uniform
    q_best = float(num_col(pd.DataFrame([best]), quality).iloc[0])
    if pool.empty:
        return head + f"; no uniform baseline was measured on this dataset, and {_latency_clause(best, None)}" \
                      f"{_oracle_clause(best)}."
    qu, gu = num_col(pool, quality), num_col(pool, "gmacs_per_video")
    reach = pool[(qu >= q_best - 1e-12) & np.isfinite(gu)]
    if reach.empty:
        top = _best(pool, quality)
        return (head + f"; no uniform cell reaches that accuracy (best uniform: {_point(top)}, "
                f"{_quality_text(top, quality)} at {_gm(top.get('gmacs_per_video'))} GMACs/video), so there is "
                f"no equal-accuracy cost ratio, and {_latency_clause(best, None)}{_oracle_clause(best)}.")
    ref = reach.loc[num_col(reach, "gmacs_per_video").idxmin()]
    ratio = float(num_col(pd.DataFrame([best]), "gmacs_per_video").iloc[0]) / max(
        float(num_col(pd.DataFrame([ref]), "gmacs_per_video").iloc[0]), 1e-12)
    word = "fewer" if ratio < 1 else "more"
    pct = abs(1 - ratio) * 100
    return (head + f", {ratio:.2f}× the GMACs ({pct:.0f} % {word}) of the cheapest uniform cell at equal or higher "
            f"accuracy ({_point(ref)}: {_quality_text(ref, quality)}, {_gm(ref.get('gmacs_per_video'))} "
            f"GMACs/video); {_latency_clause(best, ref)}{_oracle_clause(best)}.")


def findings(df: pd.DataFrame) -> list[Finding]:
    """One sentence per (dataset, method configuration) on what the run found (see the module docstring).

    Args:
        df: Result rows (``evbench.harness.results.load``); failed cells are ignored.

    Returns:
        :class:`Finding` tuples in order of appearance (plain text, not escaped).
    """
    data = ok_rows(df)
    if data.empty:
        return []
    datasets = text_column(data, "dataset", "(dataset not recorded)")
    out: list[Finding] = []
    for ds in dict.fromkeys(datasets):
        sub = data[datasets == ds]
        quality = next((q for q in ("top1", "map") if np.isfinite(num_col(sub, q)).any()), None)
        names = _series_names(sub)
        uniform = sub[[_action_space(r) == _STATIC for _, r in sub.iterrows()]]
        if quality is not None:
            uniform = uniform[np.isfinite(num_col(uniform, quality))]
        for name in dict.fromkeys(names):
            out.append(Finding(ds, name, _sentence(name, sub[names == name], uniform, quality)))
    return out


def findings_section(df: pd.DataFrame) -> str:
    """HTML: the first-screen findings (one sentence per method), escaped; empty without rows."""
    items = findings(df)
    if not items:
        return ""
    parts = ['<section id="findings"><h2>What this run found</h2>']
    several = len({f.dataset for f in items}) > 1
    current = None
    for f in items:
        if several and f.dataset != current:
            if current is not None:
                parts.append("</ul>")
            parts.append(f"<h3>{esc(f.dataset)}</h3>")
            current = f.dataset
            parts.append("<ul>")
        elif current is None:
            current = f.dataset
            parts.append("<ul>")
        name, _, rest = f.sentence.partition(": ")
        parts.append(f"<li><b>{esc(name)}</b>: {esc(rest)}</li>")
    parts.append("</ul>")
    parts.append(
        '<p class="note">Best operating point: the finished cell with the highest top-1 (ties: fewer GMACs). '
        "Equal accuracy: the cheapest uniform baseline cell with top-1 at least as high (no interpolation "
        "between uniform cells; intervals are shown, differences inside them are not significant). Latency "
        "ratio: p50 single-stream latency of the two cells on the same device. Oracle bound: see the "
        "generated dataset's section.</p></section>"
    )
    return "\n".join(parts)


def oracle_section(sub: pd.DataFrame) -> str:
    """HTML table of the oracle columns of one dataset's rows, escaped; empty when no row carries them."""
    if "oracle_gmacs_per_video" not in sub.columns or not np.isfinite(num_col(sub, "oracle_gmacs_per_video")).any():
        notes = [] if "oracle_note" not in sub.columns else [
            str(n) for n in dict.fromkeys(sub["oracle_note"]) if not is_missing(n)]
        return "".join(f'<p class="note">Oracle bound {esc(n)}.</p>' for n in notes[:3])
    rows = []
    order = sub.assign(_m=text_column(sub, "method", ""), _g=num_col(sub, "gmacs_per_video")).sort_values(["_m", "_g"])
    for _, r in order.iterrows():
        rows.append([
            td(cell_name(r)), td(_series_name(r)), td(op_label(r, max_len=40) or None),
            num_td("top1", r.get("top1")), num_td("gmacs_per_video", r.get("gmacs_per_video")),
            num_td("oracle_gmacs_per_video", r.get("oracle_gmacs_per_video")),
            td(format_number("oracle_gap", r.get("oracle_gap")), cls="num"),
            num_td("evidence_seen_fraction", r.get("evidence_seen_fraction")),
            num_td("oracle_evidence_fraction", r.get("oracle_evidence_fraction")),
        ])
    header = [
        "cell", "method", ("operating point", "knobs / overrides"), ("top-1 %", "measured"),
        ("GMACs / video", "measured, mean over test videos"),
        ("oracle GMACs / video", "cheapest schedule of the family that sees each video's evidence, mean"),
        ("gap ×", "GMACs / video ÷ oracle GMACs / video"),
        ("evidence seen %", "share of test videos whose evidence the executed schedule saw"),
        ("oracle can see %", "share of test videos whose evidence some schedule of the family sees"),
    ]
    notes = [str(n) for n in dict.fromkeys(sub.get("oracle_note", pd.Series(dtype=object))) if not is_missing(n)]
    note = f'<p class="note">{esc(notes[0])}.</p>' if notes else ""
    return ("<h3>Oracle bound</h3><p>Per cell: the oracle schedule (from the generator manifest) against the "
            "method's own decisions. A low <i>evidence seen</i> with a high <i>oracle can see</i> is a weak "
            "policy; a low <i>oracle can see</i> is a task the action space cannot solve.</p>"
            + html_table(header, rows) + note)
