"""The time budget of one cell's measurement (``MeasureSettings.max_seconds``): what fits, what is skipped.

A paper-size configuration on a small CPU can spend many minutes in the timed
phases (warm-up of every forced path, 64 latency queries, offline batches of
16 clips).  :class:`Budget` is a wall-clock deadline started when the cell's
measurement starts; the timed phases ask it, from a per-clip cost estimate
(the first un-timed query, then the measured latency mean), how much of each
phase fits:

* warm-up: the runs per warm-up path are lowered (never below 1), and the
  per-clip paths cut to one, so that the warm-up takes at most
  :data:`WARMUP_SHARE` of the remaining time where it can (every forced path
  — one per input shape — is always warmed once);
* latency: the timed window is capped at :data:`LATENCY_SHARE` of what
  remains after the warm-up and 3 reserved breakdown queries — MLPerf's minimum query count
  (``min_queries``, 64) is kept unless that cap forces fewer, which the row
  says (``latency_budget_limited``, ``latency_queries``);
* latency breakdown: at most :data:`BREAKDOWN_SHARE` of what remains;
* offline FPS: a batch size whose predicted cost (1 warm-up + 2 timed calls,
  or the minimum window, at the batch-1 latency × batch) no longer fits is
  skipped, and so is every larger one (``fps_offline_skipped_batches``).

Without a budget (``max_seconds = None``) nothing is limited.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

__all__ = ["Budget", "WARMUP_SHARE", "LATENCY_SHARE", "BREAKDOWN_SHARE"]

#: Share of the remaining budget the warm-up may take.
WARMUP_SHARE = 0.2
#: Share of the remaining budget (after the warm-up) the latency window may take.
LATENCY_SHARE = 0.6
#: Share of the remaining budget (after the latency window) the breakdown queries may take.
BREAKDOWN_SHARE = 0.4


class Budget:
    """A wall-clock deadline for one cell's measurement.

    Args:
        max_seconds: Seconds from now (``None``: unlimited).
        clock: Seconds clock (default ``time.perf_counter``; tests inject one).
    """

    def __init__(self, max_seconds: float | None, *, clock: Callable[[], float] | None = None) -> None:
        self.max_seconds = max_seconds
        self.clock = clock or time.perf_counter
        self.start = self.clock()
        self.notes: dict[str, object] = {}

    @property
    def limited(self) -> bool:
        """Whether a deadline is set."""
        return self.max_seconds is not None

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline, never below 0)."""
        if self.max_seconds is None:
            return math.inf
        return max(0.0, self.max_seconds - (self.clock() - self.start))

    def warmup_runs(self, wanted: int, callables: int, query_s: float) -> int:
        """Warm-up runs per path that fit :data:`WARMUP_SHARE` of the remaining time (>= 1 if ``wanted`` >= 1).

        Args:
            wanted: ``settings.warmup_runs``.
            callables: Distinct warm-up paths (each run ``runs`` times).
            query_s: Estimated seconds per query.
        """
        if wanted <= 0 or not self.limited or query_s <= 0:
            return wanted
        fit = int(WARMUP_SHARE * self.remaining() / (max(callables, 1) * query_s))
        runs = max(1, min(wanted, fit))
        if runs < wanted:
            self.notes["warmup_runs"] = runs
        return runs

    def warmup_clips(self, wanted: int, fixed_paths: int, query_s: float) -> int:
        """Clips warmed up besides the ``fixed_paths`` forced paths: all ``wanted`` unless one run of each overruns.

        With a deadline, when one warm-up run of every path (``fixed_paths +
        wanted``) would take more than :data:`WARMUP_SHARE` of the remaining
        time, only one clip path is kept (the forced paths, one per input
        shape, always are).
        """
        if not self.limited or wanted <= 1 or query_s <= 0:
            return wanted
        if (fixed_paths + wanted) * query_s <= WARMUP_SHARE * self.remaining():
            return wanted
        self.notes["warmup_clips"] = 1
        return 1

    def latency_window(self, min_duration_s: float, max_duration_s: float,
                       reserve_s: float = 0.0) -> tuple[float, float, bool]:
        """``(min_duration_s, max_duration_s, capped)`` of the latency window within the budget.

        Args:
            min_duration_s: ``settings.min_duration_s``.
            max_duration_s: ``settings.max_duration_s``.
            reserve_s: Seconds spent before the window opens (the warm-up).

        ``capped`` is True when the budget lowered ``max_duration_s`` (the
        cap is at least 1 ms, so one query always runs).
        """
        if not self.limited:
            return min_duration_s, max_duration_s, False
        cap = max(LATENCY_SHARE * max(0.0, self.remaining() - reserve_s), 1e-3)
        if cap >= max_duration_s:
            return min_duration_s, max_duration_s, False
        self.notes["latency_max_s"] = cap
        return min(min_duration_s, cap), cap, True

    def breakdown_queries(self, wanted: int, query_s: float) -> int:
        """Hooked breakdown queries that fit :data:`BREAKDOWN_SHARE` of the remaining time, or at least 3
        when 3 fit in all of it (the latency window reserved them); 0 when none fits."""
        if not self.limited or query_s <= 0:
            return wanted
        left = self.remaining()
        n = min(wanted, max(int(BREAKDOWN_SHARE * left / query_s), min(3, int(left / query_s))))
        if n < wanted:
            self.notes["breakdown_queries"] = n
        return max(n, 0)

    def offline_batches(self, batches: Sequence[int], query_s: float, min_duration_s: float,
                        min_calls: int = 2) -> tuple[list[int], list[int]]:
        """Split the offline batch sizes into ``(kept, skipped)`` by their predicted cost.

        A batch of ``b`` clips is predicted to take ``b × query_s`` per call
        (batch-1 latency × b, an upper bound where batching helps), run once
        un-timed and then for ``max(min_calls calls, min_duration_s)``.  Sizes
        are tried in increasing order; the first that does not fit in the
        remaining time, and every larger one, is skipped.
        """
        sizes = sorted({int(b) for b in batches})
        if not self.limited:
            return sizes, []
        left = self.remaining()
        kept: list[int] = []
        for i, b in enumerate(sizes):
            call = b * max(query_s, 0.0)
            cost = call + max(min_calls * call, min_duration_s + call)
            if cost > left:
                skipped = sizes[i:]
                self.notes["offline_skipped"] = skipped
                return kept, skipped
            kept.append(b)
            left -= cost
        return kept, []
