"""Tests for harness.metrics on hand-computed examples and an independent reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from evbench.harness import metrics
from evbench.harness.metrics import (
    accuracy_report,
    average_precision_per_class,
    bootstrap_ci,
    mean_average_precision,
    per_class_accuracy,
    softmax,
    topk_accuracy,
)

# Five videos, three classes. Hand-computed below.
SCORES = np.array(
    [
        [0.7, 0.2, 0.1],  # v0, label 0
        [0.5, 0.3, 0.2],  # v1, label 1
        [0.4, 0.4, 0.2],  # v2, label 0 (tie between classes 0 and 1)
        [0.1, 0.3, 0.6],  # v3, label 2
        [0.2, 0.6, 0.2],  # v4, label 1
    ]
)
LABELS = np.array([0, 1, 0, 2, 1])
# class 0 ranking: v0(+) v1(-) v2(+) v4 v3        -> AP = (1/1 + 2/3) / 2 = 5/6
# class 1 ranking: v4(+) v2(-) {v1(+), v3(-)} v0   -> tie group ends at rank 4:
#                                                    AP = (1/1 + 2/4) / 2 = 3/4
# class 2 ranking: v3(+) first                     -> AP = 1
HAND_AP = np.array([5 / 6, 3 / 4, 1.0])
HAND_MAP = (5 / 6 + 3 / 4 + 1.0) / 3


def reference_ap(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Independent AP: sum over distinct thresholds of (R_t - R_prev) * P_t (sklearn's)."""
    aps = []
    for c in range(scores.shape[1]):
        s, t = scores[:, c], labels == c
        if not t.any():
            aps.append(np.nan)
            continue
        ap, prev_recall = 0.0, 0.0
        for thr in sorted(set(s.tolist()), reverse=True):
            sel = s >= thr
            tp = float((sel & t).sum())
            recall, precision = tp / t.sum(), tp / sel.sum()
            ap += (recall - prev_recall) * precision
            prev_recall = recall
        aps.append(ap)
    return np.array(aps)


def random_problem(n: int, c: int, seed: int, round_to: int | None = None):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), labels] += 1.5
    probs = softmax(logits)
    if round_to is not None:
        probs = np.round(probs, round_to)  # creates ties
    return logits, probs, labels


# --------------------------------------------------------------------------- top-k


def test_topk_hand_example() -> None:
    # top-1: v0 ok, v1 wrong, v2 tie for first -> 1/2 credit, v3 ok, v4 ok
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(3.5 / 5)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(1.0)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(1.0)


def test_topk_constant_scores_is_chance_level() -> None:
    scores = np.zeros((6, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(0.25)
    assert topk_accuracy(scores, labels, 2) == pytest.approx(0.5)


def test_topk_agrees_with_argsort_when_no_ties() -> None:
    logits, _, labels = random_problem(200, 10, seed=1)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    expected = np.mean([labels[i] in top5[i] for i in range(len(labels))])
    assert topk_accuracy(logits, labels, 5) == pytest.approx(expected)
    assert topk_accuracy(logits, labels, 1) == pytest.approx(np.mean(logits.argmax(1) == labels))


@pytest.mark.parametrize("k", [0, 4])
def test_topk_rejects_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        topk_accuracy(SCORES, LABELS, k)


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="outside"):
        topk_accuracy(SCORES, np.array([0, 1, 0, 3, 1]), 1)
    with pytest.raises(ValueError, match="rows"):
        topk_accuracy(SCORES, LABELS[:4], 1)
    with pytest.raises(ValueError, match="integer"):
        topk_accuracy(SCORES, LABELS + 0.5, 1)
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        topk_accuracy(SCORES[0], LABELS, 1)
    bad = SCORES.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="1 of 5 rows"):
        mean_average_precision(bad, LABELS)
    # integral float labels are accepted
    assert topk_accuracy(SCORES, LABELS.astype(float), 1) == pytest.approx(0.7)


# --------------------------------------------------------------------------- mAP


