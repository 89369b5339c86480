"""The failure logic of bench/bench_overhead.py on injected rows (no timing: the shares are given)."""

from __future__ import annotations

import pytest
from evbench.bench.bench_overhead import (
    ADAPTIVE_METHODS,
    HARNESS_OVERHEAD_TARGET,
    OTHER_TARGETS,
    overhead_problems,
    overhead_shares,
)
from evbench.harness.breakdown import SUM_TOLERANCE
from evbench.harness.registry import list_methods, method_configs


def _row(other: float, *, p50: float = 100.0, mean: float | None = None, overhead: float = 0.01,
         backbone: float | None = None) -> dict:
    """A row whose breakdown sums to ``mean`` (default: p50) unless ``backbone`` is given."""
    mean = p50 if mean is None else mean
    backbone = mean - other - 5.0 if backbone is None else backbone
    return {"latency_ms_p50": p50, "latency_ms_mean": mean, "harness_overhead_ms": overhead,
            "latency_breakdown_ms": {"backbone": backbone, "policy": 5.0, "other": other}}


@pytest.mark.parametrize("config", sorted(OTHER_TARGETS))
def test_other_over_target_fails_and_under_passes(config: str) -> None:
    target = OTHER_TARGETS[config]
    assert overhead_problems(_row(100.0 * target * 0.9), config) == []
    over = overhead_problems(_row(100.0 * target * 1.1), config)
    assert len(over) == 1 and "other" in over[0] and f"{100 * target:.0f} %" in over[0]
    assert overhead_problems(_row(100.0 * target), config)  # the target is a strict upper bound


def test_targets_are_the_issue_s() -> None:
    assert OTHER_TARGETS == {"paper": 0.10, "lite": 0.30}
    assert HARNESS_OVERHEAD_TARGET == 0.01


def test_lite_passes_where_paper_fails() -> None:
    row = _row(20.0)  # 20 % of p50
    assert overhead_problems(row, "lite") == []
    assert overhead_problems(row, "paper")


def test_parts_not_summing_to_the_mean_fail() -> None:
    ok = _row(1.0, backbone=94.0 - 100.0 * SUM_TOLERANCE * 0.5)  # parts 2.5 % short of the mean
    assert overhead_problems(ok, "paper") == []
    short = _row(1.0, backbone=94.0 - 100.0 * SUM_TOLERANCE * 1.5)  # 7.5 % short
    (msg,) = overhead_problems(short, "paper")
    assert "sum" in msg
    assert overhead_shares(short)["sum_rel_error"] == pytest.approx(SUM_TOLERANCE * 1.5)


def test_harness_overhead_over_one_percent_fails() -> None:
    assert overhead_problems(_row(1.0, overhead=0.5), "paper") == []
    (msg,) = overhead_problems(_row(1.0, overhead=1.0), "paper")
    assert "harness overhead" in msg


def test_every_broken_target_is_reported() -> None:
    row = _row(50.0, overhead=2.0, backbone=10.0)
    assert len(overhead_problems(row, "lite")) == 3


@pytest.mark.parametrize("bad", [
    {"latency_ms_p50": None},
    {"latency_ms_p50": 0.0},
    {"latency_breakdown_ms": None},
    {"latency_breakdown_ms": {"backbone": 90.0}},
    {"harness_overhead_ms": None},
])
def test_a_row_without_measurements_is_an_error_not_a_pass(bad: dict) -> None:
    row = _row(1.0) | bad
    with pytest.raises(ValueError):
        overhead_problems(row, "lite")


def test_unknown_config_is_refused() -> None:
    with pytest.raises(KeyError, match="official"):
        overhead_problems(_row(1.0), "official")


def test_the_bench_covers_every_adaptive_method_with_both_configs() -> None:
    registered = set(list_methods())
    assert set(ADAPTIVE_METHODS) <= registered
    assert registered - set(ADAPTIVE_METHODS) == {n for n in registered if n.startswith("uniform")}
    for name in ADAPTIVE_METHODS:
        assert {"paper", "lite"} <= set(method_configs(name))
