"""Energy meters: Jetson rails (trapezoid), RAPL (wrap-around), NVML (fake pynvml), open_meter choice."""

from __future__ import annotations

import glob
import platform
import sys
import time
import types
from pathlib import Path

import pytest
from evbench.harness.devices import energy
from evbench.harness.devices.energy import (
    EnergyReading,
    JetsonRailMeter,
    NvmlMeter,
    RaplMeter,
    open_meter,
    rapl_domains,
)
from evbench.harness.timing import measure_latency

DATA = Path(__file__).parent / "data" / "jetson"


def nano_tree(root: Path, power_mw: int = 2132) -> Path:
    """Fake Jetson Nano root: release file, model and the INA3221 IIO rails (tests/data/jetson)."""
    for line in (DATA / "sysfs_nano_ina3221x.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rel, content = line.split("\t", 1)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content + "\n")
    (root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input").write_text(f"{power_mw}\n")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/nv_tegra_release").write_text((DATA / "nv_tegra_release_r32.txt").read_text())
    return root


# --------------------------------------------------------------------------- Jetson rails


def test_jetson_meter_trapezoid_with_fake_clock(tmp_path: Path) -> None:
    root = nano_tree(tmp_path)
    power = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input"
    now = [10.0]
    meter = JetsonRailMeter(str(root), interval_s=0.1, clock=lambda: now[0], threaded=False)
    assert meter.source == "jetson-rails" and meter.interval_s == 0.1 and meter.rail == "POM_5V_IN"
    meter.start()  # 2132 mW at t=10
    for t, mw in ((10.5, 4000), (11.0, 4000), (12.0, 2000)):
        now[0] = t
        power.write_text(f"{mw}\n")
        if t < 12.0:
            meter.sampler.sample_now()
    reading = meter.stop()  # 2000 mW at t=12
    expected = (0.5 * (2132 + 4000) / 2 + 0.5 * 4000 + 1.0 * (4000 + 2000) / 2) / 1000
    assert isinstance(reading, EnergyReading)
    assert reading.joules == pytest.approx(expected)
    assert reading.source == "jetson-rails" and reading.interval_s == 0.1
    assert reading.samples == 4 and reading.duration_s == pytest.approx(2.0)
    assert "POM_5V_IN" in reading.method and "trapezoid" in reading.method


def test_jetson_meter_threaded_constant_power(tmp_path: Path) -> None:
    root = nano_tree(tmp_path, power_mw=5000)
    meter = JetsonRailMeter(str(root), interval_s=0.01)
    meter.start()
    time.sleep(0.2)
    reading = meter.stop()
    assert reading.samples >= 3
    assert reading.joules == pytest.approx(5.0 * reading.duration_s, rel=1e-9)  # 5 W constant


def test_jetson_meter_through_measure_latency(tmp_path: Path) -> None:
    root = nano_tree(tmp_path, power_mw=4000)
    meter = open_meter("cpu", root=str(root))
    assert isinstance(meter, JetsonRailMeter)
    stats = measure_latency(lambda: time.sleep(0.002), min_queries=8, min_duration_s=0.0, warmup_runs=0,
                            energy_meter=meter)
    assert stats.energy_source == "jetson-rails"
    # 4 W for about n x 2 ms: joules per query near 4 W x query time
    assert stats.energy_j_per_query == pytest.approx(4.0 * stats.duration_s / stats.n, rel=0.5)


def test_open_meter_on_jetson_without_rails_is_none(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R32 (release), REVISION: 7.1\n")
    assert open_meter("cuda", root=str(tmp_path)) is None
    with pytest.raises(FileNotFoundError, match="INA3221"):
        JetsonRailMeter(str(tmp_path))


# --------------------------------------------------------------------------- RAPL


def rapl_tree(root: Path, energy_uj: int, max_uj: int = 1_000_000, mode: int = 0o644) -> Path:
    pkg = root / "sys/class/powercap/intel-rapl:0"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "name").write_text("package-0\n")
    (pkg / "energy_uj").write_text(f"{energy_uj}\n")
    (pkg / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (pkg / "energy_uj").chmod(mode)
    sub = root / "sys/class/powercap/intel-rapl:0:0"  # core sub-domain: must not be double counted
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "name").write_text("core\n")
    (sub / "energy_uj").write_text("5\n")
    dram = root / "sys/class/powercap/intel-rapl:1"
    dram.mkdir(parents=True, exist_ok=True)
    (dram / "name").write_text("psys\n")  # not a package domain
    (dram / "energy_uj").write_text("7\n")
    return pkg / "energy_uj"


def test_rapl_plain_and_wraparound(tmp_path: Path) -> None:
    counter = rapl_tree(tmp_path, energy_uj=900_000)
    assert [d["name"] for d in rapl_domains(str(tmp_path))] == ["package-0"]
    meter = RaplMeter(str(tmp_path), threaded=False)
    assert meter.source == "rapl" and meter.interval_s is None
    meter.start()
    counter.write_text("950000\n")
    meter.poll()
    counter.write_text("100000\n")  # wrapped at 1_000_000 uJ
    reading = meter.stop()
    # 900000 -> 950000 (+50000), -> wrap -> 100000 (+150000)
    assert reading.joules == pytest.approx(0.2)
    assert reading.source == "rapl" and "package-0" in reading.method


def test_rapl_unreadable_counter_means_no_meter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rapl_tree(tmp_path, energy_uj=1)
    real_open = open

    def deny(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - energy_uj is root-only
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(energy.jetson, "open", deny, raising=False)
    assert rapl_domains(str(tmp_path)) == []
    with pytest.raises(PermissionError, match="RAPL"):
        RaplMeter(str(tmp_path))
    assert open_meter("cpu", root=str(tmp_path)) is None


def test_rapl_missing_tree_means_no_meter(tmp_path: Path) -> None:
    assert rapl_domains(str(tmp_path)) == []
    assert open_meter("cpu", root=str(tmp_path)) is None


def test_open_meter_cpu_on_this_machine() -> None:
    """Whatever this machine offers: a RAPL meter when a package counter is readable, else None."""
    readable = [f for f in glob.glob("/sys/class/powercap/intel-rapl:*/energy_uj")
                if f.count(":") == 1 and energy.jetson._read_number(f) is not None]
    meter = open_meter("cpu")
    if Path("/etc/nv_tegra_release").exists():
        pytest.skip("on a Jetson the rails meter is chosen")
    if readable and platform.machine().lower() in ("x86_64", "amd64"):
        assert isinstance(meter, RaplMeter)
        meter.start()
        reading = meter.stop()
        assert reading.joules is None or reading.joules >= 0
    else:
        assert meter is None


def test_open_meter_modeled_is_none() -> None:
    assert open_meter("jetson-nano-modeled") is None


# --------------------------------------------------------------------------- NVML


class _NotSupported(Exception):
    pass


def fake_pynvml(counter_supported: bool, power_mw: float = 150_000.0) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    state = {"energy_mj": 1_000_000, "init": 0, "shutdown": 0}

    def total_energy(handle):  # noqa: ANN001, ANN202
        if not counter_supported:
            raise _NotSupported("Not Supported")
        state["energy_mj"] += 2500  # +2.5 J per read
        return state["energy_mj"]

    mod.nvmlInit = lambda: state.__setitem__("init", state["init"] + 1)
    mod.nvmlShutdown = lambda: state.__setitem__("shutdown", state["shutdown"] + 1)
    mod.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    mod.nvmlDeviceGetTotalEnergyConsumption = total_energy
    mod.nvmlDeviceGetPowerUsage = lambda handle: power_mw
    mod.state = state
    return mod


def test_nvml_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_pynvml(counter_supported=True)
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    meter = open_meter("cuda:1")
    assert isinstance(meter, NvmlMeter) and meter.counter and meter.index == 1
    assert meter.interval_s is None
    # the probe read in __init__ advanced the fake counter; the window sees one more step
    meter.start()
    reading = meter.stop()
    assert reading.joules == pytest.approx(2.5)
    assert reading.source == "nvml" and "TotalEnergyConsumption" in reading.method
    meter.close()
    assert mod.state["shutdown"] == 1


def test_nvml_power_sampling_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(counter_supported=False, power_mw=150_000.0))
    meter = NvmlMeter(0, interval_s=0.01)
    assert not meter.counter and meter.interval_s == 0.01
    meter.start()
    time.sleep(0.1)
    reading = meter.stop()
    assert reading.source == "nvml" and reading.interval_s == 0.01
    assert reading.joules == pytest.approx(150.0 * reading.duration_s)  # 150 W constant
    assert "nvmlDeviceGetPowerUsage" in reading.method


def test_nvml_init_failure_means_no_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_pynvml(True)

    def fail() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    mod.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    assert open_meter("cuda") is None
    with pytest.raises(RuntimeError, match="NVML did not initialise"):
        NvmlMeter(0)


def test_open_meter_cuda_on_this_machine() -> None:
    """Real pynvml here: a meter only when NVML initialises (no GPU here -> None)."""
    meter = open_meter("cuda:0")
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        has_nvml = True
    except Exception:
        has_nvml = False
    assert (meter is not None) == has_nvml