def test_map_hand_example() -> None:
    np.testing.assert_allclose(average_precision_per_class(SCORES, LABELS), HAND_AP)
    assert mean_average_precision(SCORES, LABELS) == pytest.approx(HAND_MAP)


def test_map_matches_independent_reference() -> None:
    for seed, round_to in [(0, None), (1, 2), (2, 1)]:
        _, probs, labels = random_problem(120, 7, seed=seed, round_to=round_to)
        ref = reference_ap(probs, labels)
        np.testing.assert_allclose(average_precision_per_class(probs, labels), ref, atol=1e-12)
        assert mean_average_precision(probs, labels) == pytest.approx(np.nanmean(ref))


def test_map_matches_sklearn_if_installed() -> None:
    sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    for seed, round_to in [(3, None), (4, 2)]:
        _, probs, labels = random_problem(150, 6, seed=seed, round_to=round_to)
        expected = [
            sk.average_precision_score(labels == c, probs[:, c]) for c in range(probs.shape[1])
        ]
        np.testing.assert_allclose(average_precision_per_class(probs, labels), expected)


def test_map_skips_classes_without_positives() -> None:
    scores = SCORES[[0, 1, 2, 4]]
    labels = LABELS[[0, 1, 2, 4]]  # no video of class 2
    ap = average_precision_per_class(scores, labels)
    assert math.isnan(ap[2])
    assert mean_average_precision(scores, labels) == pytest.approx(np.mean(ap[:2]))


def test_perfect_ranking_gives_map_one() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    scores = np.eye(3)[labels] * 0.9 + 0.05
    assert mean_average_precision(scores, labels) == pytest.approx(1.0)


# --------------------------------------------------------------------------- per class


def test_per_class_accuracy_hand_example() -> None:
    res = per_class_accuracy(SCORES, LABELS, ["a", "b", "c"])
    assert list(res) == ["a", "b", "c"]
    assert res == pytest.approx({"a": 0.75, "b": 0.5, "c": 1.0})


def test_per_class_accuracy_nan_for_absent_class_and_bad_names() -> None:
    res = per_class_accuracy(SCORES[:3], LABELS[:3], ["a", "b", "c"])
    assert math.isnan(res["c"])
    with pytest.raises(ValueError, match="class names"):
        per_class_accuracy(SCORES, LABELS, ["a", "b"])


# --------------------------------------------------------------------------- bootstrap


def top1(s: np.ndarray, y: np.ndarray) -> float:
    return topk_accuracy(s, y, 1)


def test_bootstrap_deterministic_and_contains_estimate() -> None:
    logits, probs, labels = random_problem(300, 10, seed=5)
    ci = bootstrap_ci(logits, labels, top1, n_boot=200, seed=7)
    assert ci == bootstrap_ci(logits, labels, top1, n_boot=200, seed=7)
    assert ci != bootstrap_ci(logits, labels, top1, n_boot=200, seed=8)
    lo, hi = ci
    assert lo < top1(logits, labels) < hi
    assert 0.0 <= lo < hi <= 1.0
    lo95, hi95 = ci
    lo80, hi80 = bootstrap_ci(logits, labels, top1, n_boot=200, seed=7, alpha=0.2)
    assert lo95 <= lo80 <= hi80 <= hi95


