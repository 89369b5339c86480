"""Modeled devices: roofline arithmetic, calibration, the held-out Jetson Nano check, the report section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from evbench.harness.devices import modeled as M
from evbench.harness.registry import create_method
from torch import nn

PUBLISHED_RESNET50_PYTORCH_FP16_MS = 81.7  # torch2trt benchmarks/JETSON_NANO.md, row resnet50, Latency (PyTorch)


@pytest.fixture(scope="module")
def resnet50_uniform():
    """Uniform ResNet-50, one frame @224, and the trace of one batch-1 clip (the CLI acceptance configuration)."""
    torch.manual_seed(0)
    method = create_method("uniform", config="paper", num_classes=200, backbone="resnet50", frames=1,
                           resolution=224).eval()
    with torch.inference_mode():
        out = method(method.example_input(1))
    return method, out.trace


@pytest.fixture(scope="module")
def features_uniform():
    """Uniform average on pre-extracted features: its per-frame feature cost is declared, not counted."""
    method = create_method("uniform", config="features", num_classes=101).eval()
    with torch.inference_mode():
        out = method(method.example_input(1))
    return method, out.trace


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 10))


def test_layer_profile_counts_a_tiny_module_by_hand():
    layers = M.layer_profile(_tiny(), (torch.zeros(1, 3, 8, 8),))
    assert [lay.kind for lay in layers] == ["conv", "norm", "act", "linear"]  # Flatten launches nothing
    conv, bn, relu, fc = layers
    assert (conv.macs, conv.weight_elems, conv.in_elems, conv.out_elems) == (256 * 3 * 9, 4 * 3 * 9, 192, 256)
    # batch-norm: weight, bias, running mean, running var (the int counter is not data); fvcore: 2 per element
    assert (bn.macs, bn.weight_elems, bn.in_elems, bn.out_elems) == (512, 16, 256, 256)
    assert (relu.macs, relu.weight_elems) == (0, 0)
    assert (fc.macs, fc.weight_elems, fc.in_elems, fc.out_elems) == (2560, 2570, 256, 10)

    a = M.layer_arrays(layers, bytes_per_elem=2, fuse=False)
    assert a.bytes.tolist() == [2 * (108 + 192 + 256), 2 * (16 + 512), 2 * 512, 2 * (2570 + 266)]
    # 1 GFLOPS, 1 GB/s, eta 1: per layer max(2*MACs, bytes) ns; plus 4 layers x 0.01 ms
    expect_ns = max(2 * 6912, 1112) + max(2 * 512, 1056) + max(0, 1024) + max(2 * 2560, 5672)
    got = M.roofline_ms(a, peak_gflops=1.0, bandwidth_gbs=1.0, eta_c=1.0, eta_b=1.0, t_layer_ms=0.01)
    assert got == pytest.approx(expect_ns * 1e-6 + 4 * 0.01)
    fused = M.layer_arrays(layers, bytes_per_elem=2, fuse=True)  # TensorRT folds BN + ReLU into the conv
    assert fused.names == ("0", "4")


def test_calibration_recovers_known_parameters_from_synthetic_points():
    rng = np.random.default_rng(0)
    truth = {"eta_c": 0.35, "eta_b": 0.6, "t_layer_ms": 0.08}
    peak, bw = 500.0, 25.0
    points = []
    for _ in range(14):
        n = int(rng.integers(10, 300))
        macs = rng.lognormal(mean=17, sigma=1.5, size=n)  # ~1e7 MACs, spread over compute- and memory-bound
        nbytes = rng.lognormal(mean=13.5, sigma=1.5, size=n)
        arrays = M.LayerArrays(macs=macs, bytes=nbytes, names=tuple(map(str, range(n))))
        ms = M.roofline_ms(arrays, peak_gflops=peak, bandwidth_gbs=bw, **truth)
        points.append((arrays, ms))
    eff = M.fit_efficiencies(points, peak_gflops=peak, bandwidth_gbs=bw)
    assert eff.eta_c == pytest.approx(truth["eta_c"], rel=0.02)
    assert eff.eta_b == pytest.approx(truth["eta_b"], rel=0.02)
    assert eff.t_layer_ms == pytest.approx(truth["t_layer_ms"], rel=0.02)
    assert eff.rms_log_error < 1e-3


def test_fit_needs_three_points():
    a = M.LayerArrays(macs=np.ones(2), bytes=np.ones(2), names=("a", "b"))
    with pytest.raises(ValueError, match="at least 3"):
        M.fit_efficiencies([(a, 1.0), (a, 2.0)], peak_gflops=1.0, bandwidth_gbs=1.0)


def test_held_out_resnet50_pytorch_fp16_within_25_percent(resnet50_uniform):
    cal = M.calibration("jetson-nano-modeled", "torch")
    assert cal["status"] == "calibrated"
    assert "resnet50" not in {p["model"] for p in cal["points"]}  # never fitted
    (held,) = cal["held_out"]
    assert held["published_ms"] == PUBLISHED_RESNET50_PYTORCH_FP16_MS
    assert abs(held["error_pct"]) < 25

    method, traces = resnet50_uniform
    res = M.model_latency(method, traces, device="jetson-nano-modeled", backend="torch")
    assert res["modeled"] is True and res["backend"] == "modeled:pytorch-fp16"
    p50 = res["latency_ms"]["p50"]
    assert abs(p50 - PUBLISHED_RESNET50_PYTORCH_FP16_MS) / PUBLISHED_RESNET50_PYTORCH_FP16_MS < 0.25
    backbone = next(m for m in res["modules"] if m["module"] == "encoder.backbone")
    assert backbone["gmacs"] == pytest.approx(4.11, abs=0.01)  # AR-Net Table 1 convention


def test_five_watt_mode_is_slower_than_maxn(resnet50_uniform):
    method, traces = resnet50_uniform
    for backend in ("torch", "onnxruntime"):
        fast = M.model_latency(method, traces, device="jetson-nano-modeled", backend=backend)
        slow = M.model_latency(method, traces, device="jetson-nano-5w-modeled", backend=backend)
        assert slow["latency_ms"]["p50"] > fast["latency_ms"]["p50"]
        assert slow["device_profile"]["peak_gflops_fp16"] == pytest.approx(
            fast["device_profile"]["peak_gflops_fp16"] * 640 / 921.6)
        assert slow["device_profile"]["bandwidth_gbs"] == fast["device_profile"]["bandwidth_gbs"]


def test_tensorrt_is_faster_than_pytorch(resnet50_uniform):
    method, traces = resnet50_uniform
    trt = M.model_latency(method, traces, device="jetson-nano-modeled", backend="onnxruntime")
    pt = M.model_latency(method, traces, device="jetson-nano-modeled", backend="torch")
    assert trt["backend"] == "modeled:tensorrt-fp16"
    assert trt["latency_ms"]["p50"] < pt["latency_ms"]["p50"]


@pytest.mark.parametrize("device", ["jetson-nano-modeled", "jetson-nano-5w-modeled", "orin-nano-modeled"])
def test_every_result_is_marked_modeled(device, resnet50_uniform):
    method, traces = resnet50_uniform
    for backend in ("torch", "onnxruntime"):
        res = M.model_latency(method, traces, device=device, backend=backend)
        assert res["modeled"] is True
        assert res["modeled_note"].startswith("MODELED, not measured")
        assert "MODELED" in res["fps_stream_note"] and res["fps_stream_processed"] > 0
        lat = res["latency_ms"]
        assert {"p50", "p90", "p99", "mean"} <= set(lat) and len(lat["samples"]) == len(traces)
        prof = res["device_profile"]
        assert prof["name"] == device and prof["source"] and prof["power_mode"]
        cal = res["calibration"]
        assert {"eta_compute", "eta_bandwidth", "t_layer_ms", "points"} <= set(cal)
        assert all("source" in p and "error_pct" in p for p in cal["points"])
        assert "validation" in res
    if device == "orin-nano-modeled":
        assert cal["status"].startswith("UNCALIBRATED")


def test_unknown_device_names_the_valid_ones(resnet50_uniform):
    method, traces = resnet50_uniform
    with pytest.raises(ValueError) as info:
        M.model_latency(method, traces, device="xavier-modeled")
    for name in ("jetson-nano-modeled", "jetson-nano-5w-modeled", "orin-nano-modeled"):
        assert name in str(info.value)


def test_declared_feature_cost_is_excluded_and_said(features_uniform):
    method, traces = features_uniform
    res = M.model_latency(method, traces, device="jetson-nano-modeled")
    assert [e["module"] for e in res["excluded"]] == ["frame_features"]
    assert res["excluded"][0]["declared_gmacs"] > 0 and "excluded" in res["excluded"][0]["reason"]
    assert res["excluded_steps"] == method.card.frames
    assert "frame_features" in res["modeled_note"]
    assert res["latency_ms"]["p50"] > 0  # the head still runs on the device


def test_lstm_cell_with_tuple_inputs_is_modeled(one_thread):
    method = create_method("uniform_lstm", config="lite", num_classes=5).eval()
    with torch.inference_mode():
        out = method(method.example_input(1))
    res = M.model_latency(method, out.trace, device="orin-nano-modeled", backend="torch")
    rnn = next(m for m in res["modules"] if m["module"] == "rnn")
    assert rnn["layers"] == 1 and rnn["gmacs"] > 0


def test_validate_cpu_smoke(one_thread):
    res = M.validate_cpu(calibration_models=("squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5"),
                         held_out_models=("mnasnet0_5",), resolution=32, rounds=2, min_queries=3,
                         min_duration_s=0.0, max_duration_s=2.0)
    s = res["summary"]
    assert s["held_out_models"] == ["mnasnet0_5"] and s["threads"] == 1
    assert s["held_out_mean_abs_error_pct"] is not None and s["date"] and s["machine"] is not None
    row = res["models"][-1]
    assert row["held_out"] and row["measured_ms"] > 0 and row["modeled_ms"] > 0
    assert len(row["p50_rounds_ms"]) == 2 and row["measured_ms"] == min(row["p50_rounds_ms"])
    with pytest.raises(ValueError, match="rounds"):
        M.validate_cpu(rounds=0)
    assert res["env"]["threads"] == 1
    json.dumps(res)  # serialisable as written by `evbench model-validate`


def test_committed_validation_is_read():
    v = M.validation_summary()
    assert v["status"] == "ok", v
    for key in ("held_out_mean_abs_error_pct", "held_out_max_abs_error_pct", "machine", "date", "threads"):
        assert v[key] is not None
    assert M.validation_summary("/nonexistent/cpu-validation.json")["status"] == "not found"


def test_report_section_escapes_and_shows_the_table(tmp_path):
    from evbench.reports.modeled import modeled_section, render_validation

    assert modeled_section(tmp_path) == ""
    data = json.loads(M.VALIDATION_PATH.read_text())
    data["models"][0]["model"] = "<script>x</script>"
    (tmp_path / "cpu-validation.json").write_text(json.dumps(data))
    html = modeled_section(tmp_path)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "held out" in html and "MODELED" in html
    assert html == render_validation(data, source="cpu-validation.json")


def test_cli_has_model_validate():
    from evbench.harness.cli import build_parser

    args = build_parser().parse_args(["model-validate", "--out", "x", "--resolution", "64"])
    assert args.func.__name__ == "cmd_model_validate" and args.resolution == 64
