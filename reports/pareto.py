"""Pareto frontiers: which cells no other cell beats on both cost and quality."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pareto_frontier"]


def pareto_frontier(df: pd.DataFrame, *, cost: str, quality: str) -> pd.DataFrame:
    """Rows not dominated by any other row (lower cost is better, higher quality is better).

    Row ``a`` dominates row ``b`` when ``cost_a <= cost_b`` and
    ``quality_a >= quality_b`` with at least one strict inequality.  Exact
    duplicates (same cost and quality) do not dominate each other, so both stay.

    Args:
        df: Results table (any columns).
        cost: Column to minimise, e.g. ``"gmacs_per_video"``.
        quality: Column to maximise, e.g. ``"top1"``.

    Returns:
        The non-dominated rows with all their columns and original index,
        sorted by ``cost`` ascending (ties: higher quality first).  Rows whose
        cost or quality is missing or not finite are dropped; an absent column
        gives an empty frame.
    """
    if cost not in df.columns or quality not in df.columns or df.empty:
        return df.iloc[0:0]
    c = pd.to_numeric(df[cost], errors="coerce").to_numpy(dtype=float)
    q = pd.to_numeric(df[quality], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(c) & np.isfinite(q)
    pos = np.flatnonzero(finite)
    if pos.size == 0:
        return df.iloc[0:0]
    c, q = c[pos], q[pos]
    order = np.lexsort((-q, c))  # cost ascending, then quality descending
    keep: list[int] = []
    best = -np.inf  # best quality among strictly cheaper rows
    i = 0
    while i < order.size:
        j = i
        while j < order.size and c[order[j]] == c[order[i]]:
            j += 1
        group_best = q[order[i]]  # rows of equal cost; first has the highest quality
        if group_best > best:
            keep.extend(int(pos[k]) for k in order[i:j] if q[k] == group_best)
            best = group_best
        i = j
    return df.iloc[keep]
