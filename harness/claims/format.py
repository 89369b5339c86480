"""Text form of verdict rows (``evbench claims`` without ``--json``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_text", "format_realised", "realised_table_rows", "num", "signed"]


def num(x: float | None, spec: str = ".4g") -> str:
    """``x`` formatted with ``spec``; ``"—"`` for None."""
    return "—" if x is None else format(x, spec)


def signed(x: float, spec: str = ".4g") -> str:
    """``x`` formatted with ``spec`` and an explicit sign."""
    return ("+" if x >= 0 else "") + format(x, spec)


def format_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """A readable table grouped by paper, then a count per verdict.

    Args:
        rows: :func:`judge` rows.

    Returns:
        Text: per paper its citation, then per claim the id, claimed and
        measured values, the difference (claim's unit) and the verdict; below
        it, indented, the quantity and tolerance, the source, how it was
        measured or why not, information and the caveat.  Last line: the
        count of claims, papers and each verdict.
    """
    from evbench.harness.claims.schema import VERDICTS  # schema imports num() from here

    lines: list[str] = []
    by_paper: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_paper.setdefault(r["paper"], []).append(r)
    for group in by_paper.values():
        head = group[0]
        lines.append(f"== {head['paper_title']} — {head['citation']} (doi:{head['doi']})")
        lines.append(f"   {'claim':40s} {'claimed':>12s} {'measured':>12s} {'diff':>10s}  verdict")
        for r in group:
            diff = signed(r["difference"]) if r.get("difference") is not None else "—"
            verdict = r["verdict"] + (f" {r['needs']}" if r.get("needs") else "")
            lines.append(f"   {r['id']:40s} {num(r['claimed']):>12s} {num(r.get('measured')):>12s} "
                         f"{diff:>10s}  {verdict}  [{r['unit']}]")
            lines.append(f"      {r['quantity']}; tolerance {r['tolerance']}")
            lines.append(f"      source: {r['source']}")
            if r.get("measured") is None and r.get("reason"):
                lines.append(f"      why not measured: {r['reason']}")
            elif r.get("measured_by"):
                lines.append(f"      measured: {r['measured_by']}")
            for k, v in (r.get("info") or {}).items():
                lines.append(f"      info: {k}{': ' + (num(v) if isinstance(v, float) else str(v)) if v != '' else ''}")
            if r.get("caveat"):
                lines.append(f"      caveat: {r['caveat']}")
            if r.get("realised_verdict"):
                lines.append(f"      realised: {r['realised_verdict']}")
        lines.append("")
    counts = Counter(r["verdict"] for r in rows)
    lines.append(f"{len(rows)} claim{'s' if len(rows) != 1 else ''} from {len(by_paper)} "
                 f"paper{'s' if len(by_paper) != 1 else ''}: "
                 + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    return "\n".join(lines)


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else "—"


def realised_table_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One line per claim with a realised verdict: claimed vs GMAC ratio vs realised.

    Args:
        rows: :func:`~evbench.harness.claims.judge.judge` rows.

    Returns:
        Dicts of text cells ``claim``, ``method`` (adaptive method and
        baseline), ``claimed`` (value and unit), ``gmac_ratio`` (×),
        ``realised`` (× with its interval), ``setup`` (device, backend,
        threads) and ``mix`` (how the decision mix was set), in row order;
        a claim whose realised pass did not run shows ``—`` and why.
    """
    out = []
    for r in rows:
        if not r.get("realised_verdict"):
            continue
        rz = r.get("realised") or {}
        adapt, base = rz.get("adaptive") or {}, rz.get("baseline") or {}
        speed = r.get("realised_speedup")
        out.append({
            "claim": str(r["id"]),
            "method": (f"{adapt.get('method', r.get('paper'))} vs {base.get('label', base.get('method', '?'))}"
                       if adapt else str(r.get("paper"))),
            "claimed": f"{num(r.get('claimed'))} {r.get('unit', '')}".strip(),
            "gmac_ratio": f"{r['gmac_ratio']:.2f}×" if r.get("gmac_ratio") is not None else "—",
            "realised": (f"{speed:.2f}× {_ci(r.get('realised_speedup_ci'))}" if speed is not None
                         else str(r["realised_verdict"])),
            "setup": (f"{r.get('device')}, {r.get('backend')}, {r.get('threads')} "
                      f"thread{'' if r.get('threads') == 1 else 's'}" if r.get("device") else "—"),
            "mix": str(adapt.get("mix", "")),
        })
    return out


def format_realised(rows: Sequence[Mapping[str, Any]]) -> str:
    """The closing table of ``evbench claims``: claimed vs GMAC ratio vs realised speed-up, per claim.

    Args:
        rows: :func:`~evbench.harness.claims.judge.judge` rows.

    Returns:
        Text (empty when no row has a realised verdict).
    """
    table = realised_table_rows(rows)
    if not table:
        return ""
    lines = ["Realised speed-ups (batch 1, forced decision schedules at the published mix; p50 ratio, "
             "95 % bootstrap interval):",
             f"   {'claim':42s} {'claimed':>22s} {'GMAC ratio':>10s}  realised"]
    for t in table:
        lines.append(f"   {t['claim']:42s} {t['claimed']:>22s} {t['gmac_ratio']:>10s}  {t['realised']}")
        if t["mix"]:
            lines.append(f"      {t['method']}; {t['mix']}; {t['setup']}")
    return "\n".join(lines)
