"""HTML section: stored verdicts of published claims (``evbench claims --out RUN``).

Reads only ``RUN/claims.jsonl`` (rows written by
:func:`evbench.harness.claims.append_rows`; the last stored row per claim id is
shown); it never measures anything.  Every string from the file is escaped
with :func:`evbench.reports._markup.esc` (through :func:`evbench.reports._markup.td`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from evbench.harness.claims import CLAIMS_FILE, VERDICTS, load_claim_rows
from evbench.reports._markup import esc, html_table, td

__all__ = ["find_claims", "render_claims", "render_realised", "claims_section"]

_VERDICT_STYLE = {
    "reproduced": "background:#e6f4ea",
    "not reproduced": "background:#fde2e1",
    "needs device": "background:#fff4d6",
    "needs dataset": "background:#fff4d6",
    "error": "background:#f3e5f5",
}


def find_claims(results: str | os.PathLike[str] | pd.DataFrame) -> Path | None:
    """The ``claims.jsonl`` of a run directory, or None.

    Args:
        results: What :func:`evbench.reports.html.write_report` was given: a run
            directory, a ``results.jsonl`` path (its folder is searched) or a
            DataFrame (the folders named in its ``run`` column are searched).

    Returns:
        The first ``claims.jsonl`` found, else None.
    """
    if isinstance(results, pd.DataFrame):
        bases = [Path(r) for r in dict.fromkeys(results["run"].dropna().astype(str))] if "run" in results else []
    else:
        base = Path(results)
        bases = [base.parent if base.is_file() else base]
    for base in bases:
        path = base / CLAIMS_FILE
        if path.is_file():
            return path
    return None


def _num(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "—"
    try:
        return format(float(value), ".4g")
    except (TypeError, ValueError):
        return "—"


def _info_text(info: Any) -> str:
    if not isinstance(info, Mapping) or not info:
        return ""
    parts = []
    for k, v in info.items():
        if v == "" or v is None:
            parts.append(str(k))
        elif isinstance(v, float):
            parts.append(f"{k}: {_num(v)}")
        else:
            parts.append(f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}")
    return "; ".join(parts)


def render_claims(rows: Sequence[Mapping[str, Any]], *, source: str = "") -> str:
    """The HTML section for stored claim verdicts.

    Args:
        rows: Verdict rows (``evbench.harness.claims.judge`` dicts as stored).
        source: File the rows came from, shown under the heading.

    Returns:
        A ``<section id="claims">``: a count per verdict, then one table per
        paper (citation and DOI above it) with claim id, source, quantity,
        claimed value and unit, tolerance, measured value, difference, verdict,
        caveat and notes (why not measured, information such as bounds or
        MODELED estimates); then the realised speed-ups
        (:func:`render_realised`).  Empty string when ``rows`` is empty.
    """
    if not rows:
        return ""
    counts = Counter(str(r.get("verdict")) for r in rows)
    checked = sorted({str(r["checked_at"]) for r in rows if r.get("checked_at")})
    parts = ['<section id="claims"><h2>Published claims</h2>',
             f'<p class="note">{esc(len(rows))} claims checked by <code>evbench claims</code>'
             + (f", {esc(checked[0])}" + (f" – {esc(checked[-1])}" if len(checked) > 1 else "") if checked else "")
             + (f" — from <code>{esc(source)}</code>" if source else "") + ". "
             "Cost claims are measured with evbench's own counting (fvcore cost table, trace sums); "
             "MODELED numbers are roofline estimates, never measurements.</p>",
             "<p>" + " · ".join(f"<b>{esc(counts.get(v, 0))}</b> {esc(v)}" for v in VERDICTS) + "</p>"]
    by_paper: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_paper.setdefault(str(r.get("paper", "?")), []).append(r)
    header = ["claim", "source", "quantity", "claimed", "unit", "tolerance", "measured", "difference", "verdict",
              "caveat", "notes"]
    for group in by_paper.values():
        head = group[0]
        parts.append(f"<h3>{esc(head.get('paper_title', head.get('paper', '')))}</h3>"
                     f'<p class="note">{esc(head.get("citation", ""))} · doi: {esc(head.get("doi", ""))}</p>')
        body = []
        for r in group:
            verdict = str(r.get("verdict", ""))
            shown = verdict + (f" {r['needs']}" if r.get("needs") else "")
            notes = "; ".join(x for x in (
                f"not measured: {r['reason']}" if r.get("measured") is None and r.get("reason") else "",
                f"measured: {r['measured_by']}" if r.get("measured_by") else "",
                _info_text(r.get("info")),
            ) if x)
            diff = r.get("difference")
            body.append([
                td(r.get("id", "")), td(r.get("source", "")), td(r.get("quantity", "")),
                td(_num(r.get("claimed")), cls="num"), td(r.get("unit", "")), td(r.get("tolerance", "")),
                td(_num(r.get("measured")), cls="num"),
                td(("+" if isinstance(diff, (int, float)) and diff >= 0 else "") + _num(diff) if diff is not None
                   else "—", cls="num"),
                f'<td style="{_VERDICT_STYLE.get(verdict, "")}">{esc(shown)}</td>',
                td(r.get("caveat") or ""), td(notes),
            ])
        parts.append(html_table(header, body))
    realised = render_realised(rows)
    if realised:
        parts.append(realised)
    parts.append("</section>")
    return "\n".join(parts)


def render_realised(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table of realised speed-ups: claimed vs GMAC ratio vs realised, one line per claim.

    Args:
        rows: Verdict rows; those with a ``realised_verdict`` are shown
            (:func:`evbench.harness.claims.format.realised_table_rows`).

    Returns:
        ``<h3>`` and table (claim, methods compared, claimed, GMAC ratio,
        realised p50 speed-up with its 95 % interval, device / backend /
        threads, decision mix and its source), or ``""`` when no row has one.
    """
    from evbench.harness.claims.format import realised_table_rows

    table = realised_table_rows(rows)
    if not table:
        return ""
    sources = {str(r["id"]): str((r.get("realised") or {}).get("mix_source", "")) for r in rows
               if r.get("realised_verdict")}
    loaded = any((r.get("realised") or {}).get("under_load") for r in rows)
    body = [[td(t["claim"]), td(t["method"]), td(t["claimed"], cls="num"), td(t["gmac_ratio"], cls="num"),
             td(t["realised"], cls="num"), td(t["setup"]), td(t["mix"]), td(sources.get(t["claim"], ""))]
            for t in table]
    note = ("<p class=\"note\">Each compute-saving or speed-up claim timed here at batch 1 on one SYNTHETIC "
            "random clip: the paper's decision mix as forced schedules (usage fractions where the paper prints "
            "them, else a mix with its published mean cost) against the baseline it compares with. GMAC ratio = "
            "baseline ÷ adaptive GMACs/video; realised = baseline ÷ adaptive p50 latency (mix: Σ weight × p50), "
            "95 % bootstrap interval over the raw samples."
            + (" <b>Some schedules were timed under load: not a result.</b>" if loaded else "") + "</p>")
    return ("<h3>Realised speed-ups (claimed vs GMAC ratio vs realised)</h3>" + note
            + html_table(["claim", "compared", "claimed", "GMAC ratio", "realised (p50 ratio, 95 % CI)",
                          "device, backend, threads", "decision mix", "mix source"], body))


def claims_section(results: str | os.PathLike[str] | pd.DataFrame) -> str:
    """The claims section of a run's report, or ``""`` when the run holds no ``claims.jsonl``.

    Args:
        results: What :func:`evbench.reports.html.write_report` was given.

    Returns:
        HTML (see :func:`render_claims`).
    """
    path = find_claims(results)
    if path is None:
        return ""
    return render_claims(load_claim_rows(path), source=path.name)
