"""ONNX Runtime backend: export round trip for every registered method, bundles, errors, the CLI contract."""

from __future__ import annotations

import json

import pytest
import torch
from evbench.harness.cli import main
from evbench.harness.costs import cost_table
from evbench.harness.onnx_backend import (
    BUNDLE_FORMAT,
    OnnxBackendError,
    export_bundle,
    load_bundle,
    max_abs_logit_diff,
    to_onnxruntime,
)
from evbench.harness.registry import create_method

TOL = 1e-4  # issue 5: logits match torch within 1e-4 in fp32


def _small(name: str, config: str):
    torch.manual_seed(0)
    return create_method(name, config=config, num_classes=5, **({"frames": 4} if config == "lite" else {}))


def _clips(method, n: int = 2, batch: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    shape = tuple(method.example_input(batch).shape)
    return [torch.randn(shape, generator=g) for _ in range(n)]


def test_bundle_manifest_schedules_and_reload(tmp_path, one_thread):
    method = _small("tlee", "lite")
    clips = _clips(method, n=2)
    path = export_bundle(method, tmp_path / "b", example_clips=clips, knobs={"threshold": 0.5},
                         build={"method": "tlee", "config": "lite"}, opset=11)
    m = json.loads(path.read_text())
    assert m["format"] == BUNDLE_FORMAT and m["method"] == "tlee" and m["opset"] == 11
    import onnx

    first = onnx.load(str(tmp_path / "b" / m["modules"][0]["file"]))
    assert {o.version for o in first.opset_import if o.domain in ("", "ai.onnx")} == {11}
    assert m["verification"]["max_abs_logit_diff"] <= TOL and m["verification"]["decisions_match"]
    files = {d["file"] for d in m["modules"]}
    assert all((tmp_path / "b" / f).exists() for f in files)
    assert len(m["schedules"]) == 2
    table = cost_table(method)
    for sched in m["schedules"]:
        assert sched["calls"], "a schedule records the module calls"
        # the schedule's calls are exactly the costed work: same GMACs as the trace
        gm = sum(table[(c["module"], tuple(c["input_shape"]))] * c["batch"] for c in sched["calls"])
        assert gm == pytest.approx(sched["gmacs"], rel=1e-9)
    again = load_bundle(tmp_path / "b", _small("tlee", "lite"))
    assert max_abs_logit_diff(method, again, clips, knobs={"threshold": 0.5})["max_abs_logit_diff"] <= TOL


def test_bundle_of_another_method_is_refused(tmp_path, one_thread):
    method = _small("uniform", "lite")
    export_bundle(method, tmp_path / "b", example_clips=_clips(method, n=1))
    with pytest.raises(OnnxBackendError, match="do not match"):
        load_bundle(tmp_path / "b", _small("uniform_lstm", "lite"))
    with pytest.raises(OnnxBackendError, match="manifest"):
        load_bundle(tmp_path / "missing", method)


def test_unavailable_provider_names_the_available_ones():
    with pytest.raises(OnnxBackendError, match="CPUExecutionProvider"):
        to_onnxruntime(_small("uniform", "lite"), providers=["NoSuchExecutionProvider"])


def test_undeclared_shape_is_a_clear_error(one_thread):
    method = _small("uniform", "lite")
    ort_method = to_onnxruntime(method)
    with pytest.raises(OnnxBackendError, match="encoder"):
        ort_method.get_submodule(method.encoder.module_name)(torch.zeros(1, 3, 57, 57))


def test_profile_json_reports_the_logit_difference(capsys, one_thread):
    rc = main(["profile", "--method", "frameexit", "--config", "lite", "--frames", "4", "--backend", "onnxruntime",
               "--min-queries", "4", "--min-duration", "0", "--no-offline", "--no-crosscheck", "--clips", "2", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    # the row's backend is the one asked for (as in a run's rows); the execution provider is in the detail
    assert d["backend"] == "onnxruntime" and d["env"]["backend"] == "onnxruntime-cpu"
    assert d["backend_detail"]["backend"] == "onnxruntime-cpu"
    assert d["max_abs_logit_diff"] <= TOL and d["decisions_match"]
    assert d["executed_gmacs_per_video"] == pytest.approx(d["gmacs_per_video"], rel=0.01)
    assert len(d["latency_ms"]["samples"]) >= 4


def test_profile_with_an_unavailable_provider_exits_with_a_clear_message(capsys):
    rc = main(["profile", "--method", "uniform", "--config", "lite", "--backend", "onnxruntime",
               "--providers", "TensorrtExecutionProvider", "--no-offline", "--no-crosscheck"])
    if "TensorrtExecutionProvider" in __import__("onnxruntime").get_available_providers():
        pytest.skip("TensorRT execution provider present on this machine")
    assert rc == 2
    assert "TensorrtExecutionProvider" in capsys.readouterr().err
