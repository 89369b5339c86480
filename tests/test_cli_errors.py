"""Every bad input a new user tried gives one line naming the culprit, exit code 2, and no traceback.

One parametrised test runs each case through ``evbench.harness.cli.main`` in
process (issue 9, item 6).  The data are tiny files built in ``tmp_path``:
a 16-clip features ``.npz``, variants with NaN / negative ``gmacs_per_frame``,
broken checkpoints and suites with a bad knob / override; pixel data is the session's tiny generated dataset.
No case trains or measures latency: each must fail before that.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from evbench.harness.cli import main

#: A small, fast pixel build: the cases that must fail after building use it.
UNI = ["--method", "uniform", "--config", "lite", "--frames", "2", "--resolution", "32"]
PROFILE = ["profile", *UNI, "--min-queries", "2", "--min-duration", "0", "--no-offline", "--no-crosscheck",
           "--clips", "1"]
TRAIN = ["train", *UNI, "--epochs", "1", "--quiet"]


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless, but code: weights_only must refuse it


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Tiny feature files and broken checkpoints; returns name (``feat_npz``) -> path."""
    from evbench.harness.registry import create_method

    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    f = rng.normal(size=(16, 4, 8)).astype(np.float32)
    labels = np.arange(16) % 2
    np.savez(d / "feat.npz", features=f, labels=labels, gmacs_per_frame=np.float32(1.0))
    np.savez(d / "neggm.npz", features=f, labels=labels, gmacs_per_frame=np.float32(-1.0))
    np.savez(d / "nangm.npz", features=f, labels=labels, gmacs_per_frame=np.float32(np.nan))
    np.savez(d / "nolabels.npz", features=f)
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_text("hello, not a checkpoint")
    torch.save({"a": torch.zeros(64)}, d / "whole.pt")
    whole = (d / "whole.pt").read_bytes()
    (d / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    torch.save({"format": "evbench-checkpoint-1", "state_dict": {}, "x": _Evil()}, d / "pickled.pt")
    torch.save({"format": "evbench-checkpoint-1", "state_dict": {"foo.weight": torch.zeros(2)}}, d / "wrongkeys.pt")
    torch.save({"weights": torch.zeros(2)}, d / "notevbench.pt")
    wide = create_method("uniform", config="lite", num_classes=5, frames=2, resolution=32)
    torch.save({"format": "evbench-checkpoint-1", "state_dict": wide.state_dict()}, d / "fiveclasses.pt")
    entry = '[[methods]]\nname = "uniform"\nconfig = "features"\n'
    (d / "suiteknob.toml").write_text(f'name = "k"\ndataset = "x"\n{entry}knobs = [{{ frames = -1 }}]\n')
    (d / "suiteset.toml").write_text(f'name = "s"\ndataset = "x"\n{entry}overrides = [{{ hidden = "wide" }}]\n')
    return {p.name.replace(".", "_"): str(p) for p in d.iterdir()}


def _cases():
    """(id, argv with {name} placeholders, text the message must contain)."""
    cuda = torch.cuda.is_available()
    cases = [
        # knobs: typed and range-checked from the card's KnobSpec, never clamped
        ("knob-not-a-number", [*PROFILE, "--knob", "frames=abc"], "frames"),
        ("knob-nan", ["profile", "--method", "frameexit", "--config", "lite", "--no-offline", "--knob",
                      "threshold=nan"], "threshold"),
        ("knob-negative", [*PROFILE, "--knob", "frames=-3"], "frames"),
        ("knob-above-range", [*PROFILE, "--knob", "frames=9"], "frames"),
        ("knob-unknown", [*PROFILE, "--knob", "bogus=1"], "bogus"),
        ("knob-no-equals", [*PROFILE, "--knob", "frames"], "--knob"),
        ("knob-bad-choice", ["profile", "--method", "dyngrid", "--config", "lite", "--knob", "route=sideways"],
         "route"),
        ("suite-knob-out-of-range", ["run", "--suite", "{suiteknob_toml}", "--train", "{feat_npz}", "--out",
                                     "{tmp}/r"], "suiteknob.toml"),
        # --set builder overrides (and a suite's overrides)
        ("suite-override-bad-value", ["run", "--suite", "{suiteset_toml}", "--train", "{feat_npz}", "--out",
                                      "{tmp}/r"], "overrides hidden"),
        ("set-unknown", [*PROFILE, "--set", "bogus=1"], "bogus"),
        ("set-not-an-int", [*PROFILE, "--set", "frames=abc"], "--set frames"),
        ("set-no-equals", [*PROFILE, "--set", "frames"], "--set"),
        ("set-nan-gmacs", ["profile", "--method", "uniform", "--config", "features", "--set",
                           "gmacs_per_frame=NaN"], "gmacs_per_frame"),
        ("set-negative-gmacs", ["profile", "--method", "uniform", "--config", "features", "--set",
                                "gmacs_per_frame=-2"], "gmacs_per_frame"),
        ("set-value-the-builder-refuses", [*PROFILE, "--set", "dropout=2"], "dropout=2"),
        ("set-value-the-builder-refuses-train", [*TRAIN, "--data", "{gen}", "--set", "input_kind=\"video\"",
                                                 "--out", "{tmp}/x.pt"],
         "input_kind='video'"),
        ("set-num-classes", [*PROFILE, "--set", "num_classes=3"], "--num-classes"),
        ("unknown-backbone", [*PROFILE, "--backbone", "resnet9000"], "resnet9000"),
        # numeric flags
        ("threads-zero", [*PROFILE, "--threads", "0"], "--threads"),
        ("threads-negative", ["run", "--threads", "-1"], "--threads"),
        ("frames-zero", [*PROFILE[:5], "--frames", "0"], "--frames"),
        ("frames-negative", ["train", "--method", "uniform", "--frames", "-3", "--out", "{tmp}/x.pt"], "--frames"),
        ("resolution-zero", ["profile", "--method", "uniform", "--resolution", "0"], "--resolution"),
        ("clips-zero", [*PROFILE, "--clips", "0"], "--clips"),
        ("min-queries-zero", [*PROFILE, "--min-queries", "0"], "--min-queries"),
        ("min-duration-negative", [*PROFILE, "--min-duration", "-1"], "--min-duration"),
        ("num-classes-zero", [*PROFILE, "--num-classes", "0"], "--num-classes"),
        ("batch-size-zero", [*TRAIN, "--batch-size", "0", "--out", "{tmp}/x.pt"], "--batch-size"),
        ("epochs-zero", [*TRAIN, "--epochs", "0", "--out", "{tmp}/x.pt"], "--epochs"),
        ("lr-negative", [*TRAIN, "--lr", "-1", "--out", "{tmp}/x.pt"], "--lr"),
        ("seed-negative", [*TRAIN, "--seed", "-1", "--out", "{tmp}/x.pt"], "--seed"),
        ("gmacs-per-frame-nan", ["run", "--train", "{feat_npz}", "--gmacs-per-frame", "nan"], "--gmacs-per-frame"),
        ("gmacs-per-frame-negative", ["run", "--train", "{feat_npz}", "--gmacs-per-frame", "-1"],
         "--gmacs-per-frame"),
        ("train-out-unwritable", [*TRAIN, "--data", "{gen}", "--out", "/proc/evbench/x.pt"], "--out"),
        ("train-out-a-directory", [*TRAIN, "--data", "{gen}", "--out", "{tmp}"], "--out"),
        ("opset-zero", ["export", *UNI, "--opset", "0", "--out", "{tmp}/b"], "--opset"),
        # allocations that cannot fit: the input tensor is estimated first
        ("input-too-large", ["profile", "--method", "uniform", "--config", "lite", "--frames", "100000",
                             "--resolution", "4096"], "--resolution"),
        # devices
        ("device-unknown", [*PROFILE, "--device", "tpu"], "--device"),
        ("device-unknown-run", ["run", "--train", "{feat_npz}", "--device", "cpu,tpu", "--out", "{tmp}/r"],
         "--device"),
        ("device-unknown-modeled", [*PROFILE, "--device", "jetson-tx9-modeled"], "jetson-tx9-modeled"),
        ("device-bad-index", [*PROFILE, "--device", "cuda:abc"], "--device"),
        # checkpoints
        ("ckpt-missing", [*PROFILE, "--checkpoint", "{tmp}/nope.pt"], "nope.pt"),
        ("ckpt-empty", [*PROFILE, "--checkpoint", "{empty_pt}"], "empty.pt"),
        ("ckpt-truncated", [*PROFILE, "--checkpoint", "{truncated_pt}"], "truncated.pt"),
        ("ckpt-not-pytorch", [*PROFILE, "--checkpoint", "{garbage_pt}"], "garbage.pt"),
        ("ckpt-pickled-code", [*PROFILE, "--checkpoint", "{pickled_pt}"],
         "refused: the file contains pickled code"),
        ("ckpt-wrong-keys", [*PROFILE, "--checkpoint", "{wrongkeys_pt}"], "wrongkeys.pt"),
        ("ckpt-not-evbench", [*PROFILE, "--checkpoint", "{notevbench_pt}"], "notevbench.pt"),
        ("ckpt-head-mismatch", [*PROFILE, "--num-classes", "3", "--checkpoint", "{fiveclasses_pt}"],
         "--num-classes 5"),
        ("ckpt-npz", ["export", *UNI, "--checkpoint", "{feat_npz}", "--out", "{tmp}/b"], "feat.npz"),
        # data of the wrong kind, bad feature files, missing paths
        ("features-to-pixel-method-profile", [*PROFILE, "--data", "{feat_npz}"], "feat.npz"),
        ("features-to-pixel-method-train", [*TRAIN, "--data", "{feat_npz}", "--out", "{tmp}/x.pt"], "feat.npz"),
        ("features-to-pixel-method-export", ["export", *UNI, "--data", "{feat_npz}", "--out", "{tmp}/b"],
         "feat.npz"),
        ("feature-dim-mismatch-export", ["export", "--method", "uniform", "--config", "features", "--data",
                                         "{feat_npz}", "--out", "{tmp}/b"], "--set feature_dim=8"),
        ("pixels-to-feature-method", ["profile", "--method", "uniform", "--config", "features", "--data", "{gen}"],
         "{gen}"),
        ("negative-gmacs-per-frame-file", ["run", "--train", "{neggm_npz}", "--out", "{tmp}/r"], "neggm.npz"),
        ("nan-gmacs-per-frame-file", ["profile", "--method", "uniform", "--config", "features", "--data",
                                      "{nangm_npz}"], "nangm.npz"),
        ("npz-without-labels", ["run", "--train", "{nolabels_npz}", "--out", "{tmp}/r"], "nolabels.npz"),
        ("data-missing-profile", [*PROFILE, "--data", "{tmp}/nosuch"], "nosuch"),
        ("data-missing-train", [*TRAIN, "--data", "{tmp}/nosuch", "--out", "{tmp}/x.pt"], "nosuch"),
        ("data-missing-run", ["run", "--train", "{tmp}/nosuch.npz", "--out", "{tmp}/r"], "nosuch.npz"),
        ("test-missing-run", ["run", "--train", "{feat_npz}", "--test", "{tmp}/none.npz", "--out", "{tmp}/r"],
         "none.npz"),
        # unknown names
        ("method-unknown", ["profile", "--method", "nosuch"], "nosuch"),
        ("config-unknown", ["profile", "--method", "uniform", "--config", "nosuch"], "nosuch"),
        ("suite-unknown", ["run", "--suite", "nosuch"], "nosuch"),
        ("backend-unknown-run", ["run", "--train", "{feat_npz}", "--backend", "tensorflow", "--out", "{tmp}/r"],
         "--backend"),
        ("backend-unknown-profile", [*PROFILE, "--backend", "tensorflow"], "--backend"),
        ("methods-unknown-run", ["run", "--train", "{feat_npz}", "--methods", "nosuch", "--out", "{tmp}/r"],
         "nosuch"),
        ("command-unknown", ["profiel"], "profiel"),
        ("required-flag-missing", ["profile"], "--method"),
    ]
    if not cuda:
        cases.append(("device-cuda-without-cuda", [*PROFILE, "--device", "cuda"], "CUDA"))
        cases.append(("device-cuda-without-cuda-run", ["run", "--train", "{feat_npz}", "--device", "cuda",
                                                       "--out", "{tmp}/r"], "CUDA"))
    else:
        cases.append(("device-cuda-index", [*PROFILE, "--device", f"cuda:{torch.cuda.device_count()}"], "--device"))
    return cases


@pytest.mark.parametrize(("argv", "culprit"), [pytest.param(a, c, id=i) for i, a, c in _cases()])
def test_bad_input_is_one_line_exit_2_no_traceback(argv, culprit, files, tiny_generated, tmp_path, capsys,
                                                   one_thread):
    subst = {**files, "tmp": str(tmp_path), "gen": str(tiny_generated)}
    argv = [a.format(**subst) for a in argv]
    culprit = culprit.format(**subst)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors, and commands' SystemExit("evbench: ...")
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.lstrip().startswith("warnings.warn")
             and "Warning" not in line]
    assert rc == 2, err
    assert "Traceback" not in err
    assert culprit in lines[-1], lines
    assert len(lines) <= 2, lines  # the one error line (run prints its cell count first when it gets that far)
    assert lines[-1].startswith("evbench"), lines


