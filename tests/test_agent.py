"""The minimal device agent: Python 3.6 syntax, a replay of a tiny bundle, rows the store and report read."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from evbench.harness.agent import AGENT_FILES, AGENT_SCRIPT, write_agent
from evbench.harness.results import load
from torch import nn

AGENT_SOURCES = [AGENT_FILES[AGENT_SCRIPT], AGENT_FILES["jetson.py"]]
ALLOWED_IMPORTS = {
    "argparse", "hashlib", "json", "math", "os", "platform", "socket", "sys", "time", "traceback", "typing",
    "numpy", "onnxruntime", "jetson", "evbench", "glob", "re", "shutil", "subprocess", "threading", "jtop",
}


class Backbone(nn.Module):
    """(B, 3, 16, 16) -> (B, 8) features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class Cell(nn.Module):
    """An LSTM cell with three inputs (x, h, c) -> (h, c)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(8, 6)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cell(x, (h, c))


def _export(module: nn.Module, args: tuple, path: Path, names: list[str], outs: list[str], opset: int = 17) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; the bundle exporter uses it too
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(), args, str(path), dynamo=False, opset_version=opset, input_names=names,
            output_names=outs, dynamic_axes={n: {0: "batch"} for n in names + outs},
        )


def make_bundle(root: Path, opset: int = 17) -> Path:
    """A tiny bundle in the exporter's format: a backbone at two resolutions and an LSTM cell."""
    bundle = root / "bundle"
    torch.manual_seed(0)
    bb, cell = Backbone(), Cell()
    modules = []
    for size in (16, 12):
        f = f"modules/encoder.backbone@3x{size}x{size}.onnx"
        _export(bb, (torch.randn(2, 3, size, size),), bundle / f, ["in0"], ["out0"], opset)
        modules.append({"module": "encoder.backbone", "input_shape": [3, size, size], "role": "backbone",
                        "gmacs": 1e-5 * size * size, "file": f,
                        "inputs": [{"name": "in0", "shape": [None, 3, size, size], "dtype": "float32"}],
                        "outputs": [{"name": "out0", "shape": [None, 8], "dtype": "float32"}]})
    f = "modules/rnn.cell@8.onnx"
    _export(cell, (torch.randn(1, 8), torch.randn(1, 6), torch.randn(1, 6)), bundle / f,
            ["x", "h", "c"], ["h_out", "c_out"], opset)
    modules.append({"module": "rnn.cell", "input_shape": [8], "role": "policy", "gmacs": 1e-6, "file": f,
                    "inputs": [{"name": "x", "shape": [None, 8], "dtype": "float32"},
                               {"name": "h", "shape": [None, 6], "dtype": "float32"},
                               {"name": "c", "shape": [None, 6], "dtype": "float32"}],
                    "outputs": [{"name": "h_out", "shape": [None, 6], "dtype": "float32"},
                                {"name": "c_out", "shape": [None, 6], "dtype": "float32"}]})
    schedules = [
        {"clip": 0, "knobs": {"threshold": 0.5}, "gmacs": 0.0052, "frames_used": 2,
         "calls": [{"module": "encoder.backbone", "input_shape": [3, 16, 16], "batch": 2},
                   {"module": "rnn.cell", "input_shape": [8], "batch": 1},
                   {"module": "rnn.cell", "input_shape": [8], "batch": 1}]},
        {"clip": 1, "knobs": {"threshold": 0.5}, "gmacs": 0.0015, "frames_used": 1,
         "calls": [{"module": "encoder.backbone", "input_shape": [3, 12, 12], "batch": 1},
                   {"module": "rnn.cell", "input_shape": [8], "batch": 1}]},
    ]
    manifest = {
        "format": "evbench-onnx-bundle/1", "method": "toy_exit", "config": "lite", "num_classes": 10,
        "card": {"name": "toy_exit", "title": "Toy early exit", "paper": "none", "doi": "",
                 "input_kind": "frames", "frames": 4, "resolution": 16},
        "build": {"num_classes": 10}, "opset": opset, "exported": "2026-11-30T09:00:00+00:00",
        "torch": torch.__version__, "modules": modules, "schedules": schedules,
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = make_bundle(tmp_path_factory.mktemp("agent"))
    script = write_agent(b)
    assert script == b / AGENT_SCRIPT and (b / "jetson.py").is_file()
    return b


def run_agent(bundle: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # cwd outside the repo and -I (isolated): the agent must run from the bundle alone
    return subprocess.run(
        [sys.executable, "-I", str(bundle / AGENT_SCRIPT), str(bundle), "--out", str(out), *extra],
        cwd=str(out.parent), capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("src", AGENT_SOURCES, ids=lambda p: p.name)
def test_agent_files_parse_as_python36(src: Path) -> None:
    text = src.read_text(encoding="utf-8")
    tree = ast.parse(text, feature_version=(3, 6))
    assert "from __future__ import annotations" not in text
    for node in ast.walk(tree):
        assert not isinstance(node, ast.NamedExpr)
        if isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= ALLOWED_IMPORTS
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] in ALLOWED_IMPORTS
        if isinstance(node, ast.JoinedStr):
            for v in node.values:  # no f"{x=}" (3.8): the debug form leaves a literal ending in "="
                assert not (isinstance(v, ast.Constant) and str(v.value).endswith("="))


def test_write_agent_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="bundle directory"):
        write_agent(tmp_path / "missing")


def test_agent_replays_bundle_and_row_loads_and_renders(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = run_agent(bundle, out, "--min-queries", "4", "--min-duration", "0",
                     "--providers", "CPUExecutionProvider", "--warmup-runs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "row appended" in proc.stdout
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1
    df = load(out)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["status"] == "ok" and row["method"] == "toy_exit" and row["config"] == "lite"
    assert row["device"] == "cpu" and row["backend"] == "onnxruntime-cpu" and not row["modeled"]
    assert row["decisions_source"] == (
        "replayed: decisions recorded on the host (torch) for the bundle's example clips; module inputs random")
    assert row["latency_queries"] >= 4 and len(row["latency_samples_ms"]) == row["latency_queries"]
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p90"] <= row["latency_ms_p99"]
    assert row["latency_ms_mean"] > 0 and row["latency_stopped_by"] == "targets_met"
    assert row["gmacs_per_video"] == pytest.approx((0.0052 + 0.0015) / 2)
    assert row["frames_used"] == pytest.approx(1.5) and row["frames_total"] == 4
    assert row["gflops_per_video"] == pytest.approx(2 * row["gmacs_per_video"])
    assert row["energy_j_per_clip"] is None  # not a Jetson: absent, never invented
    assert "not measured" in row["energy_note"]
    assert json.loads(row["knobs"]) == {"threshold": 0.5}
    assert row["providers_active"][0] == "CPUExecutionProvider"
    assert row["env_onnxruntime"] and row["env_device"] == "cpu" and row["env_jetson"] is None
    assert row["env_torch"] is None  # the agent does not import torch
    assert row["latency_setup"]["min_queries"] == 4 and row["latency_setup"]["warmup_runs"] == 1
    assert row["bundle"]["schedules"] == 2 and len(row["latency_per_schedule_mean_ms"]) == 2

    from evbench.reports.html import write_report

    index = write_report(out, out / "report")
    html = Path(index).read_text() if Path(index).is_file() else (out / "report" / "index.html").read_text()
    assert "toy_exit" in html


def fake_nano_root(root: Path) -> Path:
    """A fake Jetson Nano filesystem: model, L4T release and INA3221 rails (tests/data/jetson samples)."""
    data = Path(__file__).parent / "data" / "jetson"
    for line in (data / "sysfs_nano_ina3221x.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rel, content = line.split("\t", 1)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content + "\n")
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/nv_tegra_release").write_text((data / "nv_tegra_release_r32.txt").read_text())
    (root / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Nano Developer Kit\x00")
    return root


def test_agent_on_fake_jetson_measures_rail_energy(bundle: Path, tmp_path: Path) -> None:
    root = fake_nano_root(tmp_path / "root")
    out = tmp_path / "results"
    proc = run_agent(bundle, out, "--min-queries", "4", "--min-duration", "0.3", "--interval", "0.01",
                     "--providers", "CPUExecutionProvider", "--warmup-runs", "1", "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    row = load(out).iloc[0]
    assert row["device"] == "NVIDIA Jetson Nano Developer Kit"
    assert row["energy_source"] == "jetson-rails" and row["energy_rail"] == "POM_5V_IN"
    assert row["energy_interval_s"] == 0.01 and row["energy_samples"] >= 3
    # constant 2132 mW on the fake rail: J per clip = 2.132 W x (sampled window ~ timed phase) / clips
    per_clip_s = row["latency_setup"]["duration_s"] / row["latency_queries"]
    assert row["energy_j_per_clip"] == pytest.approx(2.132 * per_clip_s, rel=0.25)
    jet = json.loads(row["env_jetson"])
    assert jet["l4t_release"] == "R32.7.1" and jet["total_rail"] == "POM_5V_IN"
    assert jet["power_mode"] is None  # no nvpmodel on this machine: not read, not guessed

    from evbench.reports.html import write_report

    write_report(out, out / "report")
    assert "Jetson Nano" in (out / "report" / "index.html").read_text()


def test_agent_failure_appends_failed_row(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format"] = "something-else/9"
    (bad / "manifest.json").write_text(json.dumps(manifest))
    write_agent(bad)
    out = tmp_path / "results"
    proc = run_agent(bad, out, "--min-queries", "1", "--min-duration", "0")
    assert proc.returncode == 1
    assert "manifest.json" in proc.stderr and "something-else/9" in proc.stderr
    df = load(out)
    assert df.iloc[0]["status"] == "failed" and "evbench-onnx-bundle/1" in df.iloc[0]["error"]


def test_agent_rejects_unavailable_providers(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = run_agent(bundle, out, "--min-queries", "1", "--min-duration", "0", "--providers", "NoSuchProvider")
    assert proc.returncode == 1 and "NoSuchProvider" in proc.stderr


def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    sys.path.insert(0, str(AGENT_FILES[AGENT_SCRIPT].parent))
    try:
        import evbench_agent
    finally:
        sys.path.pop(0)
    xs = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.3])
    for q in (5, 50, 90, 99):
        assert evbench_agent.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q, method="linear")))


def test_agent_rows_are_cell_result_rows(bundle: Path, tmp_path: Path) -> None:
    """The agent cannot import evbench, so its row keys are checked here against CellResult's fields."""
    from evbench.harness.row import SCHEMA_VERSION, CellResult, field_names

    sys.path.insert(0, str(AGENT_FILES[AGENT_SCRIPT].parent))
    try:
        import evbench_agent
    finally:
        sys.path.pop(0)
    assert evbench_agent.SCHEMA_VERSION == SCHEMA_VERSION
    out = tmp_path / "results"
    ok = run_agent(bundle, out, "--min-queries", "2", "--min-duration", "0", "--providers", "CPUExecutionProvider",
                   "--warmup-runs", "1")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"format": "other/1"}))
    write_agent(bad)
    assert run_agent(bad, out, "--min-queries", "1", "--min-duration", "0").returncode == 1
    raw = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in raw] == ["ok", "failed"]
    for r in raw:
        assert r["schema_version"] == SCHEMA_VERSION
        assert set(r) <= set(field_names()), set(r) - set(field_names())
        res = CellResult.from_row(r)
        assert res.extra == {} and res.to_row()["cell_id"] == r["cell_id"]
    df = load(out)
    assert set(field_names()) - {"env"} <= set(df.columns)  # read as full CellResult rows
    assert df["schema_version"].tolist() == [SCHEMA_VERSION, SCHEMA_VERSION]
