"""Tests of the reports package: frontier logic, plots and the HTML page."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evbench.harness.results import ResultStore, load
from evbench.reports import pareto_frontier, plot_histograms, plot_pareto, write_report

XSS = "<script>alert(1)</script>"

ENV = {
    "cpu_model": "Test CPU @ 3GHz",
    "torch": "2.9.0",
    "threads": 4,
    "device": "cpu",
    "gpu_name": None,
    "git_commit": "abc1234",
    "time": "2025-01-02T03:04:05+00:00",
}


def _row(cell_id: str, method: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "cell_id": cell_id,
        "status": "ok",
        "suite": "smoke",
        "method": method,
        "label": f"{method} cell {cell_id}",
        "config": "lite",
        "knobs": {},
        "overrides": {},
        "dataset": "synthetic-ucf",
        "dataset_synthetic": True,
        "dataset_note": "validation split carved from train.npz <20%> & stratified",
        "device": "cpu",
        "backend": "torch",
        "modeled": False,
        "num_videos": 40,
        "env": dict(ENV),
    }
    row.update(values)
    return row


def build_run(root: Path) -> Path:
    """A small run: uniform sweep, an adaptive method, an XSS name, a modeled row, a failure."""
    store = ResultStore(root)
    store.append(
        _row(
            "u1",
            "uniform",
            overrides={"frames": 4},
            top1=0.50,
            top1_ci_low=0.40,
            top1_ci_high=0.60,
            gmacs_per_video=4.0,
            frames_used=4,
            frames_total=8,
            latency_ms_p50=10.0,
            latency_ms_p90=12.0,
            threads=4,
        )
    )
    store.append(
        _row(
            "u2",
            "uniform",
            overrides={"frames": 8},
            top1=0.70,
            top1_ci_low=0.60,
            top1_ci_high=0.80,
            gmacs_per_video=8.0,
            frames_used=8,
            frames_total=8,
            latency_ms_p50=20.0,
            threads=4,
            data_errors=[{"path": "/data/bad<clip>.avi", "error": "moov atom not found"}],
        )
    )
    store.append(
        _row(
            "a1",
            "rsee",
            knobs={"threshold": 0.9},
            top1=0.62,
            gmacs_per_video=3.0,
            frames_used=3.2,
            frames_total=8,
            latency_ms_p50=float("nan"),
            resolution_hist={"224": 10, "112": 25, "84": 5},
            exit_hist={"1": 12, "4": 20, "8": 8},
        )
    )
    store.append(
        _row(
            "a2",
            "rsee",
            knobs={"threshold": 0.5},
            top1=0.55,
            gmacs_per_video=5.0,
            frames_used=5.0,
            frames_total=8,
        )  # dominated by a1
    )
    store.append(
        _row(
            "x1",
            XSS,
            top1=0.3,
            gmacs_per_video=1.0,
            frames_used=1,
            config=XSS,
            knobs={"k": XSS},
            dataset_note=XSS,
        )
    )
    store.append(
        _row(
            "m1",
            "rsee",
            knobs={"threshold": 0.9},
            device="jetson-nano",
            modeled=True,
            top1=0.62,
            gmacs_per_video=3.0,
            frames_used=3.2,
            latency_ms_p50=80.0,
        )
    )
    store.append(
        _row(
            "f1",
            "arnet",
            status="error",
            error=f"RuntimeError: boom {XSS}",
            top1=None,
            gmacs_per_video=None,
        )
    )
    store.append(
        _row(
            "r1",
            "tsn",
            dataset="real-clips",
            dataset_synthetic=False,
            dataset_note=None,
            top1=0.8,
            gmacs_per_video=33.0,
            frames_used=16,
            per_file=[
                {"id": "v1", "path": "/clips/a.mp4", "decode_ms": 12.5, "frames": 90},
                {"id": "v2", "path": "/clips/b.avi", "decode_ms": 7.5, "frames": 36},
                {"id": "v3", "path": "/clips/c.avi", "decode_ms": None, "frames": 0},
            ],
            data_errors=[{"path": "/clips/empty.mp4", "error": "no video stream"}],
        )
    )
    return root


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return build_run(tmp_path / "run")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("report")
    index = write_report(build_run(root / "run"), root / "report", title=f"Nightly {XSS}")
    return index, index.read_text(encoding="utf-8")


def test_frontier_hand_example() -> None:
    df = pd.DataFrame(
        {
            "name": ["a", "b", "c", "d", "e", "f", "g"],
            "cost": [1.0, 2.0, 2.0, 3.0, 4.0, np.nan, 0.5],
            "q": [0.5, 0.7, 0.6, 0.7, 0.9, 0.99, np.nan],
        }
    )
    front = pareto_frontier(df, cost="cost", quality="q")
    # c: same cost as b, lower quality; d: costlier than b, same quality; f/g: NaN.
    assert front["name"].tolist() == ["a", "b", "e"]
    assert front["cost"].is_monotonic_increasing


def test_frontier_keeps_exact_ties_and_handles_missing_columns() -> None:
    df = pd.DataFrame({"cost": [1.0, 1.0, 2.0], "q": [0.5, 0.5, 0.4]})
    assert pareto_frontier(df, cost="cost", quality="q").index.tolist() == [0, 1]
    assert pareto_frontier(df, cost="nope", quality="q").empty
    assert pareto_frontier(df.iloc[0:0], cost="cost", quality="q").empty


def test_index_references_existing_pngs(report: tuple[Path, str]) -> None:
    index, page = report
    assert index.name == "index.html"
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images, "report has no figures"
    for name in images:
        assert (index.parent / name).is_file(), name
        assert name.endswith(".png")
    assert any("decisions_resolution_hist" in n for n in images)
    assert any("decisions_exit_hist" in n for n in images)
    for link in re.findall(r'href="([^"#]+\.svg)"', page):
        assert (index.parent / link).is_file()


def test_data_strings_are_escaped(report: tuple[Path, str]) -> None:
    _, page = report
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "bad&lt;clip&gt;.avi" in page  # data-error path escaped and visible
    assert "&lt;20%&gt; &amp; stratified" in page  # dataset note verbatim, escaped


def test_header_failures_and_errors_visible(report: tuple[Path, str]) -> None:
    _, page = report
    assert "SYNTHETIC DATA" in page
    assert "7 ok" in page and "1 failed" in page
    assert "Test CPU @ 3GHz" in page and "abc1234" in page and "2.9.0" in page
    assert "2025-01-02 03:04:05 UTC" in page
    assert "RuntimeError: boom" in page
    assert "moov atom not found" in page and "/clips/empty.mp4" in page
    assert "modeled" in page


def test_units_legend_and_not_measured(report: tuple[Path, str]) -> None:
    _, page = report
    assert 'id="units"' in page
    assert "GMACs (1e9 multiply-accumulates) per video" in page  # UNITS text in legend
    assert 'class="units"' in page  # unit header row
    assert "not measured" in page and "—" in page
    assert "50.00" in page  # top1 0.5 shown as percent
    assert "4.00" in page  # GMACs 3 significant digits


def test_csvs_written(report: tuple[Path, str]) -> None:
    index, _ = report
    flat = pd.read_csv(index.parent / "results.csv")
    assert len(flat) == 8
    assert {"top1", "gmacs_per_video", "cell_id"} <= set(flat.columns)
    front = pd.read_csv(index.parent / "frontier.csv")
    gm = front[
        (front["frontier"] == "gmacs_per_video") & (front["dataset_section"] == "synthetic-ucf")
    ]
    assert set(gm["cell_id"]) == {"x1", "a1", "u2"}  # a2, u1 dominated; m1 deduplicated
    assert "f1" not in set(front["cell_id"])  # failed cells never on a frontier
    units = pd.read_csv(index.parent / "units.csv")
    assert "top1" in set(units["column"])
    per_file = pd.read_csv(index.parent / "per_file.csv")
    assert len(per_file) == 3


def test_per_file_decode_section(report: tuple[Path, str]) -> None:
    _, page = report
    assert 'id="decode"' in page
    assert "/clips/a.mp4" in page
    assert "10.00" in page  # mean of 12.5 and 7.5


def test_minimal_dataframe_without_optional_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"cell_id": ["a", "b"], "top1": [0.4, np.nan], "frames_used": [2, 4]})
    index = write_report(df, tmp_path / "out")
    page = index.read_text(encoding="utf-8")
    assert "not measured" in page
    assert (tmp_path / "out" / "frontier.csv").is_file()


def test_empty_and_failed_only_runs(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    store.append({"cell_id": "z", "status": "error", "error": "OOM", "method": "m"})
    page = write_report(tmp_path / "r", tmp_path / "o").read_text(encoding="utf-8")
    assert "OOM" in page and "0 ok" in page


def test_plot_functions_write_files(run_dir: Path, tmp_path: Path) -> None:
    df = load(run_dir)
    paths = plot_pareto(
        df,
        cost="gmacs_per_video",
        quality="top1",
        out_stem=tmp_path / "p",
        title="t $x$",
        xlabel="GMACs",
        ylabel="top-1 (%)",
        logx=True,
    )
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size for p in paths)
    assert (
        plot_histograms(
            df.drop(columns=["resolution_hist", "exit_hist"]), out_stem=tmp_path / "h", title="t"
        )
        == []
    )
    assert len(plot_histograms(df, out_stem=tmp_path / "h", title="t")) == 4


def test_odd_values_and_hostile_names_do_not_break_the_page(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "cell_id": ["a", "b", "c"],
            "status": ["ok", "ok", None],
            "method": [XSS, "m$x$", "m"],
            "dataset": [XSS, XSS, None],
            "device": [f"{XSS}/dev", None, "cpu"],
            "knobs": [{"thr": 0.5}, "not json", None],
            "top1": [0.5, "0.6", np.nan],
            "gmacs_per_video": [1.0, 2.0, 3.0],
            "latency_ms_p50": [1.0, 2.0, None],
            "resolution_hist": ['{"224": 3, "112": "x"}', "garbage", None],
            "per_file": ['[{"id": "v", "path": "<p>.avi", "decode_ms": "slow"}]', None, None],
            "data_errors": [["plain string error"], "[]", None],
            "env_time": ["yesterday", 1.7e9, None],
            "modeled": [True, False, None],  # typed rows (results.load): bools, never "true" strings
        }
    )
    index = write_report(df, tmp_path / "o")
    page = index.read_text(encoding="utf-8")
    assert "<script>" not in page and "<p>.avi" not in page
    assert "plain string error" in page
    assert "(modeled)" in page
    for name in re.findall(r'<img src="([^"]+)"', page):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        assert (index.parent / name).is_file()


def test_a_folder_with_only_claim_verdicts_renders(tmp_path):
    (tmp_path / "claims.jsonl").write_text(
        '{"id": "x-1", "paper": "arnet", "paper_title": "<b>AR-Net</b>", "verdict": "reproduced", "claimed": 4.11,'
        ' "measured": 4.109, "unit": "GMACs", "source": "Table 1", "quantity": "GMACs", "tolerance": "1 %"}\n')
    page = write_report(tmp_path, tmp_path / "report").read_text()
    assert 'href="#claims"' in page and "4.109" in page
    assert "<b>AR-Net</b>" not in page  # escaped
