"""Video-level accuracy metrics (DESIGN §4 "Accuracy").

All metrics are fractions in [0, 1] (multiply by 100 for the percentages papers
print). Inputs are per-video: ``scores`` / ``logits`` of shape ``(N, C)`` for N
videos and C classes, ``labels`` of shape ``(N,)`` with integer class indices
in ``[0, C)``.

Conventions:

* **top-k accuracy** — a video counts as correct when its label is among the
  k highest-scoring classes. Ties are resolved by *expected* credit under
  uniformly random tie-breaking: with ``g`` classes scoring strictly higher
  than the label and ``e`` classes (label included) scoring equal to it, the
  credit is ``clip((k - g) / e, 0, 1)``. This equals the usual definition
  when scores are distinct, is deterministic, and gives chance level (k/C),
  not 100 %, for a constant (untrained) model.
* **mAP** — the ActivityNet / FCVID classification protocol as used by AR-Net
  (``ops/utils.py: cal_map``), LiteEval and the adaptive-inference papers
  after them: softmax video scores, per-class **non-interpolated** average
  precision of the one-vs-rest ranking of all N videos, mean over classes.
  Departures, chosen and documented: (a) the mean is over classes with at
  least one positive video (AR-Net's ``cal_map`` averages over all C, scoring
  classes without positives as 0 — identical on a full test set, where every
  class has videos); (b) tied scores are one threshold (precision taken at
  the end of the tie group), the definition of
  ``sklearn.metrics.average_precision_score``, deterministic, where AR-Net's
  sort breaks ties arbitrarily (identical when scores are distinct). The
  official ActivityNet ``eval_classification.py`` instead uses the VOC-2011
  *interpolated* AP; for the single-label case reported by these papers the
  non-interpolated form is what their code computes.
* **Bootstrap intervals** — nonparametric bootstrap over videos: ``n_boot``
  resamples of N videos drawn with replacement (``numpy.random.default_rng(seed)``,
  one ``integers(0, N, N)`` draw per resample, in order), the metric
  recomputed on each, and the percentile interval
  ``[q(alpha/2), q(1 - alpha/2)]`` (numpy ``method="linear"``). All metrics of
  one :func:`accuracy_report` share the same resamples (paired intervals).
  A resample's duplicated videos tie in every class ranking, and AP is
  non-linear in the few positives per class, so the bootstrap distribution of
  mAP sits above the point estimate (about +1 mAP point for 3783 videos x 101
  classes): the mAP interval need not be centred on the point estimate and,
  for very small N, may not contain it. Accuracy intervals have no such shift.
  At a boundary — every video right (top-k 1) or every video wrong (0) — every
  resample gives the same value and the percentile interval has zero width,
  which would read as certainty; there the accuracy interval is the exact
  Clopper–Pearson one instead (``scipy.stats.binomtest(...).proportion_ci``,
  ``method="exact"``: ``[(alpha/2)^(1/N), 1]`` at 100 %, e.g. 97.7–100 % for
  156 videos), as for any binomial proportion with no failures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy_report",
    "average_precision_per_class",
    "bootstrap_ci",
    "mean_average_precision",
    "per_class_accuracy",
    "softmax",
    "topk_accuracy",
]

MetricFn = Callable[[np.ndarray, np.ndarray], float]


# --------------------------------------------------------------------------- validation


def _check(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``(N, C)`` scores and ``(N,)`` integer labels.

    Raises:
        ValueError: Wrong ndim, mismatched N, empty input, NaN scores,
            non-integer labels or labels outside ``[0, C)``.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (N, C), got {s.shape}")
    if y.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {y.shape}")
    n, c = s.shape
    if y.shape[0] != n:
        raise ValueError(f"scores has {n} rows but labels has {y.shape[0]}")
    if n == 0 or c == 0:
        raise ValueError(f"empty input: scores shape {s.shape}")
    nan_rows = int(np.isnan(s).any(axis=1).sum())
    if nan_rows:
        raise ValueError(f"{nan_rows} of {n} rows of scores contain NaN")
    if not np.issubdtype(y.dtype, np.integer):
        if (
            np.issubdtype(y.dtype, np.floating)
            and np.all(np.isfinite(y))
            and np.all(y == np.round(y))
        ):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64, copy=False)
    bad = (y < 0) | (y >= c)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} labels outside [0, {c}), e.g. {int(y[bad][0])} at row {int(np.argmax(bad))}"
        )
    return s, y


def softmax(logits: Any) -> np.ndarray:
    """Numerically stable row-wise softmax (subtracts the row max).

    Args:
        logits: ``(N, C)`` array of real logits.

    Returns:
        ``(N, C)`` float64 probabilities, rows summing to 1.

    Raises:
        ValueError: ``logits`` is not 2-D, a row contains NaN (message names how
            many rows), or a row cannot be normalised (``+inf`` or all ``-inf``).
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {x.shape}")
    nan_rows = int(np.isnan(x).any(axis=1).sum())
    if nan_rows:
        raise ValueError(f"{nan_rows} of {x.shape[0]} rows of logits contain NaN")
    with np.errstate(invalid="ignore", over="ignore"):
        z = x - x.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
    bad_rows = int((~np.isfinite(p)).any(axis=1).sum())
    if bad_rows:
        raise ValueError(
            f"{bad_rows} of {x.shape[0]} rows of logits cannot be normalised (+inf or all -inf)"
        )
    return p


