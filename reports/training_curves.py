"""The report's "Training" section: per-epoch curves of every trained model of a run.

Each trained cell's checkpoint has a side file ``<checkpoint>.curve.json``
(:func:`evbench.harness.training.write_curve`) holding the training loop's
per-epoch means of what the method logs (loss terms, ``train_top1``, Gumbel
``tau``, usage terms) plus, when the suite's ``[train] val_fraction`` holds a
validation split out of the train split, ``val_top1`` and
``val_gmacs_per_video`` (inference mode, default knobs) after every epoch.
Validation clips are never trained on and never test clips: test accuracy is
not in these curves.

One small figure per trained model (PNG + SVG, three panels: loss terms;
top-1 on training batches and on the validation split; realised GMACs/video on
the validation split), stages separated by dotted lines.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["find_curves", "plot_curve", "training_section", "CURVE_FORMAT"]

CURVE_FORMAT = "evbench-curve-1"
#: Logged keys that are not loss terms (drawn elsewhere or not at all).
_NOT_LOSS = {"stage", "epoch", "seconds", "val_top1", "val_gmacs_per_video", "val_clips", "train_top1", "tau",
             "exit_label_rate", "skip_fraction", "fine_usage"}
_DPI = 110


def _curve_file(checkpoint: str, base: Path | None) -> Path | None:
    """The curve side file of ``checkpoint``: beside it, else under ``base/checkpoints`` (a moved run)."""
    ckpt = Path(checkpoint)
    name = ckpt.stem + ".curve.json"
    for cand in [ckpt.with_name(name)] + ([base / "checkpoints" / name] if base is not None else []):
        if cand.is_file():
            return cand
    return None


def find_curves(df: pd.DataFrame, where: str | None = None) -> list[dict[str, Any]]:
    """Training curves of the trained cells of ``df``, one per distinct checkpoint.

    Args:
        df: Result rows (``checkpoint``, ``method``, ``label`` columns used).
        where: The results path the rows came from (its folder is searched when
            the stored checkpoint path no longer exists).

    Returns:
        ``[{"method", "labels", "file", "curve"}]`` in row order; ``curve`` is
        the side file's JSON (``logs``: per-epoch dicts).  Rows without a
        checkpoint, or whose side file is missing or unreadable, are left out.
    """
    if df.empty or "checkpoint" not in df.columns:
        return []
    base = None
    if where:
        p = Path(str(where).split(";")[0].strip())
        base = p if p.is_dir() else p.parent
    found: dict[str, dict[str, Any]] = {}
    for _, row in df.iterrows():
        ckpt = row.get("checkpoint")
        if not isinstance(ckpt, str) or not ckpt:
            continue
        label = str(row.get("label") or row.get("method") or "")
        if ckpt in found:
            if label not in found[ckpt]["labels"]:
                found[ckpt]["labels"].append(label)
            continue
        f = _curve_file(ckpt, base)
        if f is None:
            continue
        try:
            curve = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(curve, dict) or curve.get("format") != CURVE_FORMAT or not curve.get("logs"):
            continue
        found[ckpt] = {"method": str(row.get("method") or ""), "labels": [label], "file": f, "curve": curve}
    return list(found.values())


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def plot_curve(curve: Mapping[str, Any], title: str, out_stem: Path) -> list[Path]:
    """Draw one model's curves: loss terms, top-1 (train batches / validation), validation GMACs/video.

    Args:
        curve: A curve side file's JSON (``logs``: per-epoch dicts with ``stage``, ``epoch``).
        title: Figure title.
        out_stem: Output path without suffix (``.png`` and ``.svg`` are written).

    Returns:
        The written files.
    """
    logs: Sequence[Mapping[str, Any]] = curve["logs"]
    x = list(range(1, len(logs) + 1))
    fig = Figure(figsize=(9.0, 2.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    loss_keys = [k for k in dict.fromkeys(k for row in logs for k in row) if k not in _NOT_LOSS]
    for k in loss_keys:
        pts = [(i, float(r[k])) for i, r in zip(x, logs, strict=True) if _finite(r.get(k))]
        if pts:
            axes[0].plot(*zip(*pts, strict=True), marker=".", label=k)
    axes[0].set_title("loss terms (train)", fontsize=9)
    for k, lab in (("train_top1", "train batches"), ("val_top1", "validation")):
        pts = [(i, 100 * float(r[k])) for i, r in zip(x, logs, strict=True) if _finite(r.get(k))]
        if pts:
            axes[1].plot(*zip(*pts, strict=True), marker=".", label=lab)
    axes[1].set_title("top-1 (%)", fontsize=9)
    pts = [(i, float(r["val_gmacs_per_video"])) for i, r in zip(x, logs, strict=True)
           if _finite(r.get("val_gmacs_per_video"))]
    if pts:
        axes[2].plot(*zip(*pts, strict=True), marker=".", color="tab:green")
        axes[2].set_title("GMACs/video (validation)", fontsize=9)
    else:
        axes[2].text(0.5, 0.5, "no validation split", ha="center", va="center", transform=axes[2].transAxes)
        axes[2].set_title("GMACs/video", fontsize=9)
    stages = [str(r.get("stage", "")) for r in logs]
    for ax in axes:
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1]:
                ax.axvline(i + 0.5, color="0.6", ls=":", lw=0.8)
        ax.set_xlabel("epoch (all stages)", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle(title + "  (stages: " + " → ".join(dict.fromkeys(stages)) + ")", fontsize=9)
    fig.tight_layout()
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    files = [out_stem.with_name(out_stem.name + ".png"), out_stem.with_name(out_stem.name + ".svg")]
    fig.savefig(files[0], dpi=_DPI)
    fig.savefig(files[1], metadata={"Date": None})
    return files


def _last(logs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    vals = [float(r[key]) for r in logs if _finite(r.get(key))]
    return vals[-1] if vals else None


def training_section(df: pd.DataFrame, where: str | None, out: str | Path) -> str:
    """HTML of the "Training" section (``id="training"``), figures written under ``out/training/``.

    Returns:
        The section's HTML; ``""`` when no row has a training curve.
    """
    curves = find_curves(df, where)
    if not curves:
        return ""
    out = Path(out)
    parts = ['<section id="training"><h2>Training</h2>',
             "<p>Per-epoch means over the training batches of every logged loss term and of top-1 on those "
             "batches (dropout and sampled decisions on); with a validation split (<code>[train] val_fraction"
             "</code>: clips of the train split held out of training, never test clips) top-1 and realised "
             "GMACs/video on it after each epoch, inference mode, default knobs. No number here is measured "
             "on test clips.</p>"]
    for k, c in enumerate(curves):
        curve = c["curve"]
        logs = curve["logs"]
        build = curve.get("build") or {}
        ov = build.get("overrides") or {}
        name = c["method"] + (" " + " ".join(f"{a}={b}" for a, b in sorted(ov.items())) if ov else "")
        files = plot_curve(curve, name, out / "training" / f"curve-{k}")
        val = curve.get("val_clips") or 0
        facts = [f"{len(logs)} epochs", f"{float(curve.get('train_seconds') or 0):.1f} s"]
        vt, vg = _last(logs, "val_top1"), _last(logs, "val_gmacs_per_video")
        if val and vt is not None:
            facts.append(f"validation ({int(val)} clips held out of training): top-1 {100 * vt:.1f} %"
                         + (f" at {vg:.1f} GMACs/video" if vg is not None else "") + " after the last epoch")
        else:
            facts.append("no validation split")
        cells = ", ".join(html.escape(s) for s in c["labels"] if s)
        parts.append(f'<figure><img src="training/{files[0].name}" alt="training curves of {html.escape(name)}" '
                     f'width="810"><figcaption>{html.escape(name)}: {html.escape("; ".join(facts))}'
                     + (f" — cells: {cells}" if cells else "") + "</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)