def test_debug_shows_the_traceback(files, capsys):
    rc = main(["--debug", *PROFILE, "--checkpoint", files["garbage_pt"]])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" in err and "garbage.pt" in err.splitlines()[-1]
    rc = main([*PROFILE, "--knob", "frames=abc", "--debug"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" in err and "KnobError" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    """A failure that is not bad input is not dressed up as a user error."""
    import evbench.harness.cli as cli

    def boom(args):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(cli, "cmd_methods", boom)
    with pytest.raises(ZeroDivisionError):
        main(["methods"])


def test_nan_feature_clips_are_named_and_the_others_count(tmp_path):
    from evbench.harness.data import open_dataset
    from evbench.harness.training import iterate_batches

    f = np.ones((6, 3, 4), np.float32)
    f[1, 2, 0], f[4, 0, :] = np.nan, np.inf
    np.savez(tmp_path / "nan.npz", features=f, labels=np.arange(6) % 2, video_ids=np.array([f"v{i}" for i in range(6)]))
    ds = open_dataset(str(tmp_path / "nan.npz"), split="all", frames=1, size=1)
    errors: list = []
    kept = [s.id for _, _, batch in iterate_batches(ds, range(len(ds)), 4, errors=errors) for s in batch]
    assert kept == ["v0", "v2", "v3", "v5"]
    assert [e["path"] for e in errors] == [f"{tmp_path / 'nan.npz'} clip v1", f"{tmp_path / 'nan.npz'} clip v4"]
    assert "1 NaN" in errors[0]["error"] and "4 inf" in errors[1]["error"]


def test_failed_row_survives_an_unusable_device():
    """A cell on a device torch cannot parse still gets its failed row (the run goes on)."""
    from evbench.harness.runner import _failed_env

    class Cell:
        device, backend = "tpu", "torch"

    env = _failed_env(Cell())
    assert env["device"] == "tpu" and "tpu" in env["device_error"]


def test_no_false_alarms_on_shipped_configurations_and_suites():
    """The checks refuse bad input only: every configuration's own values, every knob sweep and every
    shipped suite's cells pass them."""
    from evbench.harness.checks import check_cells, check_overrides
    from evbench.harness.registry import list_methods, method_configs
    from evbench.harness.runner import knob_sweep
    from evbench.harness.suites import load_suite

    for name in list_methods():
        configs = method_configs(name)
        for values in configs.values():
            for other in configs:
                check_overrides(name, other, values)
    for suite_name in ("default", "features", "data", "nightly"):
        suite = load_suite(suite_name)
        sweeps = {e["name"]: knob_sweep(e["name"], e.get("config", suite.default_config)) for e in suite.methods}
        cells = suite.cells(data=suite.dataset, train_data=None, device="cpu", methods=None, knob_sweeps=sweeps,
                            test_split=None, backend="torch")
        assert cells
        check_cells(cells, suite.path)


def test_console_exit_status_is_2_across_a_process(tmp_path):
    """The real process: a command's ``SystemExit("evbench: ...")`` message is one line and exit status 2 (not 1)."""
    import subprocess
    import sys

    argv = ["run", "--resume", "--suite", "features"]  # nothing to resume in an empty folder
    proc = subprocess.run([sys.executable, "-m", "evbench.harness.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("evbench")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
