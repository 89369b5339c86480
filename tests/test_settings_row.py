"""MeasureSettings validation, the typed CellResult row (metadata, older rows) and suite validation."""

from __future__ import annotations

import dataclasses
import json

import pytest
from evbench.harness.results import UNITS, ResultStore, load
from evbench.harness.row import (
    SCHEMA_VERSION,
    CellResult,
    RowError,
    column_meta,
    field_names,
    fields_of_kind,
)
from evbench.harness.settings import DEFAULT_SETTINGS, MeasureSettings, SettingsError
from evbench.harness.suites import SuiteError, load_suite

SRC = "bench/suites/x.toml [measure]"


@pytest.mark.parametrize(("mapping", "needle"), [
    ({"min_querys": 8}, "unknown key 'min_querys' (did you mean 'min_queries'?)"),
    ({"min_queries": 0}, "min_queries = 0: expected an integer >= 1"),
    ({"min_queries": 2.5}, "min_queries = 2.5: expected an integer >= 1"),
    ({"min_queries": True}, "min_queries = True: expected an integer >= 1"),
    ({"offline": "yes"}, "offline = 'yes': expected true or false"),
    ({"offline_batches": []}, "offline_batches = []: expected a non-empty list of integers each >= 1"),
    ({"offline_batches": [1, 0]}, "offline_batches = [1, 0]"),
    ({"min_duration_s": -1}, "min_duration_s = -1: expected a finite number >= 0"),
    ({"max_duration_s": float("nan")}, "max_duration_s = nan"),
    ({"min_duration_s": 5.0, "max_duration_s": 1.0}, "max_duration_s = 1: expected a number >= min_duration_s"),
    ({"max_clips": 0}, "max_clips = 0: expected an integer >= 1 (or omit it for none)"),
])
def test_bad_settings_name_the_source_key_and_what_is_allowed(mapping, needle):
    with pytest.raises(SettingsError) as err:
        MeasureSettings.from_mapping(mapping, source=SRC)
    msg = str(err.value)
    assert msg.startswith(SRC + ": ") and needle in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)


def test_settings_defaults_are_single_and_resolved():
    s = MeasureSettings.from_mapping({"min_queries": 8, "offline_batches": [2, 8]}, source=SRC)
    assert s.min_queries == 8 and s.offline_batches == (2, 8) and s.max_duration_s == DEFAULT_SETTINGS.max_duration_s
    assert MeasureSettings.from_mapping(None) == DEFAULT_SETTINGS == MeasureSettings()
    # count_clips, added later, is left out while unset so the ids of older cells do not change
    assert set(s.to_dict()) == set(MeasureSettings.keys()) - {"count_clips"}
    assert MeasureSettings.from_mapping(s.to_dict()) == s  # round trip
    counted = s.replace(count_clips=32)
    assert counted.to_dict()["count_clips"] == 32 and MeasureSettings.from_mapping(counted.to_dict()) == counted
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.min_queries = 1  # type: ignore[misc]
    assert s.replace(min_queries=16).min_queries == 16
    with pytest.raises(SettingsError, match="--min-queries = -1"):
        s.replace(min_queries=-1, source="evbench profile", key_names={"min_queries": "--min-queries"})
    # the one default of offline batches (the runner and measure.profile used to disagree)
    from evbench.harness import measure

    assert measure.profile.__kwdefaults__["offline_batches"] == DEFAULT_SETTINGS.offline_batches


def _suite(tmp_path, body: str):
    f = tmp_path / "s.toml"
    f.write_text('name = "s"\ndataset = "generated"\n' + body)
    return f


@pytest.mark.parametrize(("body", "needle"), [
    ('[measure]\nmin_querys = 4\n[[methods]]\nname = "uniform"\n', "[measure]: unknown key 'min_querys'"),
    ('[measure]\noffline = 1\n[[methods]]\nname = "uniform"\n', "[measure]: offline = 1: expected true or false"),
    ('[[methods]]\nname = "uniform"\nconfg = "lite"\n', "[[methods]] #1: unknown key 'confg' (did you mean 'config'?)"),
    ('[[methods]]\nname = "unifrom"\n', "name = 'unifrom': unknown method"),
    ('[[methods]]\nname = "uniform"\nconfig = "huge"\n', "config = 'huge': unknown configuration"),
    ('[[methods]]\nname = "uniform"\nknobs = 3\n', "knobs = 3: expected \"sweep\""),
    ('[train]\nepochs = 0\n[[methods]]\nname = "uniform"\n', "[train]: epochs = 0: expected an integer >= 1"),
    ('[train]\nepoch = 2\n[[methods]]\nname = "uniform"\n', "[train]: unknown key 'epoch'"),
    ('[train]\nbackbone_lr_schedule = "step"\n[[methods]]\nname = "uniform"\n',
     "[train]: backbone_lr_schedule = 'step': expected one of 'constant', 'cos'"),
    ('[data]\ntest_split = "val2"\n[[methods]]\nname = "uniform"\n', "test_split = 'val2': expected one of"),
    ('descripton = "x"\n[[methods]]\nname = "uniform"\n', "unknown key 'descripton'"),
])
def test_suite_tables_are_validated(tmp_path, body, needle):
    f = _suite(tmp_path, body)
    with pytest.raises(SuiteError) as err:
        load_suite(str(f))
    assert str(f) in str(err.value) and needle in str(err.value)


def test_shipped_suites_validate():
    for name in ("default", "features", "data"):
        assert load_suite(name).settings() == MeasureSettings.from_mapping(load_suite(name).measure)


