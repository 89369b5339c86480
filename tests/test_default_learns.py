"""The default suite learns (issue 14 item 2), on a reduced suite: its dataset, recipe and knobs, no profiling.

The reduced suite is ``bench/suites/default.toml`` with the latency, offline and
breakdown measurements switched off (they do not change accuracy or GMACs), run
twice from an empty cache: the second run must take every backbone from the
cache (``backbone_reused``) and give the same accuracies.  What is asserted is the
shape of the result the issue asks for, not wall time.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ADAPTIVE = ("arnet", "liteeval", "rsee", "tlee", "frameexit", "dyngrid")
EARLY_EXIT = ("rsee", "tlee", "frameexit", "dyngrid")


def _reduced_suite(tmp_path: Path) -> Path:
    text = (resources.files("evbench.bench") / "suites" / "default.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    head, _, rest = text.partition("\n[measure]\n")  # the table's own line, not a comment naming it
    _, _, methods = rest.partition("[[methods]]")
    assert data["dataset"] == "generated" and methods
    measure = ("[measure]\nlatency = false\noffline = false\nbreakdown = false\n"
               f"eval_batch_size = {data['measure'].get('eval_batch_size', 8)}\n\n")
    path = tmp_path / "reduced.toml"
    path.write_text(head.replace('name = "default"', 'name = "default-reduced"') + "\n" + measure + "[[methods]]" + methods,
                    encoding="utf-8")
    return path


def _rows(out: Path):
    from evbench.harness.results import load

    df = load(out)
    assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", ["label", "error"]].to_string()
    return df


OPT_IN = "EVBENCH_DEFAULT_SUITE_TEST"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(OPT_IN),
                    reason=f"trains the whole default suite twice (two full default runs took 673 s + 458 s on a 2-core AMD EPYC VM; its accuracy thresholds were met with this recipe and dataset there; another CPU trains with other float bits); "
                           f"set {OPT_IN}=1 to run it")
def test_default_suite_learns_and_reuses_its_backbones(tmp_path):
    from evbench.harness.cli import main

    suite = _reduced_suite(tmp_path)
    cache = tmp_path / "cache"
    args = ["run", "--suite", str(suite), "--cache-dir", str(cache), "--quiet", "--no-report"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    df = _rows(tmp_path / "first")
    num_classes = 6
    chance = 1 / num_classes

    uni = df[df["method"] == "uniform"]
    best = uni.loc[uni["top1"].idxmax()]
    half_width = (best["top1_ci_high"] - best["top1_ci_low"]) / 2
    assert best["num_videos"] >= 150 and best["top1"] >= 0.80 and half_width <= 0.07, best[["label", "top1"]]

    for name in ADAPTIVE:
        rows = df[df["method"] == name]
        gm = rows["gmacs_per_video"]
        assert gm.min() <= 0.6 * gm.max(), (name, gm.tolist())
    for name in ("arnet", "liteeval"):
        assert df[df["method"] == name]["top1"].max() >= chance + 0.20, name
    rsee = df[df["method"] == "rsee"]
    cheapest = rsee.loc[rsee["gmacs_per_video"].idxmin()]
    assert cheapest["exit_hist"].get("confidence", 0) > 0, cheapest["exit_hist"]
    used = {r for hist in rsee["resolution_hist"] for r, n in (hist or {}).items() if n}
    assert len(used) >= 2, rsee["resolution_hist"].tolist()
    for name in EARLY_EXIT:
        rows = df[df["method"] == name]
        assert rows["gmacs_per_video"].round(6).nunique() > 1, (name, rows["gmacs_per_video"].tolist())

    # the backbones were cached: a second run (new run folder) trains none of them
    assert main([*args, "--out", str(tmp_path / "second")]) == 0
    again = _rows(tmp_path / "second")
    trained = again[again["trained"] & (again["method"] != "uniform_stream")]
    assert trained["backbone_reused"].dropna().all() and trained["backbone_reused"].notna().any()
    first_top1 = df.set_index("cell_id")["top1"]
    assert (again.set_index("cell_id")["top1"] - first_top1).abs().max() == 0
