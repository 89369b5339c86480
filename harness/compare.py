"""Noise-aware comparison of two runs, cell by cell: one verdict per cell.

Cells are matched by cell id; a pair is only compared when both sides have the
same machine key (:func:`evbench.harness.history.machine_identity`: CPU, cores,
GPU and driver, torch / onnxruntime, threads, backend, precision, device,
Jetson power mode) — otherwise the verdict is ``not comparable (machine
differs: ...)``, naming the fields that differ.

Per matched cell:

* **Latency** — the raw single-stream samples (ms) of both sides: a two-sided
  Mann–Whitney U test (``scipy.stats.mannwhitneyu``) **and** a relative effect
  floor on the p50 ratio ``new / base`` (default 10 %, asv's default; TorchBench
  uses 7 %). ``slower`` needs ``p < alpha`` (default 0.002, asv's
  ``is_different`` threshold) and ``ratio >= 1 + floor``; ``faster`` needs
  ``p < alpha`` and ``ratio <= 1 / (1 + floor)``. A 95 % percentile bootstrap
  interval of the p50 ratio (each side resampled independently, 2,000
  resamples, seed 0) is reported with it.
  The rank test treats every query as independent, but queries of one run
  share that run's process and machine state: on the 2-core CI machine two
  idle back-to-back runs of the same cell differ by 5-12 % in p50 with
  ``p < 1e-14``, so the test alone flags every pair and the floor does the
  work. Where a history of the cell on the same machine key exists
  (:func:`between_run_noise`, >= ``min_history`` earlier un-noisy runs), the
  floor is raised to what that history's night-to-night spread needs:
  ``exp(z * sigma) - 1``, with ``sigma`` the robust standard deviation
  (1.4826 x MAD) of the log p50 ratio of consecutive runs and ``z`` the
  two-sided normal quantile of ``alpha`` (3.09 at 0.002) — the floor a
  between-run test at the same significance level would need. The floor
  used and where it came from are in ``effect_floor_used`` /
  ``floor_source``. A side whose timed window was
  ``noisy`` (other processes used more than the threshold of CPU, see
  :mod:`evbench.harness.machine_state`) is not judged unless ``include_noisy``.
* **Accuracy** — paired on per-clip correctness (``pred == label`` of
  ``samples/<cell_id>.parquet``): exact McNemar test, i.e. a two-sided binomial
  test (``scipy.stats.binomtest``) of the discordant clips, ``p < alpha_accuracy``
  (default 0.05). The two sides must hold exactly the same clips (ids and
  labels); otherwise the cell is ``not comparable (different clips ...)``.
  Cells without accuracy (untrained weights) skip this.
* **GMACs per video** — exact (relative tolerance 1e-9 for float summation
  order): any change is ``cost changed``, listed with the decision statistics
  that moved (``exit_hist``, ``resolution_hist``, ``frames_used_hist``,
  ``frames_used``, the policy/backbone split).
* **Memory and energy** — ``peak_rss_mb``, ``peak_cuda_mb`` (MiB) and
  ``energy_j_per_clip`` (J) are reported as relative changes where both sides
  have them (one value per run: no test, no verdict).

The verdict is the first that applies of: ``not comparable (why)``,
``cost changed``, ``accuracy down``, ``slower``, ``accuracy up``, ``faster``,
``no change``. ``regression`` is set when the cell got slower, lost accuracy,
costs more GMACs, or failed in NEW (it was ok in BASE) — whatever its verdict
says first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evbench.harness.history import RunData
from scipy import stats

__all__ = ["VERDICTS", "CompareSettings", "RunNoise", "between_run_noise", "compare", "fails", "format_table",
           "latency_test", "mcnemar"]

VERDICTS = ("faster", "slower", "no change", "accuracy up", "accuracy down", "cost changed", "not comparable")
_GMACS_RTOL = 1e-9
_DECISION_SCALARS = ("frames_used", "gmacs_policy_per_video", "gmacs_backbone_per_video", "gmacs_input_per_video")
_RESOURCES = ("peak_rss_mb", "peak_cuda_mb", "energy_j_per_clip")


@dataclass(frozen=True)
class CompareSettings:
    """Thresholds of :func:`compare`.

    Attributes:
        effect_floor: Relative p50 change below which latency is ``no change``
            whatever the test says (0.10 = 10 %).
        alpha: Mann–Whitney U significance level for latency.
        alpha_accuracy: McNemar significance level for accuracy.
        include_noisy: Judge latency of noisy timing windows too.
        n_boot: Bootstrap resamples of the p50 ratio interval.
        seed: Bootstrap seed.
        min_samples: Fewest latency samples per side for a latency verdict.
        min_history: Fewest earlier un-noisy runs of a cell (same machine key)
            before its between-run spread may raise the floor.
    """

    effect_floor: float = 0.10
    alpha: float = 0.002
    alpha_accuracy: float = 0.05
    include_noisy: bool = False
    n_boot: int = 2000
    seed: int = 0
    min_samples: int = 8
    min_history: int = 5


@dataclass(frozen=True)
class RunNoise:
    """Night-to-night latency spread of one cell on one machine key.

    Attributes:
        sigma: Robust standard deviation (1.4826 x median absolute deviation)
            of ``log(p50[i+1] / p50[i])`` over consecutive runs, dimensionless.
        n_runs: Runs it was estimated from.
    """

    sigma: float
    n_runs: int

    def floor(self, alpha: float) -> float:
        """Relative effect floor a between-run change must exceed at two-sided level ``alpha`` (0.2 = 20 %)."""
        z = float(stats.norm.ppf(1.0 - alpha / 2.0))
        return math.expm1(z * self.sigma)


def between_run_noise(cells: pd.DataFrame, *, min_runs: int = 5) -> dict[tuple[str, str], RunNoise]:
    """Between-run p50 spread per (cell id, machine key) from a history.

    Only ``status == "ok"``, un-noisy rows with a finite positive
    ``latency_ms_p50`` count, in the order given (oldest first, as
    :meth:`evbench.harness.history.History.cells` returns them).

    Args:
        cells: History cells (``cell_id``, ``machine_key``, ``latency_ms_p50``
            in ms, ``noisy``, ``status``), oldest first.
        min_runs: Fewest runs for an estimate; cells with fewer are left out.

    Returns:
        ``{(cell_id, machine_key): RunNoise}``.
    """
    out: dict[tuple[str, str], RunNoise] = {}
    if cells.empty or "latency_ms_p50" not in cells:
        return out
    df = cells
    if "status" in df:
        df = df[df["status"].fillna("ok") == "ok"]
    if "noisy" in df:
        df = df[~df["noisy"].fillna(False).astype(bool)]
    p50 = pd.to_numeric(df["latency_ms_p50"], errors="coerce")
    df = df.assign(_p50=p50)[np.isfinite(p50) & (p50 > 0)]
    for (cid, key), grp in df.groupby(["cell_id", "machine_key"], sort=False):
        if len(grp) < max(min_runs, 3):
            continue
        d = np.diff(np.log(grp["_p50"].to_numpy(dtype=np.float64)))
        sigma = 1.4826 * float(np.median(np.abs(d - np.median(d))))
        out[(str(cid), str(key))] = RunNoise(sigma=sigma, n_runs=len(grp))
    return out


def latency_test(base_ms: Any, new_ms: Any, settings: CompareSettings = CompareSettings(),
                 *, floor: float | None = None) -> dict[str, Any]:
    """Mann–Whitney U + effect floor + bootstrap interval of the p50 ratio.

    Args:
        base_ms: BASE latency samples, ms, shape ``(n,)``.
        new_ms: NEW latency samples, ms, shape ``(m,)``.
        settings: Thresholds.
        floor: Effect floor to use instead of ``settings.effect_floor``
            (e.g. one raised from the history's between-run spread).

    Returns:
        ``p50_base`` / ``p50_new`` (ms), ``ratio`` (p50 new / base),
        ``ratio_ci_low`` / ``ratio_ci_high`` (95 % percentile bootstrap),
        ``mwu_p`` (two-sided), ``n_base`` / ``n_new`` and ``latency`` — one of
        ``"slower"``, ``"faster"``, ``"no change"``.

    Raises:
        ValueError: Fewer than ``settings.min_samples`` samples on a side.
    """
    a = np.asarray(base_ms, dtype=np.float64)
    b = np.asarray(new_ms, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(len(a), len(b)) < settings.min_samples:
        raise ValueError(f"too few latency samples ({len(a)} vs {len(b)}; need {settings.min_samples})")
    p50a, p50b = float(np.median(a)), float(np.median(b))
    ratio = p50b / p50a if p50a > 0 else math.inf
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    rng = np.random.default_rng(settings.seed)
    ma = np.median(a[rng.integers(0, len(a), (settings.n_boot, len(a)))], axis=1)
    mb = np.median(b[rng.integers(0, len(b), (settings.n_boot, len(b)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = np.percentile(mb / ma, [2.5, 97.5])
    floor = settings.effect_floor if floor is None else floor
    verdict = "no change"
    if p < settings.alpha and ratio >= 1.0 + floor:
        verdict = "slower"
    elif p < settings.alpha and ratio <= 1.0 / (1.0 + floor):
        verdict = "faster"
    return {"p50_base": p50a, "p50_new": p50b, "ratio": ratio, "ratio_ci_low": float(lo), "ratio_ci_high": float(hi),
            "mwu_p": p, "n_base": int(len(a)), "n_new": int(len(b)), "latency": verdict, "effect_floor_used": floor}


def mcnemar(base_correct: Any, new_correct: Any) -> dict[str, Any]:
    """Exact McNemar test on paired per-clip correctness.

    Args:
        base_correct: Bool per clip, shape ``(n,)``, BASE.
        new_correct: Bool per clip, shape ``(n,)``, NEW, same clip order.

    Returns:
        ``n_clips``, ``top1_base`` / ``top1_new`` (fractions 0-1 over these
        clips), ``lost`` (right in BASE, wrong in NEW), ``gained`` (the reverse)
        and ``mcnemar_p`` — two-sided exact binomial test of ``gained`` among
        ``lost + gained`` discordant clips at 0.5 (1.0 when none is discordant).

    Raises:
        ValueError: Different lengths.
    """
    a = np.asarray(base_correct, dtype=bool)
    b = np.asarray(new_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same clips: {a.shape} vs {b.shape}")
    lost, gained = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = float(stats.binomtest(gained, lost + gained, 0.5).pvalue) if lost + gained else 1.0
    return {"n_clips": int(a.size), "top1_base": float(a.mean()) if a.size else math.nan,
            "top1_new": float(b.mean()) if b.size else math.nan, "lost": lost, "gained": gained, "mcnemar_p": p}


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _machine_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(set(a) | set(b))
    return ", ".join(f"{k} {a.get(k)!s} -> {b.get(k)!s}" for k in keys if a.get(k) != b.get(k))


def _noisy_note(row: Mapping[str, Any], side: str) -> str:
    state = _json(row.get("machine_state")) or {}
    share = state.get("others_cpu_cores") if isinstance(state, Mapping) else None
    thr = state.get("noisy_threshold_cores") if isinstance(state, Mapping) else None
    what = f"other processes used {share:.2f} cores > {thr}" if share is not None and thr is not None else "flagged noisy"
    return f"noisy timing in {side}: {what}"


def _samples(value: Any) -> np.ndarray | None:
    """Latency samples as a float array, None when absent (None, NA, NaN, empty)."""
    if value is None or isinstance(value, (float, str)) or value is pd.NA:
        return None
    arr = np.asarray(value, dtype=np.float64)
    return arr if arr.ndim == 1 and arr.size else None


def _status(row: Mapping[str, Any]) -> str:
    v = row.get("status")
    return v if isinstance(v, str) and v else "ok"


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, (bool, np.bool_)) and bool(value))


def _clip_table(clips: pd.DataFrame, cell_id: str) -> pd.DataFrame:
    sub = clips[clips["cell_id"] == cell_id]
    return sub.drop_duplicates("clip_id", keep="last").set_index("clip_id")[["label", "pred"]]


def _compare_cell(b: Mapping[str, Any], n: Mapping[str, Any], clips_b: pd.DataFrame, clips_n: pd.DataFrame,
                  s: CompareSettings, noise: RunNoise | None) -> dict[str, Any]:
    out: dict[str, Any] = {"notes": []}
    if _status(b) != "ok" or _status(n) != "ok":
        if _status(n) != "ok" and _status(b) == "ok":
            out.update(verdict="not comparable (failed in NEW)", regression=True)
        elif _status(b) != "ok" and _status(n) != "ok":
            out.update(verdict="not comparable (failed in BASE and NEW)", regression=False)
        else:
            out.update(verdict="not comparable (failed in BASE)", regression=False)
        return out
    if b.get("machine_key") != n.get("machine_key"):
        diff = _machine_diff(_json(b.get("machine")) or {}, _json(n.get("machine")) or {})
        out.update(verdict=f"not comparable (machine differs: {diff or 'machine key'})", regression=False)
        return out

    # same clips?
    cb, cn = _clip_table(clips_b, b["cell_id"]), _clip_table(clips_n, n["cell_id"])
    if len(cb) and len(cn):
        only_b, only_n = cb.index.difference(cn.index), cn.index.difference(cb.index)
        if len(only_b) or len(only_n):
            out.update(verdict=f"not comparable (different clips: {len(only_b)} only in BASE, {len(only_n)} only in NEW)",
                       regression=False)
            return out
        cn = cn.loc[cb.index]
        if not np.array_equal(cb["label"].to_numpy(), cn["label"].to_numpy()):
            out.update(verdict="not comparable (different clips: same ids, different labels)", regression=False)
            return out

    facets: set[str] = set()
    regression = False
    # cost
    gb, gn = _num(b.get("gmacs_per_video")), _num(n.get("gmacs_per_video"))
    out.update(gmacs_base=gb, gmacs_new=gn)
    if gb is not None and gn is not None and not math.isclose(gb, gn, rel_tol=_GMACS_RTOL, abs_tol=1e-12):
        facets.add("cost changed")
        regression |= gn > gb
        moved = []
        db, dn = _json(b.get("decisions")) or {}, _json(n.get("decisions")) or {}
        for k in sorted(set(db) | set(dn)):
            if db.get(k) != dn.get(k):
                moved.append(f"{k} {json.dumps(db.get(k), sort_keys=True)} -> {json.dumps(dn.get(k), sort_keys=True)}")
        for k in _DECISION_SCALARS:
            vb, vn = _num(b.get(k)), _num(n.get(k))
            if vb is not None and vn is not None and not math.isclose(vb, vn, rel_tol=_GMACS_RTOL, abs_tol=1e-12):
                moved.append(f"{k} {vb:.6g} -> {vn:.6g}")
        out["decisions_moved"] = moved
        out["notes"].append(f"GMACs/video {gb:.6g} -> {gn:.6g} ({(gn / gb - 1) * 100 if gb else math.inf:+.2f} %)"
                            + (f"; moved: {'; '.join(moved)}" if moved else "; no decision statistic moved"))

    # accuracy
    if len(cb) and len(cn) and _num(b.get("top1")) is not None and _num(n.get("top1")) is not None:
        acc = mcnemar(cb["pred"].to_numpy() == cb["label"].to_numpy(), cn["pred"].to_numpy() == cn["label"].to_numpy())
        out.update({f"acc_{k}": v for k, v in acc.items()})
        out.update(top1_base=_num(b.get("top1")), top1_new=_num(n.get("top1")))
        if acc["mcnemar_p"] < s.alpha_accuracy and acc["gained"] != acc["lost"]:
            up = acc["gained"] > acc["lost"]
            facets.add("accuracy up" if up else "accuracy down")
            regression |= not up
    elif _num(b.get("top1")) is not None and _num(n.get("top1")) is not None:
        out["notes"].append("accuracy not tested: per-clip outcomes missing on a side")

    # latency
    sb, sn = _samples(b.get("latency_samples_ms")), _samples(n.get("latency_samples_ms"))
    if sb is not None and sn is not None:
        noisy = [side for side, row in (("BASE", b), ("NEW", n)) if _is_true(row.get("noisy"))]
        floor, source = s.effect_floor, "default"
        if noise is not None and noise.floor(s.alpha) > floor:
            floor = noise.floor(s.alpha)
            source = (f"history: sigma of the run-to-run log p50 ratio {noise.sigma * 100:.1f} % over "
                      f"{noise.n_runs} runs -> floor {floor * 100:.1f} %")
        out["floor_source"] = source
        if source != "default":
            out["notes"].append(f"latency effect floor raised: {source}")
        try:
            lat = latency_test(sb, sn, s, floor=floor)
        except ValueError as exc:
            out["notes"].append(f"latency not tested: {exc}")
        else:
            out.update(lat)
            if noisy and not s.include_noisy:
                out["latency"] = "noisy"
                facets.add("noisy")
                out["notes"] += [_noisy_note(row, side) for side, row in (("BASE", b), ("NEW", n)) if side in noisy]
            elif lat["latency"] != "no change":
                facets.add(lat["latency"])
                regression |= lat["latency"] == "slower"
            if noisy and s.include_noisy:
                out["notes"].append("judged although noisy (--include-noisy): " + ", ".join(noisy))
    for k in _RESOURCES:
        vb, vn = _num(b.get(k)), _num(n.get(k))
        if vb is not None and vn is not None and vb > 0:
            out[f"{k}_change"] = vn / vb - 1.0
    for verdict in ("cost changed", "accuracy down", "slower", "accuracy up", "faster"):
        if verdict in facets:
            out["verdict"] = verdict
            break
    else:
        noisy_sides = [side for side, row in (("BASE", b), ("NEW", n)) if _is_true(row.get("noisy"))]
        out["verdict"] = f"not comparable (noisy timing in {' and '.join(noisy_sides)})" \
            if "noisy" in facets else "no change"
    out["regression"] = bool(regression)
    out["noisy"] = "noisy" in facets
    return out


def compare(base: RunData, new: RunData, settings: CompareSettings = CompareSettings(),
            noise: Mapping[tuple[str, str], RunNoise] | None = None) -> pd.DataFrame:
    """Compare two runs cell by cell.

    Args:
        base: The reference run (:func:`evbench.harness.history.run_data` or
            :meth:`evbench.harness.history.History.run`).
        new: The run under test.
        settings: Thresholds.
        noise: Between-run spread per ``(cell_id, machine_key)``
            (:func:`between_run_noise` over the history up to BASE); a cell's
            latency floor is raised to ``noise.floor(alpha)`` where that is
            above ``settings.effect_floor``.

    Returns:
        One row per cell id in either run: ``cell_id``, ``label``, ``dataset``,
        ``verdict``, ``regression`` (bool), ``noisy`` (latency not judged),
        ``notes`` (list of str) and the statistics: ``p50_base`` / ``p50_new``
        (ms), ``ratio`` with ``ratio_ci_low`` / ``ratio_ci_high``, ``mwu_p``,
        ``top1_base`` / ``top1_new`` (0-1), ``acc_lost`` / ``acc_gained`` /
        ``acc_mcnemar_p``, ``gmacs_base`` / ``gmacs_new`` (GMACs per video),
        ``decisions_moved``, ``peak_rss_mb_change`` ... (relative),
        ``effect_floor_used`` and ``floor_source``. Sorted with regressions
        first.
    """
    bc = {r["cell_id"]: r for r in base.cells.to_dict("records")}
    nc = {r["cell_id"]: r for r in new.cells.to_dict("records")}
    rows = []
    for cid in list(dict.fromkeys([*bc, *nc])):
        b, n = bc.get(cid), nc.get(cid)
        ref = n or b or {}
        rec = {"cell_id": cid, "label": ref.get("label"), "dataset": ref.get("dataset")}
        if b is None or n is None:
            rec.update(verdict=f"not comparable (only in {'NEW' if b is None else 'BASE'})", regression=False,
                       noisy=False, notes=[])
        else:
            cell_noise = (noise or {}).get((str(cid), str(b.get("machine_key"))))
            rec.update(_compare_cell(b, n, base.clips, new.clips, settings, cell_noise))
        rows.append(rec)
    df = pd.DataFrame.from_records(rows)
    if df.empty:
        return pd.DataFrame(columns=["cell_id", "label", "dataset", "verdict", "regression", "noisy", "notes"])
    df["noisy"] = df.get("noisy", False)
    df["noisy"] = df["noisy"].fillna(False).astype(bool)
    order = {"cost changed": 1, "accuracy down": 1, "slower": 1}
    df["_k"] = [0 if r else order.get(v, 2 if v.startswith("not comparable") else 3) for r, v in zip(df["regression"], df["verdict"], strict=False)]
    return df.sort_values(["_k", "dataset", "label"], kind="stable").drop(columns="_k").reset_index(drop=True)


def fails(result: pd.DataFrame, fail_on: str | None) -> bool:
    """Whether ``--fail-on`` matches: ``"regression"`` or ``"any"`` (any verdict but ``no change``).

    ``"regression"`` matches any cell with ``regression`` *and* any cell whose
    latency could not be judged because a timing window was ``noisy``: a gate
    fails closed — a night timed under competing load cannot vouch that
    nothing got slower (its verdict stays ``not comparable (noisy ...)``; it
    is never called ``slower``).

    Raises:
        ValueError: Unknown ``fail_on``.
    """
    if fail_on is None:
        return False
    if fail_on == "regression":
        return bool((result["regression"] | result["noisy"]).any()) if len(result) else False
    if fail_on == "any":
        return bool((result["verdict"] != "no change").any()) if len(result) else False
    raise ValueError(f"--fail-on must be regression or any, got {fail_on!r}")


def _fmt(v: Any, spec: str) -> str:
    x = _num(v)
    return "—" if x is None else format(x, spec)


def format_table(result: pd.DataFrame) -> str:
    """Plain-text table of :func:`compare`'s result (pandas ``to_string``), notes below it."""
    if result.empty:
        return "(no cells)"
    get = lambda col: result[col] if col in result else pd.Series([None] * len(result))  # noqa: E731
    table = pd.DataFrame({
        "cell": [f"{lab} [{cid}]" for lab, cid in zip(result["label"].fillna(""), result["cell_id"], strict=False)],
        "dataset": result["dataset"].fillna(""),
        "verdict": [v + (" !" if r else "") for v, r in zip(result["verdict"], result["regression"], strict=False)],
        "p50 ms base->new": [f"{_fmt(a, '.2f')} -> {_fmt(b, '.2f')}" for a, b in zip(get("p50_base"), get("p50_new"), strict=False)],
        "ratio [95% CI]": [f"{_fmt(r, '.3f')} [{_fmt(lo, '.3f')}, {_fmt(hi, '.3f')}]" if _num(r) is not None else "—"
                           for r, lo, hi in zip(get("ratio"), get("ratio_ci_low"), get("ratio_ci_high"), strict=False)],
        "MWU p": [_fmt(p, ".2g") for p in get("mwu_p")],
        "top1 base->new": [f"{_fmt(a, '.3f')} -> {_fmt(b, '.3f')}" if _num(a) is not None else "—"
                           for a, b in zip(get("top1_base"), get("top1_new"), strict=False)],
        "McNemar p": [_fmt(p, ".2g") for p in get("acc_mcnemar_p")],
        "GMACs/video base->new": [f"{_fmt(a, '.4g')} -> {_fmt(b, '.4g')}" if _num(a) is not None else "—"
                                  for a, b in zip(get("gmacs_base"), get("gmacs_new"), strict=False)],
    })
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        text = table.to_string(index=False)
    notes = [f"  [{cid}] {note}" for cid, ns in zip(result["cell_id"], result["notes"], strict=False) for note in (ns or [])]
    counts = result["verdict"].str.replace(r" \(.*", "", regex=True).value_counts()
    summary = ", ".join(f"{v}: {c}" for v, c in counts.items())
    text += f"\n\n{len(result)} cells — {summary}; regressions (!): {int(result['regression'].sum())}"
    return text + ("\nnotes:\n" + "\n".join(notes) if notes else "")
