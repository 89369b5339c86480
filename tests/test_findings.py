"""The report's first screen (reports/findings.py) and the oracle overlay on the generated dataset's plots."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from evbench.harness.results import ResultStore
from evbench.reports import write_report
from evbench.reports.findings import findings
from evbench.reports.plots import oracle_points, plot_pareto

XSS = "<script>alert(1)</script>"


def _row(cell_id: str, method: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "cell_id": cell_id, "status": "ok", "suite": "t", "method": method, "config": "lite", "knobs": {},
        "overrides": {}, "dataset": "generated", "dataset_synthetic": True, "device": "cpu", "backend": "torch",
        "modeled": False, "num_videos": 150,
    }
    row.update(values)
    return row


ORACLE = {"oracle_gmacs_per_video": 0.3, "oracle_evidence_fraction": 1.0}


def _rows() -> list[dict[str, object]]:
    return [
        _row("u2", "uniform", knobs={"frames": 2}, top1=0.60, top1_ci_low=0.52, top1_ci_high=0.68,
             gmacs_per_video=1.0, latency_ms_p50=5.0, oracle_gap=1.0 / 0.4, evidence_seen_fraction=0.7,
             oracle_gmacs_per_video=0.4, oracle_evidence_fraction=1.0),
        _row("u4", "uniform", knobs={"frames": 4}, top1=0.80, top1_ci_low=0.74, top1_ci_high=0.86,
             gmacs_per_video=2.0, latency_ms_p50=9.0, oracle_gmacs_per_video=0.4, oracle_evidence_fraction=1.0,
             oracle_gap=5.0, evidence_seen_fraction=1.0),
        _row("a1", "arnet", knobs={"cheap_bias": 2.0}, top1=0.70, gmacs_per_video=0.5, latency_ms_p50=8.0,
             oracle_gap=0.5 / 0.3, evidence_seen_fraction=0.6, **ORACLE),
        _row("a2", "arnet", knobs={"cheap_bias": 0.0}, top1=0.75, gmacs_per_video=0.9, latency_ms_p50=12.0,
             oracle_gap=3.0, evidence_seen_fraction=0.9, **ORACLE),
        _row("r1", "rsee", knobs={"threshold": 0.9}, top1=0.90, gmacs_per_video=1.2, latency_ms_p50=4.0,
             oracle_gmacs_per_video=0.25, oracle_evidence_fraction=1.0, oracle_gap=4.8, evidence_seen_fraction=1.0),
        _row("x1", XSS, config=XSS, top1=0.65, gmacs_per_video=0.6, latency_ms_p50=3.0),
        _row("t1", "tlee", top1=None, gmacs_per_video=0.7, latency_ms_p50=6.0),
        _row("f1", "frameexit", dataset="ucf101-features", dataset_synthetic=False, top1=0.9, gmacs_per_video=30.0,
             latency_ms_p50=2.0, oracle_note="not computed: dataset 'ucf101-features' has no generator manifest"),
    ]


def _by_method(items) -> dict[str, str]:
    return {f.method: f.sentence for f in items}


def test_one_sentence_per_method_with_best_point_uniform_ratio_and_latency() -> None:
    items = findings(pd.DataFrame(_rows()))
    s = _by_method(items)
    assert {"uniform [lite]", "arnet [lite]", "rsee [lite]", "tlee [lite]", f"{XSS} [{XSS}]",
            "frameexit [lite]"} == set(s)
    arnet = s["arnet [lite]"]
    # best point: the higher top-1 (75 %), compared with the cheapest uniform cell at >= 75 %: frames=4, 2 GMACs
    assert "75.00 % top-1" in arnet and "0.900 GMACs/video" in arnet
    assert "0.45× the GMACs (55 % fewer)" in arnet and "(uniform [lite] T=4:" in arnet and "point cheap_bias=0 reaches" in arnet
    assert "1.33× the uniform cell's (12.00 vs 9.00 ms, cpu)" in arnet
    assert "not realised" in arnet
    assert "3.00× the oracle bound" in arnet and "90.00 % of test videos" in arnet


def test_honest_wording_without_an_equal_accuracy_uniform_point() -> None:
    s = _by_method(findings(pd.DataFrame(_rows())))
    rsee = s["rsee [lite]"]
    assert "no uniform cell reaches that accuracy" in rsee and "no equal-accuracy cost ratio" in rsee
    assert "80.00 % top-1" in rsee  # names the best uniform cell instead
    assert "accuracy not measured" in s["tlee [lite]"]
    assert "no uniform baseline was measured" in s["frameexit [lite]"]
    assert "the reference" in s["uniform [lite]"]


def test_speed_up_is_reported_when_realised() -> None:
    s = _by_method(findings(pd.DataFrame(_rows())))
    # 65 % top-1 at 0.6 GMACs vs the cheapest uniform cell at >= 65 %: frames=4, 2 GMACs, 9 ms
    assert "0.30× the GMACs (70 % fewer)" in s[f"{XSS} [{XSS}]"]
    assert "realised speed-up of 3.00×" in s[f"{XSS} [{XSS}]"]


@pytest.fixture()
def page(tmp_path: Path) -> str:
    store = ResultStore(tmp_path / "run")
    for r in _rows():
        store.append(r)
    index = write_report(tmp_path / "run", tmp_path / "report")
    return index.read_text(encoding="utf-8")


def test_findings_are_on_the_first_screen_and_escaped(page: str) -> None:
    assert "What this run found" in page
    first_img = page.index("<img")
    assert page.index('id="findings"') < first_img and page.index("Run directory") > page.index('id="findings"')
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    block = page[page.index('id="findings"'):page.index("</section>", page.index('id="findings"'))]
    assert len(re.findall(r"<li>", block)) == 6  # one sentence per method and dataset
    assert "0.45× the GMACs (55 % fewer)" in block


def test_generated_dataset_section_has_the_oracle_overlay_and_table(page: str) -> None:
    assert "Oracle bound" in page and "Stars and dotted verticals: the oracle bound" in page
    assert "oracle can see %" in page
    # the real-data section says why it has no oracle
    assert "no generator manifest" in page


def test_oracle_points_and_their_frontier(tmp_path: Path) -> None:
    df = pd.DataFrame(_rows())
    pts = oracle_points(df[df["dataset"] == "generated"])
    assert set(pts["method"]) == {"uniform", "arnet", "rsee"}
    assert pts.set_index("method").loc["arnet", "x"] == pytest.approx(0.3)
    with_o = plot_pareto(df, cost="gmacs_per_video", quality="top1", out_stem=tmp_path / "o", title="t",
                         xlabel="x", ylabel="y", oracle=True)
    without = plot_pareto(df, cost="gmacs_per_video", quality="top1", out_stem=tmp_path / "n", title="t",
                          xlabel="x", ylabel="y", oracle=False)
    assert with_o[1].read_bytes() != without[1].read_bytes()


def test_an_adaptive_method_built_two_ways_gets_one_sentence_per_build() -> None:
    rows = [
        _row("u1", "uniform", config="features", overrides={"frames": 1}, top1=0.90, gmacs_per_video=77.0),
        _row("u2", "uniform", config="features", overrides={"frames": 2}, top1=0.93, gmacs_per_video=155.0),
        _row("c1", "arnet", config="features", knobs={"cheap_bias": 4.0}, top1=0.91, gmacs_per_video=26.0),
        _row("f1", "arnet", config="features", overrides={"policy_input": "full"}, knobs={"cheap_bias": 1.0},
             top1=0.93, gmacs_per_video=1075.0),
    ]
    s = _by_method(findings(pd.DataFrame(rows)))
    assert set(s) == {"uniform [features]", "arnet [features]", "arnet [features, policy_input=full]"}
    assert "26.0 GMACs/video" in s["arnet [features]"] and "1075" not in s["arnet [features]"]
    assert "1075 GMACs/video" in s["arnet [features, policy_input=full]"]
