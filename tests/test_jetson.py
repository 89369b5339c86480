"""Jetson detection and parsing on recorded samples (tests/data/jetson/README.md names the sources)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from evbench.harness.devices import jetson

DATA = Path(__file__).parent / "data" / "jetson"


def sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def build_tree(root: Path, *sysfs_samples: str, model: str | None = None, release: str | None = None) -> Path:
    """A fake filesystem root from ``path<TAB>content`` samples, a device-tree model and a release file."""
    for name in sysfs_samples:
        for line in sample(name).splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            rel, content = line.split("\t", 1)
            f = root / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(content + "\n")
    if model is not None:
        f = root / "proc/device-tree/model"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(model.encode() + b"\x00")  # device-tree strings are NUL-terminated
    if release is not None:
        f = root / "etc/nv_tegra_release"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(sample(release))
    return root


def no_commands(argv):  # noqa: ANN001, ANN201 - fake runner: no tool installed
    return None


# --------------------------------------------------------------------------- syntax


def test_jetson_module_is_python36_stdlib_only() -> None:
    src = (Path(jetson.__file__)).read_text(encoding="utf-8")
    tree = ast.parse(src, feature_version=(3, 6))
    assert "from __future__ import annotations" not in src
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
        assert not isinstance(node, ast.NamedExpr)
    assert imported <= {"glob", "os", "re", "shutil", "subprocess", "threading", "time", "typing", "jtop"}


# --------------------------------------------------------------------------- tegrastats


def test_tegrastats_nano_lines() -> None:
    lines = sample("tegrastats_nano.txt").splitlines()
    first = jetson.parse_tegrastats(lines[0])
    assert first["ram_used_mb"] == 1655 and first["ram_total_mb"] == 3956
    assert first["swap_used_mb"] == 0 and first["swap_total_mb"] == 1978
    assert first["cpus"] == [{"load_pct": p, "freq_mhz": 102} for p in (12, 10, 11, 12)]
    assert (first["emc_pct"], first["emc_mhz"]) == (3, 1600)
    assert (first["gr3d_pct"], first["gr3d_mhz"]) == (0, 76)
    assert first["temps_c"]["GPU"] == 37.0 and first["temps_c"]["thermal"] == 38.0
    assert first["temps_c"]["iwlwifi"] == 44.0
    assert first["rails_mw"] == {"POM_5V_IN": {"cur": 2132.0, "avg": 2132.0},
                                 "POM_5V_GPU": {"cur": 78.0, "avg": 78.0},
                                 "POM_5V_CPU": {"cur": 275.0, "avg": 275.0}}
    assert "RAM" not in first["rails_mw"] and "IRAM" not in first["rails_mw"]
    assert (first["total_rail"], first["total_mw"]) == ("POM_5V_IN", 2132.0)
    second = jetson.parse_tegrastats(lines[1])
    assert second["rails_mw"]["POM_5V_IN"] == {"cur": 2247.0, "avg": 2189.0}
    assert second["gr3d_pct"] == 16
    loaded = jetson.parse_tegrastats(lines[2])  # stress test: rail order differs, no @MHz on EMC/GR3D
    assert loaded["total_mw"] == 2956.0 and loaded["rails_mw"]["POM_5V_GPU"]["cur"] == 8633.0
    assert loaded["gr3d_pct"] == 99 and loaded["gr3d_mhz"] is None and loaded["emc_mhz"] is None
    assert all(c == {"load_pct": 100, "freq_mhz": 1479} for c in loaded["cpus"])
    off = jetson.parse_tegrastats(lines[3])
    assert off["cpus"][2:] == [None, None] and off["cpus"][0] == {"load_pct": 22, "freq_mhz": 518}


def test_tegrastats_orin_lines() -> None:
    lines = sample("tegrastats_orin.txt").splitlines()
    a = jetson.parse_tegrastats(lines[0])
    assert (a["ram_used_mb"], a["ram_total_mb"]) == (3645, 7620)
    assert len(a["cpus"]) == 6 and a["cpus"][2] == {"load_pct": 4, "freq_mhz": 729}
    assert (a["gr3d_pct"], a["gr3d_mhz"]) == (0, 305)  # "GR3D_FREQ 0%@[305]"
    assert (a["emc_pct"], a["emc_mhz"]) == (0, 204)
    assert a["temps_c"]["tj"] == pytest.approx(44.531)
    assert a["rails_mw"] == {"VDD_IN": {"cur": 2957.0, "avg": 2957.0},
                             "VDD_CPU_GPU_CV": {"cur": 486.0, "avg": 486.0},
                             "VDD_SOC": {"cur": 1012.0, "avg": 1012.0}}
    assert (a["total_rail"], a["total_mw"]) == ("VDD_IN", 2957.0)
    b = jetson.parse_tegrastats(lines[1])
    assert b["cpus"][4:] == [None, None] and b["total_mw"] == 4915.0
    assert "GR3D2_FREQ" not in b["rails_mw"] and "VIC_FREQ" not in b["rails_mw"]
    c = jetson.parse_tegrastats(lines[2])
    assert c["emc_pct"] is None and c["gr3d_pct"] == 0 and c["total_mw"] == 4742.0
    d = jetson.parse_tegrastats(lines[3])  # cur/avg/peak and cpu@50C/50C
    assert d["rails_mw"]["VDD_IN"] == {"cur": 9761.0, "avg": 9761.0}
    assert d["temps_c"]["cpu"] == 50.0 and d["temps_c"]["soc2"] == pytest.approx(47.937)
    assert d["cpus"][0] == {"load_pct": 72, "freq_mhz": 1728}


# --------------------------------------------------------------------------- nvpmodel / jetson_clocks / release


@pytest.mark.parametrize(
    ("name", "mode", "mode_id"),
    [
        ("nvpmodel_q_nano_maxn.txt", "MAXN", 0),
        ("nvpmodel_q_nano_5w.txt", "5W", 1),
        ("nvpmodel_q_orin_nano_15w.txt", "15W", 0),
        ("nvpmodel_q_xavier_fan.txt", "MODE_30W_4CORE", 5),
        ("nvpmodel_q_verbose_orin_nano.txt", "25W", 1),
    ],
)
def test_parse_nvpmodel(name: str, mode: str, mode_id: int) -> None:
    assert jetson.parse_nvpmodel(sample(name)) == {"name": mode, "id": mode_id}


def test_parse_nvpmodel_without_mode_line() -> None:
    assert jetson.parse_nvpmodel("NVPM ERROR: failed to read PARAM\n") is None
    assert jetson.parse_nvpmodel("NV Power Mode: MAXN\n") == {"name": "MAXN", "id": None}


def test_jetson_clocks_nano_not_pinned() -> None:
    c = jetson.parse_jetson_clocks(sample("jetson_clocks_show_nano.txt"))
    assert (c["soc"], c["machine"], c["online_cpus"]) == ("tegra210", "jetson-nano", "0-3")
    assert len(c["cpus"]) == 4
    assert c["cpus"][0] == {"cpu": 0, "online": True, "governor": "schedutil",
                            "min_mhz": 102.0, "max_mhz": 1428.0, "cur_mhz": 1428.0}
    assert c["gpu"] == {"min_mhz": 76.8, "max_mhz": 921.6, "cur_mhz": 153.6}
    assert c["emc"] == {"min_mhz": 204.0, "max_mhz": 1600.0, "cur_mhz": 1600.0, "override": 0}
    assert c["power_mode"] == "MAXN"
    assert c["clocks_pinned"] is False


def test_jetson_clocks_nano_5w_pinned_with_offline_cores() -> None:
    c = jetson.parse_jetson_clocks(sample("jetson_clocks_show_nano_5w_pinned.txt"))
    assert [x["online"] for x in c["cpus"]] == [True, True, False, False]
    assert c["gpu"] == {"min_mhz": 614.4, "max_mhz": 614.4, "cur_mhz": 614.4}
    assert c["emc"]["override"] == 1 and c["power_mode"] == "5W"
    assert c["clocks_pinned"] is True


def test_jetson_clocks_orin_nano_and_tx1() -> None:
    orin = jetson.parse_jetson_clocks(sample("jetson_clocks_show_orin_nano.txt"))
    assert orin["soc"] == "tegra234" and orin["machine"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert len(orin["cpus"]) == 6 and orin["cpus"][0]["cur_mhz"] == 960.0
    assert orin["gpu"] == {"min_mhz": 306.0, "max_mhz": 624.75, "cur_mhz": 306.0}
    assert orin["emc"]["max_mhz"] == 2133.0 and orin["emc"]["cur_mhz"] == 665.6
    assert orin["clocks_pinned"] is False and orin["power_mode"] is None
    tx1 = jetson.parse_jetson_clocks(sample("jetson_clocks_show_tx1.txt"))
    assert tx1["cpus"][0]["governor"] == "interactive"  # printed as "Gonvernor" by L4T 28
    assert tx1["cpus"][0]["online"] is None
    assert tx1["clocks_pinned"] is True


def test_parse_l4t_release() -> None:
    r32 = jetson.parse_l4t_release(sample("nv_tegra_release_r32.txt"))
    assert r32["release"] == "R32.7.1" and r32["major"] == 32 and r32["board"] is None
    r36 = jetson.parse_l4t_release(sample("nv_tegra_release_r36.txt"))
    assert (r36["release"], r36["board"]) == ("R36.4.3", "generic")
    assert r36["raw"].startswith("# R36 (release), REVISION: 4.3")


# --------------------------------------------------------------------------- sysfs rails


def test_rails_nano_iio_layout(tmp_path: Path) -> None:
    root = build_tree(tmp_path, "sysfs_nano_ina3221x.txt")
    rails = jetson.read_rails_sysfs(str(root))
    assert set(rails) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    assert rails["POM_5V_IN"] == {"power_mw": 2132.0, "voltage_mv": 5024.0, "current_ma": 424.0,
                                  "layout": "ina3221x-iio"}
    name, read_mw, info = jetson.total_rail_reader(str(root))
    assert name == "POM_5V_IN" and read_mw() == 2132.0 and info["kind"] == "board input rail"
    assert jetson.read_rails(str(root)) == (rails, "sysfs")  # jtop only for the real root


def test_rails_orin_hwmon_layout(tmp_path: Path) -> None:
    root = build_tree(tmp_path, "sysfs_orin_ina3221_hwmon.txt")
    rails = jetson.read_rails_sysfs(str(root))
    assert set(rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}  # "sum of shunt voltages" skipped
    assert rails["VDD_IN"]["voltage_mv"] == 4968.0 and rails["VDD_IN"]["current_ma"] == 1520.0
    assert rails["VDD_IN"]["power_mw"] == pytest.approx(4968 * 1520 / 1000)  # mV x mA -> mW
    name, read_mw, _ = jetson.total_rail_reader(str(root))
    assert name == "VDD_IN" and read_mw() == pytest.approx(7551.36)


def test_rails_without_input_rail_sum_module_rails(tmp_path: Path) -> None:
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hw.mkdir(parents=True)
    for i, (label, mv, ma) in enumerate([("VDD_GPU_SOC", 5000, 400), ("VDD_CPU_CV", 5000, 100)], 1):
        (hw / f"in{i}_label").write_text(label + "\n")
        (hw / f"in{i}_input").write_text(f"{mv}\n")
        (hw / f"curr{i}_input").write_text(f"{ma}\n")
    name, read_mw, info = jetson.total_rail_reader(str(tmp_path))
    assert name == "sum(VDD_GPU_SOC+VDD_CPU_CV)" and read_mw() == 2500.0
    assert "no board input rail" in info["kind"]


def test_no_rails_off_jetson(tmp_path: Path) -> None:
    assert jetson.read_rails_sysfs(str(tmp_path)) == {}
    assert jetson.total_rail_reader(str(tmp_path)) is None


def test_read_rails_jtop_shapes() -> None:
    class FakeJtop:
        def __init__(self, power):  # noqa: ANN001
            self.power = power

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            return False

        def ok(self) -> bool:
            return True

    v4 = {"rail": {"VDD_IN": {"volt": 4968, "curr": 1520, "power": 7551, "online": True}},
          "tot": {"power": 7551}}
    assert jetson.read_rails_jtop(lambda: FakeJtop(v4)) == {
        "VDD_IN": {"power_mw": 7551.0, "voltage_mv": 4968.0, "current_ma": 1520.0, "layout": "jtop"}}
    v3 = (2473, {"POM_5V_IN": {"cur": 2473, "avg": 2473}})
    assert jetson.read_rails_jtop(lambda: FakeJtop(v3))["POM_5V_IN"]["power_mw"] == 2473.0

    def broken():  # noqa: ANN202
        raise RuntimeError("jtop.service not active")

    assert jetson.read_rails_jtop(broken) is None


# --------------------------------------------------------------------------- detection / whole picture


def test_detection_on_fake_root(tmp_path: Path) -> None:
    root = build_tree(tmp_path, model="NVIDIA Jetson Nano Developer Kit", release="nv_tegra_release_r32.txt")
    assert jetson.is_jetson(str(root))
    assert jetson.read_model(str(root)) == "NVIDIA Jetson Nano Developer Kit"
    assert jetson.detect(str(root)) == {"model": "NVIDIA Jetson Nano Developer Kit",
                                        "l4t": "# R32 (release), REVISION: 7.1, GCID: 29818004",
                                        "l4t_release": "R32.7.1", "l4t_board": None}


def test_not_a_jetson(tmp_path: Path) -> None:
    assert not jetson.is_jetson(str(tmp_path))
    assert jetson.detect(str(tmp_path)) is None
    assert jetson.jetson_info(str(tmp_path), run=no_commands) is None


def test_this_machine_is_not_a_jetson() -> None:
    if Path("/etc/nv_tegra_release").exists():
        pytest.skip("running on a Jetson")
    assert jetson.jetson_info() is None


def test_jetson_info_nano_with_commands(tmp_path: Path) -> None:
    root = build_tree(tmp_path, "sysfs_nano_ina3221x.txt", model="NVIDIA Jetson Nano Developer Kit",
                      release="nv_tegra_release_r32.txt")
    outputs = {"nvpmodel": sample("nvpmodel_q_nano_5w.txt"),
               "jetson_clocks": sample("jetson_clocks_show_nano_5w_pinned.txt")}
    calls = []

    def run(argv):  # noqa: ANN001, ANN202
        calls.append(list(argv))
        return outputs.get(argv[0])

    info = jetson.jetson_info(str(root), run=run)
    assert calls == [["nvpmodel", "-q"], ["jetson_clocks", "--show"]]
    assert info["model"] == "NVIDIA Jetson Nano Developer Kit" and info["l4t_release"] == "R32.7.1"
    assert (info["power_mode"], info["power_mode_id"]) == ("5W", 1)
    assert info["jetson_clocks"] is True and info["clocks_source"] == "jetson_clocks --show"
    assert info["cpu_mhz"] == [921.6, 921.6] and info["cpu_max_mhz"] == 921.6
    assert info["gpu_mhz"]["cur_mhz"] == 614.4 and info["emc_mhz"]["max_mhz"] == 1600.0
    assert info["rails"] == ["POM_5V_CPU", "POM_5V_GPU", "POM_5V_IN"] and info["rails_source"] == "sysfs"
    assert (info["total_rail"], info["total_power_mw"]) == ("POM_5V_IN", 2132.0)
    json.dumps(info, allow_nan=False)


def test_jetson_info_orin_without_tools_uses_sysfs_clocks(tmp_path: Path) -> None:
    root = build_tree(tmp_path, "sysfs_orin_ina3221_hwmon.txt",
                      model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
                      release="nv_tegra_release_r36.txt")
    for i in range(2):
        d = root / f"sys/devices/system/cpu/cpu{i}"
        (d / "cpufreq").mkdir(parents=True)
        (d / "online").write_text("1\n")
        for k, v in (("scaling_min_freq", 729600), ("scaling_max_freq", 1344000), ("scaling_cur_freq", 729600)):
            (d / "cpufreq" / k).write_text(f"{v}\n")
        (d / "cpufreq/scaling_governor").write_text("schedutil\n")
    g = root / "sys/class/devfreq/17000000.gpu"
    g.mkdir(parents=True)
    for k, v in (("min_freq", 306000000), ("max_freq", 918000000), ("cur_freq", 306000000)):
        (g / k).write_text(f"{v}\n")
    info = jetson.jetson_info(str(root), run=no_commands)
    assert info["power_mode"] is None and info["l4t_release"] == "R36.4.3"
    assert info["clocks_source"] == "sysfs" and info["jetson_clocks"] is False
    assert info["cpu_mhz"] == [729.6, 729.6] and info["gpu_mhz"] == {"min_mhz": 306.0, "max_mhz": 918.0,
                                                                    "cur_mhz": 306.0}
    assert info["emc_mhz"] is None  # debugfs only
    assert info["total_rail"] == "VDD_IN" and info["total_power_mw"] == pytest.approx(7551.36)


def test_run_command_absent_tool_returns_none() -> None:
    assert jetson._run_command(["evbench-no-such-tool-xyz", "-q"]) is None


# --------------------------------------------------------------------------- sampler


def test_rail_sampler_trapezoid_with_fake_clock() -> None:
    times = iter([0.0, 0.5, 1.0, 2.0])
    powers = iter([1000.0, 3000.0, 3000.0, 1000.0])  # mW
    s = jetson.RailSampler(lambda: next(powers), interval_s=0.5, clock=lambda: next(times), threaded=False)
    s.start()
    s.sample_now()
    s.sample_now()
    samples = s.stop()
    assert samples == [(0.0, 1000.0), (0.5, 3000.0), (1.0, 3000.0), (2.0, 1000.0)]
    # 0.5*(1+3)/2 + 0.5*3 + 1.0*(3+1)/2 = 1 + 1.5 + 2 = 4.5 W s
    assert s.joules() == pytest.approx(4.5)
    assert jetson.integrate_trapezoid_j([(0.0, 5.0)]) is None
    with pytest.raises(ValueError, match="interval_s"):
        jetson.RailSampler(lambda: 1.0, interval_s=0)


def test_env_jetson_info_delegates(tmp_path: Path) -> None:
    from evbench.harness.env import jetson_info as env_jetson_info

    root = build_tree(tmp_path, "sysfs_orin_ina3221_hwmon.txt", model="NVIDIA Jetson Orin Nano Developer Kit",
                      release="nv_tegra_release_r36.txt")
    assert env_jetson_info(tmp_path / "missing", root=root) is None
    info = env_jetson_info(root / "etc/nv_tegra_release", root=root)
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit" and info["l4t_release"] == "R36.4.3"
    assert info["l4t"].startswith("# R36 (release)")
    assert info["rails"] == ["VDD_CPU_GPU_CV", "VDD_IN", "VDD_SOC"] and info["total_rail"] == "VDD_IN"
    if shutil.which("nvpmodel") is None:
        assert info["power_mode"] is None  # the tool is absent here: not read, not guessed
    json.dumps(info, allow_nan=False)