# --------------------------------------------------------------------------- top-k


def _topk_credit(s: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Per-video top-k credit in [0, 1] with expected tie credit, shape (N,)."""
    label_score = s[np.arange(s.shape[0]), y][:, None]
    greater = (s > label_score).sum(axis=1)
    equal = (s == label_score).sum(axis=1)  # includes the label itself, >= 1
    return np.clip((k - greater) / equal, 0.0, 1.0)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Top-k accuracy: fraction of videos whose label is among the k best classes.

    Ties get expected credit under random tie-breaking (see module docstring).
    Any monotone per-row transform of the scores (logits or softmax) gives the
    same result.

    Args:
        scores: ``(N, C)`` per-video class scores (logits or probabilities).
        labels: ``(N,)`` integer labels in ``[0, C)``.
        k: Number of top classes, ``1 <= k <= C``.

    Returns:
        Accuracy as a fraction in [0, 1].

    Raises:
        ValueError: Bad shapes/labels/NaN (see :func:`_check`) or ``k`` outside
            ``[1, C]``.
    """
    s, y = _check(scores, labels)
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in [1, C={s.shape[1]}], got {k}")
    return float(_topk_credit(s, y, k).mean())


# --------------------------------------------------------------------------- mAP


def _ap_columns(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-interpolated AP per class with tie groups as one threshold.

    Returns:
        ``(ap, has_pos)``: ``(C,)`` AP (NaN where a class has no positive) and
        the ``(C,)`` boolean mask of classes with at least one positive.
    """
    n, c = s.shape
    pos = np.zeros((n, c), dtype=bool)
    pos[np.arange(n), y] = True
    order = np.argsort(-s, axis=0, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=0)
    pos_sorted = np.take_along_axis(pos, order, axis=0)
    tp = np.cumsum(pos_sorted, axis=0)
    # End index of each position's tie group: the next position (>= i) whose
    # successor has a different score.
    idx = np.arange(n)[:, None]
    is_last = np.ones((n, c), dtype=bool)
    is_last[:-1] = s_sorted[:-1] != s_sorted[1:]
    end = np.where(is_last, idx, n)
    end = np.minimum.accumulate(end[::-1], axis=0)[::-1]
    prec_at_end = np.take_along_axis(tp, end, axis=0) / (end + 1.0)
    n_pos = pos.sum(axis=0)
    has_pos = n_pos > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (prec_at_end * pos_sorted).sum(axis=0) / n_pos
    ap = np.where(has_pos, ap, np.nan)
    return ap, has_pos


class _WeightedAP:
    """mAP of bootstrap resamples without re-sorting.

    A resample with replacement is the original set with integer weights
    ``w_i`` (how often video i was drawn). Every class's ranking and tie
    groups are those of the original videos (duplicates of a video tie with
    it), so with the original per-class order fixed, the resample's AP is::

        AP_c = sum_{i: y_i = c} w_i * TP_c(end_i) / CNT_c(end_i) / sum_{i: y_i = c} w_i

    where ``end_i`` is the last position of video i's tie group in class c's
    ranking, and ``TP_c``/``CNT_c`` are weighted cumulative positives/videos.
    This equals :func:`mean_average_precision` on the resampled arrays (to
    floating-point rounding) at O(N*C) per resample instead of O(N*C*log N).
    """

    def __init__(self, s: np.ndarray, y: np.ndarray) -> None:
        n, c = s.shape
        self.c, self.y = c, y
        # Class-major (C, N) layout: row k is class k's ranking, so the
        # cumulative sums below run over contiguous memory.
        self.order = np.ascontiguousarray(np.argsort(-s.T, axis=1, kind="stable"))
        s_sorted = np.take_along_axis(s.T, self.order, axis=1)
        self.pos_sorted = y[self.order] == np.arange(c)[:, None]
        idx = np.arange(n)[None, :]
        is_last = np.ones((c, n), dtype=bool)
        is_last[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
        end = np.minimum.accumulate(np.where(is_last, idx, n)[:, ::-1], axis=1)[:, ::-1]
        # Position of each video in its own class's ranking, then its group end.
        rank_in_own = np.empty(n, dtype=np.int64)
        inv = np.empty(n, dtype=np.int64)
        for k in np.unique(y):
            inv[self.order[k]] = np.arange(n)
            members = np.flatnonzero(y == k)
            rank_in_own[members] = inv[members]
        self.end_own = end[y, rank_in_own]
        # Work buffers reused across resamples (fresh multi-MB arrays per call
        # cost more in page faults than the arithmetic). int32: counts <= N.
        self._buf = np.empty((c, n), dtype=np.int32)
        self._cum = np.empty((c, n), dtype=np.int32)

    def __call__(self, w: np.ndarray) -> float:
        """mAP (fraction) of the resample with integer per-video weights ``w`` (N,)."""
        w = np.asarray(w, dtype=np.int32)
        np.take(w, self.order, out=self._buf)
        np.cumsum(self._buf, axis=1, out=self._cum)
        cnt = self._cum[self.y, self.end_own].astype(np.float64)
        np.multiply(self._buf, self.pos_sorted, out=self._buf)
        np.cumsum(self._buf, axis=1, out=self._cum)
        tp = self._cum[self.y, self.end_own].astype(np.float64)
        # cnt >= tp >= w_i, so cnt == 0 only for videos of weight 0 (no contribution).
        prec = np.divide(tp, cnt, out=np.zeros(tp.shape, dtype=np.float64), where=cnt > 0)
        num = np.bincount(self.y, weights=w * prec, minlength=self.c)
        den = np.bincount(self.y, weights=w, minlength=self.c)
        has = den > 0
        return float((num[has] / den[has]).mean())


def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class non-interpolated average precision (one-vs-rest over all videos).

    For class c, videos are ranked by ``scores[:, c]`` (descending) and
    ``AP_c = (1 / P_c) * sum over positive videos of precision at their rank``,
    with tied scores forming a single threshold (precision at the end of the
    tie group), i.e. ``sklearn.metrics.average_precision_score``.

    Args:
        scores: ``(N, C)`` per-video class scores — softmax probabilities under
            the ActivityNet/FCVID protocol (the ranking across videos depends on
            the normalisation, so pass probabilities, not logits).
        labels: ``(N,)`` integer labels in ``[0, C)``.

    Returns:
        ``(C,)`` float64 array of AP in [0, 1]; NaN for classes without any
        positive video.

    Raises:
        ValueError: Bad shapes, NaN scores or labels out of range.
    """
    s, y = _check(scores, labels)
    return _ap_columns(s, y)[0]


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean average precision, ActivityNet/FCVID video classification protocol.

    Per-class non-interpolated AP over all N videos (one-vs-rest, see
    :func:`average_precision_per_class`), averaged over the classes that have
    at least one positive video. The protocol feeds softmax scores;
    :func:`accuracy_report` applies the softmax, this function ranks whatever
    scores it is given.

    Args:
        scores: ``(N, C)`` softmax scores.
        labels: ``(N,)`` integer labels in ``[0, C)``.

    Returns:
        mAP as a fraction in [0, 1].

    Raises:
        ValueError: Bad shapes, NaN scores or labels out of range.
    """
    s, y = _check(scores, labels)
    ap, has_pos = _ap_columns(s, y)
    return float(ap[has_pos].mean())


# --------------------------------------------------------------------------- per class


def per_class_accuracy(
    scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *, k: int = 1
) -> dict[str, float]:
    """Top-k accuracy of the videos of each class (class recall at k).

    Args:
        scores: ``(N, C)`` per-video class scores.
        labels: ``(N,)`` integer labels in ``[0, C)``.
        class_names: C names, index i naming class i.
        k: Top-k (default 1), ``1 <= k <= C``.

    Returns:
        ``{class name: fraction in [0, 1]}`` for every class, in class-index
        order; ``nan`` for classes with no video in ``labels``.

    Raises:
        ValueError: ``len(class_names) != C``, duplicate names, bad ``k``, or
            bad scores/labels.
    """
    s, y = _check(scores, labels)
    c = s.shape[1]
    names = list(class_names)
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")
    if len(set(names)) != c:
        raise ValueError("class_names contains duplicates")
    if not 1 <= k <= c:
        raise ValueError(f"k must be in [1, C={c}], got {k}")
    credit = _topk_credit(s, y, k)
    sums = np.bincount(y, weights=credit, minlength=c)
    counts = np.bincount(y, minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = sums / counts
    return {name: float(acc[i]) if counts[i] else float("nan") for i, name in enumerate(names)}


# --------------------------------------------------------------------------- bootstrap


def _check_boot(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _bootstrap(
    n: int, n_boot: int, seed: int, fns: Sequence[Callable[[np.ndarray], float]]
) -> list[np.ndarray]:
    """Evaluate each ``fn(indices)`` on the same ``n_boot`` resamples of ``range(n)``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(fns), n_boot), dtype=np.float64)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        for j, fn in enumerate(fns):
            out[j, b] = fn(idx)
    return list(out)


