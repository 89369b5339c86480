"""GPU paths (issue 13 item 6) tested on the CPU with fakes, and on a real GPU where there is one.

Fakes: ``torch.cuda.Event`` / ``synchronize`` / ``is_available`` monkeypatched
(CUDA-event breakdown), a fake ``pynvml`` module (NVML energy, index mapping),
a fake ONNX Runtime provider list and a session that reports the providers it
was asked for (CUDA / TensorRT execution providers).  Tests that need a real
GPU skip with the reason.  Timing assertions are relative or on fake clocks,
so they hold on a loaded CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest
import torch
from evbench.harness.api import CostEntry
from evbench.harness.breakdown import OTHER, SUM_TOLERANCE, measure_breakdown
from evbench.harness.precision import autocast, check_precision, precision_convention
from evbench.harness.registry import create_method, list_methods, method_configs
from evbench.harness.settings import MeasureSettings, SettingsError
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent
LITE = [n for n in list_methods() if "lite" in method_configs(n)]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")

#: Small settings for measure_cell runs here (a loaded shared CPU).
QUICK = dict(min_queries=3, min_duration_s=0.0, max_duration_s=20.0, warmup_runs=1, latency_clips=1, max_clips=2,
             eval_batch_size=2, offline_batches=[1], breakdown_queries=2, count_executed=False, max_seconds=None)


def _clips(method: nn.Module, n: int = 2):
    from evbench.harness.data import RandomClips

    return RandomClips(tuple(method.example_input(1).shape[1:]), n, num_classes=5)  # SYNTHETIC inputs


# --------------------------------------------------------------------------- precision


def test_precision_setting_is_validated_and_part_of_the_cell_id() -> None:
    from evbench.harness.suites import Cell

    assert MeasureSettings().precision == "fp32"
    with pytest.raises(SettingsError, match=r"precision = 'fp8': expected one of 'fp32', 'fp16', 'bf16'"):
        MeasureSettings.from_mapping({"precision": "fp8"}, source="x [measure]")
    base = dict(suite="s", method="uniform", config="lite", overrides={}, knobs={}, train_data=None,
                train_split="train", test_data="generated", test_split="test", train=None,
                test_fingerprint={"note": "SYNTHETIC fingerprint"})
    a = Cell(**base, measure=MeasureSettings())
    b = Cell(**base, measure=MeasureSettings(precision="bf16"))
    assert a.id != b.id and a.build_id == b.build_id  # re-measured, not re-trained
    assert b.label.endswith("[bf16]") and "[" not in a.label


@pytest.mark.parametrize(("precision", "device", "backend", "providers", "needle"), [
    ("fp16", "cpu", "torch", None, "fp16 needs a CUDA device"),
    ("fp16", "jetson-nano-modeled", "torch", None, "latency is already its fp16 runtime's"),
    ("bf16", "cuda", "onnxruntime", ["CUDAExecutionProvider"], "the exported graphs are fp32"),
    ("fp16", "cuda", "onnxruntime", ["CUDAExecutionProvider", "CPUExecutionProvider"], "TensorRT"),
    ("int8", "cpu", "torch", None, "choose from fp32, fp16, bf16"),
])
def test_refused_precisions_are_one_line(precision, device, backend, providers, needle) -> None:
    with pytest.raises(SettingsError) as err:
        check_precision(precision, device, backend=backend, providers=providers)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_allowed_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    check_precision("bf16", "cpu")
    check_precision("fp16", "cuda:1")  # checked against the device kind, not availability
    check_precision("fp16", "cuda", backend="onnxruntime",
                    providers=[("TensorrtExecutionProvider", {}), "CUDAExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "FAKE GPU (no bf16)")
    with pytest.raises(SettingsError, match="FAKE GPU .* does not support bf16"):
        check_precision("bf16", "cuda")


def test_autocast_context_per_device() -> None:
    assert not isinstance(autocast("fp32", "cuda"), torch.autocast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that CUDA is absent and disables the region here
        ctx = autocast("fp16", "cuda:0")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.float16
    ctx = autocast("bf16", "cpu")
    assert ctx.device == "cpu" and ctx.fast_dtype == torch.bfloat16
    assert "torch.autocast(device_type='cuda'" in precision_convention("fp16", "cuda")
    assert "TensorRT" in precision_convention("fp16", "cuda", backend="onnxruntime")


@pytest.mark.parametrize("name", LITE)
def test_every_lite_method_runs_under_cpu_bf16_autocast(name: str) -> None:
    """Every path of every method (its free decisions and each forced path of the card) under autocast.

    Mixed dtypes in a method's own tensor glue (an fp32 accumulator fed
    autocast's bf16 logits) fail here, as they would under CUDA fp16.
    """
    torch.manual_seed(0)
    method = create_method(name, config="lite", num_classes=5).eval()
    x = _clips(method, 2)
    batch = torch.stack([x[0].x, x[1].x])
    for force in [None, *method.card.force_options]:
        knobs = {} if force is None else {"force": force}
        with torch.inference_mode():
            ref = method(batch, knobs=knobs)
            with autocast("bf16", "cpu"):
                out = method(batch, knobs=knobs)
        assert out.logits.shape == ref.logits.shape and torch.isfinite(out.logits.float()).all(), force
        assert len(out.trace) == 2 and all(out.trace), force


def _autocast_spy(method: nn.Module) -> list[tuple[bool, torch.dtype]]:
    seen: list[tuple[bool, torch.dtype]] = []
    sub = method.get_submodule(method.cost_entries()[0].module)

    def spy(_m: nn.Module, _a: object) -> None:
        # the cost table's fvcore trace and the executed-MAC count (FlopCounterMode) run at fp32, outside the phases
        if not torch.jit.is_tracing() and _get_current_dispatch_mode() is None:
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))

    sub.register_forward_pre_hook(spy)
    return seen


@pytest.mark.parametrize(("name", "precision"), [("uniform", "fp32"), ("uniform", "bf16"),
                                                pytest.param("rsee", "bf16", marks=pytest.mark.slow)])
def test_measure_cell_runs_every_phase_at_the_precision_and_records_it(name: str, precision: str) -> None:
    """Every forward at the precision; the cost table (fvcore's jit trace) is taken before autocast (RSEE's fails in it)."""
    from evbench.harness.measure import measure_cell

    method = create_method(name, config="lite", num_classes=5).eval()
    seen = _autocast_spy(method)
    res = measure_cell(method, _clips(method), MeasureSettings(**{**QUICK, "count_executed": True},
                                                               precision=precision))
    assert res.precision == precision and res.env["precision"] == precision
    assert res.executed_gmacs_per_video > 0
    assert res.latency_ms_p50 > 0 and res.latency_breakdown_ms
    # upper bound, cost estimate, warm-up (>= 2), latency (>= 3), breakdown (2), offline (3); the evaluation
    # too at bf16 (at fp32 it runs inside the MAC counter, which the spy leaves out)
    assert len(seen) >= 1 + 1 + 2 + 3 + 2 + 3 + (precision != "fp32")
    if precision == "fp32":
        assert not any(on for on, _ in seen) and res.conventions["precision"].startswith("fp32")
        assert res.executed_gmacs_note is None
    else:
        assert "fp32 forward" in res.executed_gmacs_note  # FlopCounterMode cannot run under autocast
        assert all(on and dtype == torch.bfloat16 for on, dtype in seen)
        assert "torch.autocast(device_type='cpu', dtype=torch.bfloat16)" in res.conventions["precision"]


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from evbench.harness.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse-level refusals
        rc = exc.code
    return int(rc), capsys.readouterr().err.strip()


def test_cli_fp16_on_cpu_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, err = _main(["profile", "--method", "uniform", "--config", "lite", "--precision", "fp16", "--json"], capsys)
    assert rc == 2 and err.count("\n") == 0 and "--precision fp16 on cpu: fp16 needs a CUDA device" in err
    rc, err = _main(["run", "--methods", "uniform", "--precision", "fp16", "--out", str(tmp_path / "r"),
                     "--quiet", "--no-report"], capsys)
    assert rc == 2 and "fp16 needs a CUDA device" in err.splitlines()[-1]
    assert not (tmp_path / "r" / "results.jsonl").exists()


def test_cli_model_validate_cuda_without_gpu_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if CUDA:
        pytest.skip("a GPU is present: the refusal is for machines without one")
    rc, err = _main(["model-validate", "--device", "cuda", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "cuda" in err.lower() and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- breakdown on CUDA events


class FakeClock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t

    def advance_ms(self, ms: float) -> None:
        self.t += int(round(ms * 1e6))


class FakeEvent:
    """torch.cuda.Event on the fake clock (the GPU timeline of a device that never lags the host)."""

    clock: FakeClock

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.t: int | None = None

    def record(self, stream: object = None) -> None:
        self.t = self.clock()

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None, "an event was read before it was recorded"
        return (end.t - self.t) / 1e6


class _Tick(nn.Module):
    def __init__(self, clock: FakeClock, ms: float) -> None:
        super().__init__()
        self.clock, self.ms = clock, ms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance_ms(self.ms)
        return x


class _Toy(nn.Module):
    """A toy method: policy 1 ms, 0.5 ms of control flow, backbone 3 ms (on the fake clock)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.policy, self.backbone = _Tick(clock, 1.0), _Tick(clock, 3.0)

    def cost_entries(self) -> list[CostEntry]:
        return [CostEntry("backbone", (3,), role="backbone"), CostEntry("policy", (3,), role="policy")]

    def forward(self, x: torch.Tensor, *, knobs: dict | None = None) -> torch.Tensor:
        y = self.policy(x)
        self.clock.advance_ms(0.5)
        return self.backbone(y)


