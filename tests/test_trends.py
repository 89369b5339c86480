"""Change points over a 30-night history (step at night 20) and the trend pages that draw them."""

from __future__ import annotations

import datetime as dt

import pytest
from evbench.harness.changepoints import detect_changes, series_steps
from evbench.harness.cli import main
from evbench.harness.history import History, history
from nightly_helpers import night_rows, real_rows, write_run

STEP_NIGHT = 20
STEP_COMMIT = "c0ffee" + "0" * 34


@pytest.fixture(scope="module")
def thirty_nights(tmp_path_factory):
    """30 nights of 2 real cells; from night 20 on (commit c0ffee...) latency is 25 % higher."""
    root = tmp_path_factory.mktemp("nights")
    rows = real_rows(2)
    t0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)
    with History(root / "history") as h:
        for night in range(30):
            started = (t0 + dt.timedelta(days=night)).strftime("%Y-%m-%dT%H:%M:%SZ")
            commit = STEP_COMMIT if night == STEP_NIGHT else f"{night:02d}" + "a" * 38
            rows_n = night_rows(rows, seed=night, shift=1.25 if night >= STEP_NIGHT else 1.0, started=started,
                                commit=commit, noisy=night == 5)
            h.add_run(write_run(root / f"night{night:02d}", rows_n))
    return root / "history", rows


def test_series_steps_flat_and_step():
    assert series_steps([1.0] * 30) == []
    assert series_steps([1.0, 1.0, 2.0, 2.0]) == []  # too short to search
    (pos, before, after), = series_steps([1.0] * 20 + [2.0] * 10)
    assert (pos, before, after) == (20, 1.0, 2.0)


def test_step_found_at_night_20_with_its_commit(thirty_nights):
    root, rows = thirty_nights
    hist = history(root)
    assert hist["run_id"].nunique() == 30
    steps = detect_changes(hist)
    lat = steps[steps["metric"] == "latency_ms_p50"]
    assert sorted(lat["cell_id"]) == sorted(r["cell_id"] for r in rows)
    assert set(lat["position"]) == {STEP_NIGHT}
    assert set(lat["commit"]) == {STEP_COMMIT}
    assert ((lat["rel_change"] > 0.15) & (lat["rel_change"] < 0.35)).all()
    assert steps[steps["metric"] != "latency_ms_p50"].empty  # top-1 and GMACs did not move


def test_trend_page_draws_the_step_and_lists_the_latest_night(thirty_nights, tmp_path, capsys):
    root, rows = thirty_nights
    out = tmp_path / "trends"
    assert main(["report", "--history", str(root), "--out", str(out),
                 "--commit-url", "https://example.org/evbench/commit/{commit}"]) == 0
    assert "trends:" in capsys.readouterr().out
    index = (out / "index.html").read_text()
    assert "Latest night" in index and "30 runs" in index
    pages = [p for p in out.glob("*.html") if p.name != "index.html"]
    assert len(pages) == 1 and "generated" in pages[0].name
    page = pages[0].read_text()
    assert page.index("Latest night") < page.index("Detected steps") < page.index('id="cells"')
    assert f"https://example.org/evbench/commit/{STEP_COMMIT}" in page
    assert page.count("+2") >= 2 and "p50 latency (ms)" in page  # one step row per cell, about +25 %
    for r in rows:
        assert f"cell-{r['cell_id']}" in page
    figs = sorted(p.name for p in (out / "fig").iterdir())
    assert len([f for f in figs if f.endswith(".png")]) == 2 and len([f for f in figs if f.endswith(".svg")]) == 2
    svg = next((out / "fig").glob("*.svg")).read_text()
    assert "c0ffee00" in svg  # the step's label carries the first commit after it


def test_run_report_links_the_trend_pages(thirty_nights, tmp_path):
    root, rows = thirty_nights
    run = root.parent / "night29"
    assert main(["report", str(run), "--history", str(root), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "trends" / "index.html").is_file()
    assert 'href="trends/index.html"' in (tmp_path / "rep" / "index.html").read_text()


def test_report_without_run_or_history_is_an_error(capsys):
    assert main(["report"]) == 2
    assert "--history" in capsys.readouterr().err


def test_trend_page_escapes_data_strings(tmp_path):
    rows = real_rows(1)
    rows[0]["label"] = '<script>alert("x")</script> & co'
    rows[0]["dataset"] = "<b>ds</b>"
    with History(tmp_path / "h") as h:
        for night in range(3):
            h.add_run(write_run(tmp_path / f"n{night}", night_rows(rows, seed=night, started=f"2026-11-0{night + 1}T02:00:00Z",
                                                                   commit='"><img src=x>')))
    assert main(["report", "--history", str(tmp_path / "h"), "--out", str(tmp_path / "t")]) == 0
    for page in (tmp_path / "t").glob("*.html"):
        text = page.read_text()
        assert "<script>alert" not in text and "<b>ds</b>" not in text and '"><img src=x>' not in text
    assert history(tmp_path / "h")["others_cpu_cores"].notna().all()
    assert detect_changes(history(tmp_path / "h")).empty  # 3 nights: too short for a step