def test_cli_measure_override_is_validated_and_enters_the_cell_id(tmp_path, tiny_generated):
    f = _suite(tmp_path, '[measure]\nmin_queries = 4\n[[methods]]\nname = "uniform"\nconfig = "lite"\n')
    suite = load_suite(str(f))
    base = suite.cells(data=f"generated:{tiny_generated}")
    more = suite.cells(data=f"generated:{tiny_generated}", measure={"min_queries": 8})
    assert base[0].measure.min_queries == 4 and more[0].measure.min_queries == 8
    assert base[0].id != more[0].id  # resolved settings are part of the id
    # a default merged in counts like an explicit value: same resolved settings, same id
    explicit = suite.cells(data=f"generated:{tiny_generated}", measure={"latency_clips": DEFAULT_SETTINGS.latency_clips})
    assert explicit[0].id == base[0].id
    with pytest.raises(SuiteError, match=r"^--measure: unknown key 'bogus'"):
        suite.cells(data=f"generated:{tiny_generated}", measure={"bogus": 1})


# ----------------------------------------------------------------------------- the row


def test_every_numeric_field_declares_unit_and_format_and_units_are_generated():
    for name in field_names():
        meta = column_meta(name)
        assert meta["kind"] in {"identity", "measured", "accuracy", "timing", "modeled", "agent", "run"}
        if meta["unit"]:
            assert meta["type"] in {"int", "float"} and meta["fmt"] and meta["short"] is not None, name
    assert UNITS["latency_ms_p50"].startswith("ms") and UNITS["top1"].startswith("fraction")
    assert UNITS["gflops_per_video"].startswith("derived")
    assert set(UNITS) - {"gflops_per_video"} == {n for n in field_names() if column_meta(n)["unit"]}
    assert "schema_version" in field_names() and "samples" not in field_names()
    assert {"latency_ms_p50", "fps_offline", "peak_rss_mb"} <= set(fields_of_kind("timing"))
    assert {"gmacs_per_video", "executed_gmacs_per_video", "cost_table"} <= set(fields_of_kind("measured"))


def test_version_1_rows_are_read_with_renamed_keys(tmp_path):
    v1 = {"cell_id": "a", "status": "ok", "method": "uniform", "knobs": {}, "top1": 0.5, "seed": 0,
          "convention": "top-1 ...", "clips": 2, "gmacs_per_video": 1, "trained": 1, "latency_ms_p50": None,
          "an_old_key": "kept", "env": {"torch": "2"}}
    res = CellResult.from_row(v1)
    assert res.schema_version == 1 and res.bootstrap_seed == 0 and res.accuracy_convention == "top-1 ..."
    assert res.logit_diff_clips == 2 and res.gmacs_per_video == 1.0 and isinstance(res.gmacs_per_video, float)
    assert res.trained is True and res.extra == {"an_old_key": "kept"}
    row = res.to_row()
    assert row["an_old_key"] == "kept" and "seed" not in row and row["schema_version"] == 1
    store = ResultStore(tmp_path)
    store.append(v1)
    store.append({**CellResult(cell_id="b", method="uniform", top1=0.25).to_row()})
    df = load(tmp_path)
    assert df["schema_version"].tolist() == [1, SCHEMA_VERSION]
    assert df["bootstrap_seed"].tolist()[0] == 0 and df["an_old_key"].tolist()[0] == "kept"
    assert set(field_names()) - {"env"} <= set(df.columns)


@pytest.mark.parametrize(("row", "needle"), [
    ({"cell_id": "a", "top1": "high"}, "'top1'"),
    ({"cell_id": "a", "num_videos": 2.5}, "'num_videos'"),
    ({"cell_id": "a", "knobs": [1]}, "'knobs'"),
    ({"cell_id": "a", "schema_version": 99}, "newer"),
])
def test_rows_of_the_wrong_type_are_refused(row, needle):
    with pytest.raises(RowError, match=needle):
        CellResult.from_row(row)


def test_load_skips_a_row_that_is_not_a_result_row(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "ok"})
    store.append({"cell_id": "b", "status": "ok", "top1": "not a number"})
    with pytest.warns(UserWarning, match="not a result row"):
        df = load(tmp_path)
    assert df["cell_id"].tolist() == ["a"]
    assert any("top1" in b.reason for b in df.attrs["unreadable_rows"])


def test_row_round_trips_through_json():
    res = CellResult(cell_id="x", method="m", knobs={"t": 0.5}, gmacs_per_video=2.0, exit_hist={"none": 3},
                     noisy=False, machine_state={"load_1min": 0.1})
    back = CellResult.from_row(json.loads(json.dumps(res.to_row())))
    assert back.to_row() == res.to_row()


def test_row_records_the_inference_settings_of_an_official_test_path() -> None:
    """RSEE's official configuration (downsample BatchNorms on the 224 bank, nearest downscaling) is in the row."""
    from evbench.harness.data import RandomClips
    from evbench.harness.measure import measure_cell
    from evbench.harness.registry import create_method
    from evbench.harness.settings import MeasureSettings

    for config, expected in (("lite", {"bn_mode": "consistent", "downscale": "antialias"}),
                             ("official", {"bn_mode": "official", "downscale": "nearest"})):
        method = create_method("rsee", config="lite", num_classes=3,
                               **({"bn_mode": "official", "downscale": "nearest"} if config == "official" else {}))
        clips = RandomClips(tuple(method.example_input(1).shape[1:]), 2, seed=0)
        row = measure_cell(method, clips, MeasureSettings(latency=False)).to_row()
        assert {k: row["inference_settings"][k] for k in expected} == expected