def _accuracy_interval(credit: np.ndarray, boot: np.ndarray, alpha: float) -> tuple[float, float]:
    """The percentile interval of an accuracy, or Clopper–Pearson where it sits at 0 or 1 (module docstring)."""
    n = int(credit.size)
    if n and (np.all(credit == 1.0) or np.all(credit == 0.0)):
        from scipy.stats import binomtest

        ci = binomtest(int(credit.sum()), n).proportion_ci(confidence_level=1.0 - alpha, method="exact")
        return float(ci.low), float(ci.high)
    return _interval(boot, alpha)


def _interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0], method="linear")
    return float(lo), float(hi)


def bootstrap_ci(
    scores: np.ndarray,
    labels: np.ndarray,
    metric: MetricFn,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric`` over videos.

    Draws ``n_boot`` resamples of the N videos with replacement
    (``np.random.default_rng(seed).integers(0, N, N)`` once per resample),
    evaluates ``metric(scores[idx], labels[idx])`` on each, and returns the
    ``alpha/2`` and ``1 - alpha/2`` quantiles (numpy ``method="linear"``) of
    the finite values. Deterministic for a given seed. When ``metric`` is
    :func:`mean_average_precision` the resamples are evaluated by re-weighting
    the original ranking (same values, no sort per resample); any other metric
    is called on the resampled arrays.

    Args:
        scores: ``(N, C)`` per-video scores.
        labels: ``(N,)`` integer labels.
        metric: ``metric(scores, labels) -> float``, e.g.
            ``lambda s, y: topk_accuracy(s, y, 1)`` or
            :func:`mean_average_precision`.
        n_boot: Number of resamples (>= 1).
        alpha: 1 - confidence level (0.05 gives a 95 % interval), in (0, 1).
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        ``(low, high)`` in the metric's units; ``(nan, nan)`` if the metric was
        never finite.

    Raises:
        ValueError: Bad ``n_boot``/``alpha``, or bad scores/labels.
    """
    _check_boot(n_boot, alpha)
    s, y = _check(scores, labels)
    n = s.shape[0]
    fn: Callable[[np.ndarray], float]
    if metric is mean_average_precision:  # same value, no re-sorting per resample
        weighted_map = _WeightedAP(s, y)

        def fn(idx: np.ndarray) -> float:
            return weighted_map(np.bincount(idx, minlength=n))

    else:

        def fn(idx: np.ndarray) -> float:
            return float(metric(s[idx], y[idx]))

    (stats,) = _bootstrap(n, n_boot, seed, [fn])
    return _interval(stats, alpha)


# --------------------------------------------------------------------------- report

_ACCURACY_CONVENTION = (
    "softmax of logits (row max subtracted); top-k with expected credit for ties; mAP = "
    "ActivityNet/FCVID protocol: per-class non-interpolated one-vs-rest AP over softmax scores "
    "(tie group = one threshold), mean over classes with >= 1 positive video; fractions 0-1; "
    "95 % (1-alpha) percentile bootstrap over videos, paired resamples, numpy default_rng(seed); "
    "accuracy at 0 % or 100 %: exact Clopper-Pearson interval"
)


def accuracy_report(
    logits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Top-1, top-5, mAP (with bootstrap intervals) and per-class top-1.

    The logits are turned into probabilities with a numerically stable
    softmax; every metric is computed on them. Intervals are percentile
    bootstrap intervals over videos (see :func:`bootstrap_ci`); all three
    metrics use the same resamples, and each interval equals what
    :func:`bootstrap_ci` returns for the same ``seed`` (to floating-point
    rounding; the mAP resamples are evaluated by re-weighting the original
    ranking instead of re-sorting, which is equivalent and much faster) —
    except an accuracy of exactly 0 or 1, whose interval is the exact
    Clopper–Pearson one (module docstring).

    Args:
        logits: ``(N, C)`` video-level logits.
        labels: ``(N,)`` integer labels in ``[0, C)``.
        class_names: C class names.
        n_boot: Bootstrap resamples (>= 1).
        seed: Bootstrap seed.
        alpha: 1 - confidence level (0.05: 95 % intervals).

    Returns:
        A JSON-serialisable dict (fractions in [0, 1])::

            {"top1", "top1_ci_low", "top1_ci_high",
             "top5", "top5_ci_low", "top5_ci_high", "top5_k",   # k = min(5, C)
             "map", "map_ci_low", "map_ci_high", "map_num_classes",
             "per_class_top1": {name: fraction or nan},
             "num_videos": N, "num_classes": C,
             "n_boot", "ci_level", "seed", "convention"}

    Raises:
        ValueError: NaN in the logits (the message names how many of the N
            rows), non-normalisable rows, bad shapes, labels out of range, or
            ``len(class_names) != C``.
    """
    _check_boot(n_boot, alpha)
    probs = softmax(logits)
    s, y = _check(probs, labels)
    n, c = s.shape
    names = list(class_names)
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")
    k5 = min(5, c)

    credit1 = _topk_credit(s, y, 1)
    credit5 = _topk_credit(s, y, k5)
    ap, has_pos = _ap_columns(s, y)

    weighted_map = _WeightedAP(s, y)

    def _map(idx: np.ndarray) -> float:
        return weighted_map(np.bincount(idx, minlength=n))

    boot1, boot5, bootm = _bootstrap(
        n,
        n_boot,
        seed,
        [lambda idx: float(credit1[idx].mean()), lambda idx: float(credit5[idx].mean()), _map],
    )
    lo1, hi1 = _accuracy_interval(credit1, boot1, alpha)
    lo5, hi5 = _accuracy_interval(credit5, boot5, alpha)
    lom, him = _interval(bootm, alpha)
    return {
        "top1": float(credit1.mean()),
        "top1_ci_low": lo1,
        "top1_ci_high": hi1,
        "top5": float(credit5.mean()),
        "top5_ci_low": lo5,
        "top5_ci_high": hi5,
        "top5_k": k5,
        "map": float(ap[has_pos].mean()),
        "map_ci_low": lom,
        "map_ci_high": him,
        "map_num_classes": int(has_pos.sum()),
        "per_class_top1": per_class_accuracy(s, y, names, k=1),
        "num_videos": n,
        "num_classes": c,
        "n_boot": n_boot,
        "ci_level": 1.0 - alpha,
        "seed": seed,
        "convention": _ACCURACY_CONVENTION,
    }
