"""Change points in the nightly history: steps per cell and metric, and the run after each.

The detector is asv's (airspeed velocity, ``asv.step_detect.detect_steps``:
a piecewise-constant L1 fit — the Potts problem — with the penalty chosen
automatically by an information criterion and the noise's autocorrelation
estimated; Pauli Virtanen 2016, used by asv to flag benchmark regressions).
It was picked among the libraries the issue names because it installs cleanly
on Python 3.11 with light, pure-Python dependencies; apache-otava pins
``numpy==2.2.0`` / ``scipy<1.17`` and pulls BigQuery/Postgres/Slack clients, and
MongoDB's ``signal-processing-algorithms`` needs ``numpy<2`` and gevent.

A series is one (cell id, machine key, metric) over the runs of the history,
oldest first — only rows with the same machine key form a series.  Each point
is weighted like asv weights its results, ``2 / width`` of the point's 99 %
confidence interval:

* ``latency_ms_p50`` (and ``latency_ms_p90``) — the distribution-free
  order-statistic interval of the median of the raw samples (binomial ranks);
  windows flagged ``noisy`` are left out of the series unless asked;
* ``top1`` — the normal-approximation binomial interval over ``num_videos``;
* ``gmacs_per_video`` — exact: equal weights.

A step is reported at the first run of each new segment, with the segment
means before and after (in the metric's unit) and that run's commit.  As in
asv, a latency step smaller than a relative threshold (asv's
``regressions_thresholds`` default, 5 %) is not reported, and series shorter
than :data:`MIN_POINTS` runs are not searched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DEFAULT_METRICS", "detect_changes", "series_steps"]

#: Metrics searched for steps by default (ms, fraction 0-1, GMACs per video).
DEFAULT_METRICS = ("latency_ms_p50", "top1", "gmacs_per_video")

#: Fewest runs in a series before steps are searched.
MIN_POINTS = 5
#: Relative size below which a latency step is not reported (asv's default regression threshold).
LATENCY_THRESHOLD = 0.05

_COLUMNS = ["cell_id", "machine_key", "label", "dataset", "metric", "position", "run_id", "commit", "time",
            "before", "after", "rel_change", "direction"]


def _median_ci_weight(samples: Any) -> float | None:
    """asv-style weight 2 / width of the 99 % order-statistic interval of the median (ms^-1)."""
    if samples is None or isinstance(samples, float) or samples is pd.NA:
        return None
    x = np.sort(np.asarray(samples, dtype=np.float64))
    x = x[np.isfinite(x)]
    n = x.size
    if n < 8:
        return None
    lo = int(stats.binom.ppf(0.005, n, 0.5))
    hi = min(n - 1, int(stats.binom.isf(0.005, n, 0.5)))
    width = x[hi] - x[max(lo - 1, 0)]
    return 2.0 / width if width > 0 else None


def _binomial_weight(p: Any, n: Any) -> float | None:
    try:
        p, n = float(p), float(n)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(p) and math.isfinite(n)) or n <= 0:
        return None
    width = 2 * 2.576 * math.sqrt(max(p * (1 - p), 0.25 / n) / n)
    return 2.0 / width


def series_steps(values: Sequence[float | None], weights: Sequence[float | None] | None = None
                 ) -> list[tuple[int, float, float]]:
    """Steps of one series (asv ``detect_steps``).

    Args:
        values: The series, oldest first; None/NaN are missing points.
        weights: Optional per-point weights (None = the median weight).

    Returns:
        ``(position, mean_before, mean_after)`` per step, ``position`` being the
        index into ``values`` of the first point of the new level.
    """
    from asv.step_detect import detect_steps

    y = [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]
    if sum(v is not None for v in y) < MIN_POINTS:
        return []
    w = None if weights is None else [None if x is None or not math.isfinite(float(x)) else float(x) for x in weights]
    if w is not None and all(x is None for x in w):
        w = None
    segs = detect_steps(y, w)
    return [(int(segs[k][0]), float(segs[k - 1][2]), float(segs[k][2])) for k in range(1, len(segs))]


def detect_changes(hist: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS, *,
                   include_noisy: bool = False, latency_threshold: float = LATENCY_THRESHOLD) -> pd.DataFrame:
    """Steps over the history for every (cell, machine key) series and metric.

    Args:
        hist: :func:`evbench.harness.history.history`'s frame (one row per run
            and cell, oldest run first).
        metrics: Columns to search.
        include_noisy: Keep noisy timing windows in latency series.
        latency_threshold: Latency steps with ``|after / before - 1|`` below
            this are not reported (0.05 = 5 %).

    Returns:
        One row per step: ``cell_id``, ``machine_key``, ``label``, ``dataset``,
        ``metric``, ``position`` (index of the run in that series, 0 = oldest),
        ``run_id`` / ``commit`` / ``time`` of the first run after the step,
        ``before`` / ``after`` (segment means, metric units), ``rel_change``
        (``after / before - 1``) and ``direction`` (``"up"``/``"down"``).
    """
    if hist.empty:
        return pd.DataFrame(columns=_COLUMNS)
    ok = hist[hist["status"].fillna("ok") == "ok"] if "status" in hist else hist
    out: list[dict[str, Any]] = []
    for (cid, mkey), g in ok.groupby(["cell_id", "machine_key"], sort=False, dropna=False):
        g = g.sort_values(["run_time", "run_added"] if "run_added" in g else ["run_time"], kind="stable")
        last = g.iloc[-1]
        for metric in metrics:
            if metric not in g:
                continue
            vals = pd.to_numeric(g[metric], errors="coerce").to_numpy(dtype=float)
            weights: list[float | None] | None = None
            if metric.startswith("latency_ms"):
                if not include_noisy and "noisy" in g:
                    vals = np.where(g["noisy"].fillna(False).astype(bool).to_numpy(), np.nan, vals)
                if "latency_samples_ms" in g:
                    weights = [_median_ci_weight(s) for s in g["latency_samples_ms"]]
            elif metric == "top1" and "num_videos" in g:
                weights = [_binomial_weight(p, n) for p, n in zip(g["top1"], g["num_videos"], strict=False)]
            for pos, before, after in series_steps(list(vals), weights):
                if metric.startswith("latency_ms") and before and abs(after / before - 1.0) < latency_threshold:
                    continue
                r = g.iloc[pos]
                out.append({
                    "cell_id": cid, "machine_key": mkey, "label": last.get("label"), "dataset": last.get("dataset"),
                    "metric": metric, "position": pos, "run_id": r["run_id"], "commit": r.get("commit"),
                    "time": r.get("run_time"), "before": before, "after": after,
                    "rel_change": after / before - 1.0 if before else math.inf,
                    "direction": "up" if after > before else "down",
                })
    return pd.DataFrame.from_records(out, columns=_COLUMNS)
