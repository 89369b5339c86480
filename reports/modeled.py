"""HTML section: validation of the modeled-device roofline on a CPU that was attached.

Reads only the stored validation file written by ``evbench model-validate``
(``cpu-validation.json``, see :func:`evbench.harness.devices.modeled.validate_cpu`);
it never runs a model.  Every string from the file is escaped with
:func:`evbench.reports._markup.esc`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
from evbench.reports._markup import esc, html_table, td

__all__ = ["VALIDATION_FILES", "find_validation", "render_validation", "modeled_section"]

#: Where a run directory may hold the modeled-device validation, relative to it, first match wins.
VALIDATION_FILES = ("cpu-validation.json", "modeled/cpu-validation.json", "modeled-validation.json")


def find_validation(results: str | os.PathLike[str] | pd.DataFrame) -> Path | None:
    """The modeled-validation file of a run directory, or None.

    Args:
        results: What :func:`evbench.reports.html.write_report` was given: a run
            directory, a ``results.jsonl`` path (its folder is searched) or a
            DataFrame (no file: None).

    Returns:
        The first of :data:`VALIDATION_FILES` that exists, else None.
    """
    if isinstance(results, pd.DataFrame):
        return None
    base = Path(results)
    if base.is_file():
        base = base.parent
    for name in VALIDATION_FILES:
        path = base / name
        if path.is_file():
            return path
    return None


def _num(value: Any, spec: str) -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "—"


def _load_text(summary: dict[str, Any]) -> str:
    load = summary.get("load_average_1min") or {}
    if not isinstance(load, dict) or load.get("start") is None:
        return ""
    return f" (1-min load average {_num(load.get('start'), '.2f')} at start, {_num(load.get('end'), '.2f')} at end)"


def render_validation(data: dict[str, Any], *, source: str = "") -> str:
    """The HTML section for one validation result.

    Args:
        data: The parsed JSON of ``evbench model-validate`` (``summary``, ``fit``,
            ``peaks``, ``models``).
        source: File name shown under the heading.

    Returns:
        A ``<section>`` with the summary (mean / max absolute % error on held-out
        models, fitted η_c, η_b, t_layer in ms, peaks in GFLOPS and GB/s, machine,
        threads, date) and one table row per model (measured p50 ms, modeled ms,
        error %, held-out flag, layers, GMACs).
    """
    s = data.get("summary", {})
    fit = data.get("fit", {})
    peaks = data.get("peaks", {})
    rows = []
    for m in data.get("models", []):
        rows.append([
            td(m.get("model")),
            td("held out" if m.get("held_out") else "calibration"),
            td(_num(m.get("measured_ms"), ".2f"), cls="num"),
            td(_num(m.get("modeled_ms"), ".2f"), cls="num"),
            td(_num(m.get("error_pct"), "+.1f"), cls="num"),
            td(_num(m.get("layers"), ".0f"), cls="num"),
            td(_num(m.get("gmacs"), ".3f"), cls="num"),
        ])
    table = html_table(
        ["model", "role", "measured p50", "MODELED", "error", "layers", "GMACs"],
        rows, units=["torchvision, random weights", "", "ms", "ms", "% of measured", "kernel launches", "GMACs"],
    )
    summary = (
        f"<p><b>Held-out models:</b> mean |error| {esc(_num(s.get('held_out_mean_abs_error_pct'), '.1f'))} %, "
        f"max {esc(_num(s.get('held_out_max_abs_error_pct'), '.1f'))} % "
        f"({esc(len(s.get('held_out_models', [])))} models); calibration models: mean |error| "
        f"{esc(_num(s.get('calibration_mean_abs_error_pct'), '.1f'))} % "
        f"({esc(len(s.get('calibration_models', [])))} models).</p>"
        f"<p>Fitted η<sub>c</sub> = {esc(_num(fit.get('eta_compute'), '.3f'))}, "
        f"η<sub>b</sub> = {esc(_num(fit.get('eta_bandwidth'), '.3f'))}, "
        f"t<sub>layer</sub> = {esc(_num(fit.get('t_layer_ms'), '.4f'))} ms; "
        f"peaks {esc(_num(peaks.get('peak_gflops'), '.1f'))} GFLOPS, "
        f"{esc(_num(peaks.get('bandwidth_gbs'), '.1f'))} GB/s ({esc(peaks.get('method', ''))}).</p>"
        f"<p class=\"note\">Runtime {esc(s.get('runtime', ''))}, batch {esc(s.get('batch', ''))}, "
        f"{esc(s.get('resolution', ''))} px, {esc(s.get('threads', ''))} threads, on "
        f"{esc(s.get('machine', ''))}, {esc(s.get('date', ''))}{esc(_load_text(s))}. "
        f"{esc(s.get('latency_convention', ''))}.</p>"
    )
    return (
        '<section id="modeled"><h2>Modeled devices: validation of the roofline model</h2>'
        f'<p class="note">From {esc(source)}. Latencies of devices named <code>*-modeled</code> are '
        "computed by a roofline model, not measured; this table checks the same model family against "
        "latencies measured on a CPU that was attached: efficiencies fitted on the calibration models, "
        "the held-out models only predicted.</p>"
        + summary + table + "</section>"
    )


def modeled_section(results: str | os.PathLike[str] | pd.DataFrame) -> str:
    """The modeled-validation section of a run, or ``""`` when the run holds no validation file.

    Args:
        results: As for :func:`find_validation`.

    Returns:
        HTML (possibly empty).  An unreadable file gives a short section saying so.
    """
    path = find_validation(results)
    if path is None:
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return (f'<section id="modeled"><h2>Modeled devices: validation</h2>'
                f"<p>{esc(path.name)} could not be read: {esc(exc)}</p></section>")
    return render_validation(data, source=path.name)