def test_bootstrap_map_fast_path_equals_resorting() -> None:
    _, probs, labels = random_problem(80, 6, seed=9, round_to=2)
    fast = bootstrap_ci(probs, labels, mean_average_precision, n_boot=50, seed=3)
    slow = bootstrap_ci(probs, labels, lambda s, y: mean_average_precision(s, y), n_boot=50, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_weighted_ap_equals_map_of_resample() -> None:
    _, probs, labels = random_problem(60, 5, seed=11, round_to=1)
    wap = metrics._WeightedAP(probs, labels)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = rng.integers(0, 60, 60)
        expected = mean_average_precision(probs[idx], labels[idx])
        assert wap(np.bincount(idx, minlength=60)) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci(SCORES, LABELS, top1, n_boot=0)
    with pytest.raises(ValueError):
        bootstrap_ci(SCORES, LABELS, top1, alpha=1.0)


# --------------------------------------------------------------------------- report


def test_accuracy_report_keys_and_values() -> None:
    logits, probs, labels = random_problem(150, 8, seed=12)
    names = [f"class_{i}" for i in range(8)]
    rep = accuracy_report(logits, labels, names, n_boot=100, seed=1)
    for key in (
        "top1",
        "top1_ci_low",
        "top1_ci_high",
        "top5",
        "top5_ci_low",
        "top5_ci_high",
        "map",
        "map_ci_low",
        "map_ci_high",
        "per_class_top1",
        "num_videos",
        "num_classes",
        "top5_k",
    ):
        assert key in rep
    assert rep["num_videos"] == 150 and rep["num_classes"] == 8 and rep["top5_k"] == 5
    assert rep["top1"] == pytest.approx(topk_accuracy(logits, labels, 1))
    assert rep["top5"] == pytest.approx(topk_accuracy(logits, labels, 5))
    assert rep["map"] == pytest.approx(mean_average_precision(probs, labels))
    assert rep["top1_ci_low"] <= rep["top1"] <= rep["top1_ci_high"]
    assert rep["top5_ci_low"] <= rep["top5"] <= rep["top5_ci_high"]
    # intervals are those of bootstrap_ci with the same seed
    assert (rep["top1_ci_low"], rep["top1_ci_high"]) == pytest.approx(
        bootstrap_ci(probs, labels, top1, n_boot=100, seed=1)
    )
    assert (rep["map_ci_low"], rep["map_ci_high"]) == pytest.approx(
        bootstrap_ci(probs, labels, lambda s, y: mean_average_precision(s, y), n_boot=100, seed=1)
    )
    assert set(rep["per_class_top1"]) == set(names)
    json.dumps(rep, allow_nan=False)
    assert rep == accuracy_report(logits, labels, names, n_boot=100, seed=1)


def test_accuracy_report_fewer_than_five_classes() -> None:
    logits = np.log(SCORES)
    rep = accuracy_report(logits, LABELS, ["a", "b", "c"], n_boot=20)
    assert rep["top5_k"] == 3
    assert rep["top5"] == pytest.approx(1.0)
    assert rep["top1"] == pytest.approx(0.7)
    assert rep["map"] == pytest.approx(HAND_MAP)  # softmax(log p) == p


def test_accuracy_at_100_percent_gets_the_exact_interval_not_a_zero_width_one() -> None:
    labels = np.arange(156) % 6
    logits = np.eye(6)[labels] * 10.0  # every video right
    rep = accuracy_report(logits, labels, [f"c{i}" for i in range(6)], n_boot=200)
    assert rep["top1"] == 1.0 and rep["top1_ci_high"] == 1.0
    assert rep["top1_ci_low"] == pytest.approx(0.025 ** (1 / 156))  # Clopper-Pearson, 97.7 %
    wrong = accuracy_report(-logits, labels, [f"c{i}" for i in range(6)], n_boot=200)
    assert wrong["top1"] == 0.0 and wrong["top1_ci_low"] == 0.0
    assert wrong["top1_ci_high"] == pytest.approx(1 - 0.025 ** (1 / 156))
    assert "Clopper-Pearson" in rep["convention"]


def test_accuracy_report_nan_logits_raise_with_count() -> None:
    logits = np.log(SCORES)
    logits[[1, 3], 0] = np.nan
    with pytest.raises(ValueError, match="2 of 5 rows"):
        accuracy_report(logits, LABELS, ["a", "b", "c"], n_boot=10)


def test_softmax_is_stable() -> None:
    p = softmax(np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(p[1], 1 / 3)
    with pytest.raises(ValueError, match="cannot be normalised"):
        softmax(np.array([[np.inf, 0.0]]))