def test_breakdown_on_cuda_uses_events_and_one_sync_per_query(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    FakeEvent.clock = clock
    syncs: list[object] = []

    def fake_sync(device: object = None) -> None:
        syncs.append(device)
        clock.advance_ms(0.25)  # host-side synchronise cost: outside every event span

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", fake_sync)
    bd = measure_breakdown(_Toy(clock), [torch.zeros(1, 3)], device="cuda", queries=4, clock=clock)
    parts = bd["latency_breakdown_ms"]
    assert bd["timer"] == "cuda_event"
    assert parts == pytest.approx({"backbone": 3.0, "policy": 1.0, OTHER: 0.5})
    assert bd["latency_breakdown_mean_ms"] == pytest.approx(4.5)  # first to last event: syncs excluded
    assert bd["sum_rel_error"] <= SUM_TOLERANCE / 100
    assert len(syncs) == 2 * 4  # one before each query, one at its end: none inside the hooks


def test_breakdown_on_cpu_keeps_the_host_clock() -> None:
    clock = FakeClock()
    bd = measure_breakdown(_Toy(clock), [torch.zeros(1, 3)], device="cpu", queries=2, clock=clock)
    assert bd["timer"] == "perf_counter_ns"
    assert bd["latency_breakdown_ms"] == pytest.approx({"backbone": 3.0, "policy": 1.0, OTHER: 0.5})


# --------------------------------------------------------------------------- NVML energy


class _NotSupported(Exception):
    pass


def fake_pynvml(*, counter: bool = True, watts: float = 150.0) -> types.ModuleType:
    """A pynvml stand-in whose energy counter (mJ) and power (mW) follow a constant ``watts`` board power."""
    mod = types.ModuleType("pynvml")
    mod.handles = []
    t0 = time.monotonic()

    def energy(_h):  # noqa: ANN001, ANN202
        if not counter:
            raise _NotSupported("Not Supported")
        return int(1_000_000 + watts * 1000.0 * (time.monotonic() - t0))

    mod.nvmlInit = lambda: None
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetHandleByIndex = lambda i: mod.handles.append(i) or ("handle", i)
    mod.nvmlDeviceGetTotalEnergyConsumption = energy
    mod.nvmlDeviceGetPowerUsage = lambda _h: watts * 1000.0
    mod.nvmlDeviceGetName = lambda _h: b"FAKE GPU"
    mod.nvmlSystemGetDriverVersion = lambda: "999.99"
    return mod


def test_nvml_index_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from evbench.harness.devices import energy

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert energy.nvml_index("cuda:1") == 3 and energy.nvml_index("cuda") == 2
    mod = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    meter = energy.open_meter("cuda:1")
    assert isinstance(meter, energy.NvmlMeter) and mod.handles == [3]
    monkeypatch.setattr(torch.cuda, "_get_nvml_device_index", lambda i: (_ for _ in ()).throw(RuntimeError("x")))
    assert energy.nvml_index("cuda:1") == 3  # the integer list is read without torch's helper too
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert energy.nvml_index("cuda:1") == 1


@pytest.mark.parametrize("counter", [True, False])
def test_nvml_energy_per_clip_reaches_the_row(monkeypatch: pytest.MonkeyPatch, counter: bool) -> None:
    from evbench.harness.devices import energy
    from evbench.harness.measure import measure_cell

    mod = fake_pynvml(counter=counter, watts=150.0)
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    monkeypatch.setattr(energy, "open_meter", lambda device, **k: energy.NvmlMeter(0))  # a CPU run read as a GPU
    method = create_method("uniform", config="lite", num_classes=5).eval()
    res = measure_cell(method, _clips(method), MeasureSettings(**{**QUICK, "min_duration_s": 0.3}))
    assert res.energy_source == "nvml"
    # 150 W over the timed window / queries: at least 150 W x mean latency, at most the window per query
    assert res.energy_j_per_clip >= 0.9 * 0.150 * res.latency_ms_mean
    assert res.energy_j_per_clip <= 1.5 * 0.150 * res.latency_ms_mean + 0.150 * 5  # + 5 ms loop overhead a query
    if counter:
        assert res.energy_interval_s is None and res.energy_samples is None  # a counter read at both ends
    else:
        assert res.energy_interval_s == pytest.approx(0.05) and res.energy_samples >= 2


def test_gpu_check_nvml_probe_with_fake_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(counter=False))
    probe = gpu_check.nvml_probe("cuda:0")
    assert probe["name"] == "FAKE GPU" and probe["energy_counter_supported"] is False
    assert probe["power_w"] == pytest.approx(150.0) and probe["error"] is None


