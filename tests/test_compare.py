"""evbench compare: latency (Mann-Whitney U + effect floor), paired accuracy, exact GMACs, verdicts, exit codes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from evbench.harness.cli import main
from evbench.harness.compare import (
    CompareSettings,
    RunNoise,
    between_run_noise,
    compare,
    fails,
    format_table,
    latency_test,
    mcnemar,
)
from evbench.harness.history import run_data
from nightly_helpers import night_rows, real_rows, write_run


@pytest.fixture(scope="module")
def rows():
    return real_rows(3)


def _pair(tmp_path, rows, *, shift=1.0, seed_new=1, **new_kw):
    base = write_run(tmp_path / "base", night_rows(rows, seed=0))
    flip, clip_ids = new_kw.pop("flip", 0), new_kw.pop("clip_ids", None)
    new_rows = night_rows(rows, seed=seed_new, shift=shift, **new_kw)
    new = write_run(tmp_path / "new", new_rows, flip=flip, clip_ids=clip_ids)
    return base, new


def test_seeded_15_percent_slowdown_is_detected(rows):
    real = np.asarray(rows[0]["latency_samples_ms"])
    rng = np.random.default_rng(7)
    res = latency_test(rng.choice(real, 128), rng.choice(real, 128) * 1.15)
    assert res["latency"] == "slower"
    assert res["mwu_p"] < 0.002 and res["ratio"] == pytest.approx(1.15, rel=0.05)
    assert res["ratio_ci_low"] > 1.0
    faster = latency_test(rng.choice(real, 128), rng.choice(real, 128) / 1.15)
    assert faster["latency"] == "faster"


def test_twenty_null_pairs_give_no_alarm_at_defaults(rows):
    for row in rows:
        real = np.asarray(row["latency_samples_ms"])
        verdicts = []
        for seed in range(20):
            rng = np.random.default_rng(1000 + seed)
            verdicts.append(latency_test(rng.choice(real, 128), rng.choice(real, 128))["latency"])
        assert verdicts == ["no change"] * 20, row["label"]


def test_effect_floor_is_settable(rows):
    real = np.asarray(rows[0]["latency_samples_ms"])
    rng = np.random.default_rng(3)
    a, b = rng.choice(real, 256), rng.choice(real, 256) * 1.08
    assert latency_test(a, b)["latency"] == "no change"  # below the 10 % floor
    assert latency_test(a, b, CompareSettings(effect_floor=0.05))["latency"] == "slower"


def test_mcnemar_counts_discordant_clips():
    base = np.array([True] * 12 + [False] * 12)
    new = base.copy()
    new[:10] = False
    res = mcnemar(base, new)
    assert (res["lost"], res["gained"]) == (10, 0)
    assert res["mcnemar_p"] == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar(base, base)["mcnemar_p"] == 1.0
    with pytest.raises(ValueError, match="same clips"):
        mcnemar(base, base[:5])


def test_identical_runs_compare_as_no_change(tmp_path, rows):
    base, new = _pair(tmp_path, rows)
    result = compare(run_data(base), run_data(new))
    assert list(result["verdict"]) == ["no change"] * len(rows)
    assert not result["regression"].any() and not fails(result, "regression") and not fails(result, "any")
    assert "no change: 3" in format_table(result)


def test_slower_run_is_a_regression_and_names_the_cell(tmp_path, rows):
    base, new = _pair(tmp_path, rows, shift=1.2)
    result = compare(run_data(base), run_data(new))
    assert set(result["verdict"]) == {"slower"}
    assert result["regression"].all() and fails(result, "regression")
    assert (result["ratio"] > 1.1).all()


def test_accuracy_paired_test_refuses_different_clip_sets(tmp_path, rows):
    other = [f"other{i:03d}" for i in range(24)]
    base, new = _pair(tmp_path, rows, clip_ids=other)
    result = compare(run_data(base), run_data(new))
    assert all(v.startswith("not comparable (different clips: 24 only in BASE, 24 only in NEW") for v in result["verdict"])
    assert not result["regression"].any()


def test_accuracy_down_on_paired_clips(tmp_path, rows):
    row = max(rows, key=lambda r: r["top1"])  # 10 of 24 right: flip 8 of them
    base, new = _pair(tmp_path, [row], flip=8)
    result = compare(run_data(base), run_data(new))
    r = result.iloc[0]
    assert r["verdict"] == "accuracy down" and r["regression"]
    assert (r["acc_lost"], r["acc_gained"]) == (8, 0)


def test_gmacs_change_is_cost_changed_with_decisions(tmp_path, rows):
    base = write_run(tmp_path / "base", night_rows(rows[:1], seed=0))
    changed = night_rows(rows[:1], seed=1)
    changed[0]["gmacs_per_video"] *= 1.25
    changed[0]["exit_hist"] = {"all_frames": 20, "exit_1": 4}
    new = write_run(tmp_path / "new", changed)
    r = compare(run_data(base), run_data(new)).iloc[0]
    assert r["verdict"] == "cost changed" and r["regression"]  # more GMACs per video
    assert any(m.startswith("exit_hist") for m in r["decisions_moved"])


def test_other_machine_or_noisy_window_is_not_comparable(tmp_path, rows):
    base = write_run(tmp_path / "base", night_rows(rows[:1], seed=0))
    other = night_rows(rows[:1], seed=1)
    other[0]["env"]["threads"] = 1
    other[0]["threads"] = 1
    r = compare(run_data(base), run_data(write_run(tmp_path / "other", other))).iloc[0]
    assert r["verdict"].startswith("not comparable (machine differs: threads 2 -> 1")

    noisy = write_run(tmp_path / "noisy", night_rows(rows[:1], seed=1, shift=1.3, noisy=True))
    r = compare(run_data(base), run_data(noisy)).iloc[0]
    assert r["verdict"].startswith("not comparable (noisy timing in NEW") and not r["regression"]
    assert fails(compare(run_data(base), run_data(noisy)), "regression")  # the gate fails closed on a noisy night
    r = compare(run_data(base), run_data(noisy), CompareSettings(include_noisy=True)).iloc[0]
    assert r["verdict"] == "slower" and r["regression"]


def test_cli_compare_fail_on_regression_exits_1(tmp_path, rows, capsys):
    base, new = _pair(tmp_path, rows, shift=1.2)
    assert main(["compare", str(base), str(new)]) == 0
    assert main(["compare", str(base), str(new), "--fail-on", "regression"]) == 1
    assert main(["compare", str(base), str(base), "--fail-on", "regression"]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(new), "--json", "--fail-on", "any"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["regressions"] == 3 and {c["verdict"] for c in payload["cells"]} == {"slower"}
    assert payload["settings"]["effect_floor"] == 0.10


def test_cli_compare_bad_input_exits_2(tmp_path, rows, capsys):
    base, new = _pair(tmp_path, rows)
    assert main(["compare", str(base), str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["compare", str(base), str(new), "--effect-floor", "1.5"]) == 2
    assert "--effect-floor" in capsys.readouterr().err


def _nightly_cells(p50s, *, cell="c1", key="m1", noisy=()):
    import pandas as pd
    return pd.DataFrame({"cell_id": cell, "machine_key": key, "latency_ms_p50": p50s, "status": "ok",
                         "noisy": [i in noisy for i in range(len(p50s))]})


def test_between_run_noise_is_the_robust_spread_of_run_to_run_log_ratios():
    rng = np.random.default_rng(0)
    # 200 nights whose p50 wanders by a log-normal 6 % from night to night (as the 2-core CI machine's idle runs)
    p50s = 12.0 * np.exp(rng.normal(0.0, 0.06 / np.sqrt(2), 200))
    noise = between_run_noise(_nightly_cells(p50s))[("c1", "m1")]
    assert noise.n_runs == 200
    assert noise.sigma == pytest.approx(0.06, rel=0.15)
    assert noise.floor(0.002) == pytest.approx(np.expm1(3.0902 * noise.sigma), rel=1e-3)
    # noisy nights, failed cells and too-short series are left out
    assert between_run_noise(_nightly_cells([10.0, 11.0, 12.0, 13.0, 14.0], noisy=(4,))) == {}
    assert between_run_noise(_nightly_cells(p50s[:6]), min_runs=10) == {}


def test_history_floor_silences_a_between_run_wobble_but_not_a_real_step(rows):
    real = np.asarray(rows[0]["latency_samples_ms"])
    rng = np.random.default_rng(11)
    base, wobble, step = rng.choice(real, 128), rng.choice(real, 128) * 1.12, rng.choice(real, 128) * 1.35
    assert latency_test(base, wobble)["latency"] == "slower"  # the default 10 % floor alone: a false alarm
    floor = RunNoise(sigma=0.06, n_runs=11).floor(0.002)
    assert 0.19 < floor < 0.21
    assert latency_test(base, wobble, floor=floor)["latency"] == "no change"
    res = latency_test(base, step, floor=floor)
    assert res["latency"] == "slower" and res["effect_floor_used"] == pytest.approx(floor)


def test_compare_uses_the_noise_of_the_matching_cell_and_says_so(tmp_path, rows):
    base, new = _pair(tmp_path, rows, shift=1.12)
    plain = compare(run_data(base), run_data(new))
    assert set(plain["verdict"]) == {"slower"} and set(plain["floor_source"]) == {"default"}
    b = run_data(base)
    key = str(b.cells["machine_key"].iloc[0])
    noise = {(str(c), key): RunNoise(sigma=0.06, n_runs=11) for c in b.cells["cell_id"]}
    quiet = compare(b, run_data(new), CompareSettings(), noise)
    assert set(quiet["verdict"]) == {"no change"}
    assert all(src.startswith("history: sigma") for src in quiet["floor_source"])
    assert any("floor raised" in n for ns in quiet["notes"] for n in ns)
    other_machine = {(c, "another-key"): v for (c, _), v in noise.items()}
    assert set(compare(b, run_data(new), CompareSettings(), other_machine)["verdict"]) == {"slower"}


def test_cli_compare_with_history_takes_the_floor_from_the_nights_before_base(tmp_path, rows, capsys):
    hist = tmp_path / "H"
    wobble = np.exp(np.random.default_rng(5).normal(0.0, 0.045, 8))  # nights 0-7: a 4.5 % sd wobble, no step
    nights = []
    for i, f in enumerate(wobble):
        nights.append(write_run(tmp_path / f"n{i}", night_rows(rows, seed=i, shift=float(f),
                                                               started=f"2026-11-{i + 1:02d}T02:00:00Z")))
    new = write_run(tmp_path / "new", night_rows(rows, seed=99, shift=float(wobble[-1]) * 1.12,
                                                 started="2026-11-20T02:00:00Z"))
    assert main(["history", "add", *map(str, nights), str(new), "--history", str(hist)]) == 0
    capsys.readouterr()
    assert main(["compare", str(nights[-1]), str(new), "--fail-on", "regression"]) == 1  # 10 % floor: alarm
    capsys.readouterr()
    assert main(["compare", str(nights[-1]), str(new), "--history", str(hist), "--json",
                 "--fail-on", "regression"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert {c["verdict"] for c in cells} == {"no change"}
    assert all(c["floor_source"].startswith("history") and c["effect_floor_used"] > 0.12 for c in cells)