# --------------------------------------------------------------------------- ONNX Runtime providers


def test_provider_short_names() -> None:
    from evbench.harness.onnx_backend import resolve_providers

    assert resolve_providers(None) == ["CPUExecutionProvider"]
    assert resolve_providers(["cuda"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(["tensorrt"]) == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                               "CPUExecutionProvider"]
    assert resolve_providers(["CUDAExecutionProvider", "cpu"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_unavailable_provider_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here: the refusal is for CPU-only builds")
    rc, err = _main(["profile", "--method", "uniform", "--config", "lite", "--backend", "onnxruntime",
                     "--providers", "cuda", "--json", "--quiet"], capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert "['CUDAExecutionProvider'] are not available" in err and "onnxruntime-gpu" in err
    rc, err = _main(["profile", "--method", "uniform", "--config", "lite", "--backend", "onnxruntime",
                     "--providers", "cuda", "--precision", "bf16"], capsys)
    assert rc == 2 and "exported graphs are fp32" in err


def test_run_refuses_onnxruntime_cuda_cells_without_the_provider_before_any_cell() -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    from evbench.harness.cli import _check_run_gpu
    from evbench.harness.onnx_backend import OnnxBackendError
    from evbench.harness.suites import Cell

    base = dict(suite="s", method="uniform", config="lite", overrides={}, knobs={}, train_data=None,
                train_split="train", test_data="generated", test_split="test", train=None,
                test_fingerprint={"note": "SYNTHETIC fingerprint"})
    cells = [Cell(**base, device="cpu", backend="onnxruntime"), Cell(**base, device="cuda", backend="onnxruntime")]
    _check_run_gpu(cells[:1])  # the CPU provider is always there
    with pytest.raises(OnnxBackendError, match=r"\['CUDAExecutionProvider'\] are not available"):
        _check_run_gpu(cells)
    _check_run_gpu(cells, serial=False)  # a Ray / Slurm worker may have onnxruntime-gpu
    with pytest.raises(SettingsError, match="fp16 needs a CUDA device"):
        _check_run_gpu([Cell(**base, device="cpu", measure=MeasureSettings(precision="fp16"))])


def test_silent_provider_fallback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU build listing CUDA whose session still loads CPU only (missing CUDA libraries) is an error."""
    ort = pytest.importorskip("onnxruntime")
    from evbench.harness.onnx_backend import OnnxBackendError, to_onnxruntime

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a real CUDA provider is available")
    available = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *available])
    real = ort.InferenceSession

    class CpuOnly:  # what a GPU build does when libcudnn is missing: a warning, and the CPU provider only
        def __init__(self, path, sess_options=None, providers=None):  # noqa: ANN001
            self._s = real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

        def get_providers(self) -> list[str]:
            return self._s.get_providers()

    monkeypatch.setattr(ort, "InferenceSession", CpuOnly)
    method = create_method("uniform", config="lite", num_classes=5).eval()
    with pytest.raises(OnnxBackendError, match="did not load CUDAExecutionProvider .*session providers: "
                                               r"\['CPUExecutionProvider'\]"):
        to_onnxruntime(method, providers=["cuda"])


class _ClaimingSession:
    """A real CPU session that reports the providers it was asked for as loaded (a GPU build, faked)."""

    requested: list = []

    def __init__(self, path, sess_options=None, providers=None):  # noqa: ANN001
        _ClaimingSession.requested.append(list(providers))
        self._s = _ClaimingSession.real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])
        self._names = [p[0] if isinstance(p, tuple) else p for p in providers]

    def get_providers(self) -> list[str]:
        return list(self._names)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._s, name)


@pytest.mark.parametrize(("providers", "precision", "backend_name"), [
    (["cuda"], "fp32", "onnxruntime-cuda"),
    (["tensorrt"], "fp16", "onnxruntime-tensorrt"),
])
def test_gpu_providers_recorded_in_the_row(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, providers, precision,
                                           backend_name) -> None:
    ort = pytest.importorskip("onnxruntime")
    from evbench.harness.measure import measure_cell
    from evbench.harness.onnx_backend import resolve_providers

    available = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", *available])
    _ClaimingSession.real, _ClaimingSession.requested = ort.InferenceSession, []
    monkeypatch.setattr(ort, "InferenceSession", _ClaimingSession)
    method = create_method("uniform", config="lite", num_classes=5).eval()
    res = measure_cell(method, _clips(method), MeasureSettings(**{**QUICK, "latency": False}, precision=precision),
                       backend="onnxruntime", providers=resolve_providers(providers), bundle_dir=str(tmp_path))
    assert res.backend == res.backend_detail["backend"] == res.env["backend"] == backend_name
    assert res.backend_detail["providers_active"][0] == resolve_providers(providers)[0]
    assert res.precision == precision and res.max_abs_logit_diff < 1e-3
    first = _ClaimingSession.requested[0][0]
    if backend_name.endswith("tensorrt"):
        name, opts = first
        assert name == "TensorrtExecutionProvider" and opts["trt_fp16_enable"] is True
        assert opts["trt_engine_cache_path"] == str(tmp_path / "trt-cache")
        assert "TensorRT" in res.conventions["precision"]
    else:
        assert first == "CUDAExecutionProvider"


# --------------------------------------------------------------------------- gpu_check.sh / summary


@pytest.mark.slow
def test_gpu_check_without_a_gpu_exits_cleanly(tmp_path: Path) -> None:
    if CUDA:
        pytest.skip("a GPU is present: bench/gpu_check.sh would run the whole check")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "gpu_check: no NVIDIA GPU visible to torch" in proc.stdout and "not run on a GPU" in proc.stdout
    assert (tmp_path / "gpu_check.txt").read_text().startswith("gpu_check: no NVIDIA GPU")
    assert not list(tmp_path.glob("profile-*"))


@pytest.mark.slow
def test_gpu_check_commands_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every evbench command the script would run is accepted by the parser (with a CUDA device faked)."""
    from evbench.harness.cli import build_parser

    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, check=False, env={**os.environ, "GPU_CHECK_PLAN": "1"})
    assert proc.returncode == 0, proc.stderr
    steps = [line.split("\t", 1)[1].split() for line in proc.stdout.splitlines() if line.startswith("STEP\t")]
    commands = [s[1:] if s[0] == "evbench" else s[3:] for s in steps
                if s[0] == "evbench" or s[1:3] == ["-m", "evbench.harness.cli"]]
    methods = set(list_methods())
    profiled = {c[c.index("--method") + 1] for c in commands if c[0] == "profile"}
    assert profiled == methods  # every registered method, on cuda
    assert "model-validate" in {c[0] for c in commands}
    assert ("claims" in {c[0] for c in commands}) != (tmp_path / "claims.not-run").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for cmd in commands:
        args = build_parser().parse_args(cmd)
        if cmd[0] == "profile":
            assert args.device == "cuda" and args.config == "paper"
    precisions = {c[c.index("--precision") + 1] for c in commands if "--precision" in c}
    assert precisions == {"fp16", "bf16"}


def _profile_row(method: str, precision: str, *, p50: float, overhead: float, parts: dict) -> dict:
    """A SYNTHETIC profile row of the keys the summary reads (not a measurement)."""
    return {"method": method, "precision": precision, "latency_ms_p50": p50, "latency_ms_mean": p50,
            "latency_breakdown_ms": parts, "latency_breakdown_mean_ms": sum(parts.values()),
            "harness_overhead_ms": overhead, "energy_j_per_clip": 0.5, "energy_source": "nvml",
            "gmacs_per_video": 4.1, "latency_convention": "... torch.cuda.Event(enable_timing=True) pair ...",
            "env": {"gpu_name": "SYNTHETIC GPU"}}


def test_gpu_check_summary_flags_failed_checks(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    ok = _profile_row("uniform", "fp32", p50=10.0, overhead=0.01, parts={"backbone": 9.0, OTHER: 1.0})
    fast = _profile_row("uniform", "fp16", p50=4.0, overhead=0.01, parts={"backbone": 3.5, OTHER: 0.5})
    bad = _profile_row("rsee", "fp32", p50=2.0, overhead=0.1, parts={"backbone": 1.0, OTHER: 0.5})
    bad["latency_breakdown_mean_ms"] = 2.0  # parts sum 1.5: 25 % off
    for row in (ok, fast, bad):
        (tmp_path / f"profile-{row['method']}-{row['precision']}.json").write_text(json.dumps(row))
    (tmp_path / "claims.json").write_text(json.dumps([{"id": "x", "claimed": 3.18, "gmac_ratio": 3.0,
                                                       "realised_speedup": 2.1, "verdict": "reproduced"}]))
    (tmp_path / "cuda-validation.json").write_text(json.dumps({"summary": {
        "runtime": "torch-cuda-fp16", "gpu_name": "SYNTHETIC GPU", "held_out_mean_abs_error_pct": 12.0,
        "held_out_max_abs_error_pct": 20.0}}))
    (tmp_path / "ort-tensorrt.skipped").write_text("skipped: TensorrtExecutionProvider not in onnxruntime's providers")
    summary, md = gpu_check.summarise(tmp_path)
    failed = summary["failed_checks"]
    assert len(failed) == 2 and all(f.startswith("rsee fp32") for f in failed)
    assert any("breakdown parts sum 25.0%" in f for f in failed) and any("overhead 5.00%" in f for f in failed)
    fp16 = next(p for p in summary["profiles"] if p["precision"] == "fp16")
    assert fp16["speedup_vs_fp32"] == pytest.approx(2.5)
    assert summary["realised_speedups"][0]["realised_speedup"] == 2.1
    assert "| uniform | fp16 | 4.00 | 2.50x |" in md and "FAILED rsee fp32" in md
    assert summary["onnxruntime_skipped"] and "TensorrtExecutionProvider" in md
    assert gpu_check.main(["summary", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "summary.json").read_text())["failed_checks"] == failed


# --------------------------------------------------------------------------- modeled validation


def test_validation_on_cuda_writes_its_own_file() -> None:
    from evbench.harness.devices.modeled import measure_peaks, validate_device
    from evbench.harness.devices.modeled.validation import validation_filename

    assert validation_filename("cuda:0") == "cuda-validation.json"
    assert validation_filename("cpu") == "cpu-validation.json"  # the file every modeled cell reads
    with pytest.raises(ValueError, match="precision 'bf16'"):
        validate_device(device="cpu", precision="bf16")
    peaks = measure_peaks("cpu", "fp32", repeats=1)
    assert peaks["device"] == "cpu" and peaks["peak_gflops"] > 0 and "torch.mm fp32 1024^3" in peaks["method"]


# --------------------------------------------------------------------------- real GPU


@needs_cuda
def test_real_cuda_fp16_cell_with_breakdown_and_energy() -> None:  # pragma: no cover - GPU machines only
    from evbench.harness.measure import measure_cell

    method = create_method("uniform", config="lite", num_classes=5).eval()
    res = measure_cell(method, _clips(method), MeasureSettings(**{**QUICK, "min_queries": 16}, precision="fp16"),
                       device="cuda")
    assert res.precision == "fp16" and "torch.cuda.Event" in res.latency_convention
    parts = res.latency_breakdown_ms
    assert abs(sum(parts.values()) - res.latency_breakdown_mean_ms) <= SUM_TOLERANCE * res.latency_breakdown_mean_ms
    assert res.peak_cuda_mb and res.peak_cuda_mb > 0
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:
        return  # no NVML here: energy stays None, never invented
    assert res.energy_source == "nvml" and res.energy_j_per_clip is not None and res.energy_j_per_clip > 0


@needs_cuda
def test_real_cuda_breakdown_timer() -> None:  # pragma: no cover - GPU machines only
    method = create_method("rsee", config="lite", num_classes=5).eval().cuda()
    xs = [_clips(method, 1)[0].x[None].cuda()]
    with torch.inference_mode():
        method(xs[0])
    bd = measure_breakdown(method, xs, device="cuda", queries=4)
    assert bd["timer"] == "cuda_event" and bd["sum_rel_error"] <= SUM_TOLERANCE


@needs_cuda
def test_real_cuda_model_validation() -> None:  # pragma: no cover - GPU machines only
    from evbench.harness.devices.modeled import validate_device

    r = validate_device(device="cuda", precision="fp16", calibration_models=("resnet18", "vgg11", "squeezenet1_1"),
                        held_out_models=("resnet50",), resolution=112, rounds=1, min_queries=8, min_duration_s=0.1)
    s = r["summary"]
    assert s["runtime"] == "torch-cuda-fp16" and s["gpu_name"] and s["held_out_mean_abs_error_pct"] is not None


@pytest.mark.skipif(not CUDA, reason="needs an NVIDIA GPU")
def test_real_onnxruntime_cuda_provider(tmp_path: Path) -> None:  # pragma: no cover - GPU machines only
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed (no CUDAExecutionProvider)")
    from evbench.harness.measure import measure_cell

    method = create_method("uniform", config="lite", num_classes=5).eval()
    res = measure_cell(method, _clips(method), MeasureSettings(**QUICK), device="cuda", backend="onnxruntime",
                       bundle_dir=str(tmp_path))
    assert res.backend_detail["backend"] == "onnxruntime-cuda"
    assert res.backend_detail["providers_active"][0] == "CUDAExecutionProvider"
