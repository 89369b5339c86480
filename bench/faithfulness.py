"""Faithfulness check: evbench's methods against their official code, on seeded random weights.

For each method with official code — RSEE (``fangvv/RSEE``), AR-Net and its TSN
baseline (``mengyuest/AR-Net``; evbench ``arnet`` and ``uniform``), TLEE
(``fangvv/TLEE``), FrameExit (``Qualcomm-AI-research/FrameExit``) and LiteEval
(``zxwu/lite_eval``) — this module

1. builds the evbench method and fills it with seeded random weights
   (:func:`seeded_state`: every tensor a function of the seed and its name only,
   so the same weights come back on any machine without the official code);
2. builds the official model *from the official repository* (a checkout given
   by path, never part of evbench), maps the weights onto it through evbench's
   own checkpoint converter (``convert_official_*``, official key → evbench key),
   saves them in the official checkpoint layout and loads that file into a fresh
   evbench method with ``load_official_*`` — the path a user's official
   checkpoint takes;
3. feeds both the same seeded clips (CPU, fp32, batch 1 as the official test
   loops) — the official model through its own pre-processing (its own
   normalisation statistics, its own ``rescale_proc`` for the lower resolutions)
   — under every forced decision and with free decisions, and compares the
   logits (max |difference|) and the decisions (exactly).

The official code runs unmodified; the shims are the smallest that let it run
on a CPU with torch 2.x, each listed in :data:`SHIMS`.  Its stochastic test-time
policy (``F.gumbel_softmax`` with Gumbel noise, RSEE and AR-Net) is replaced by
the arg-max (free decisions) or by the forced one-hot; its exit tests are
replaced by the forced schedule where a forced decision is asked for.

Run (official checkouts under ``/tmp/official/{RSEE,AR-Net,TLEE,FrameExit,lite_eval}``)::

    EVBENCH_OFFICIAL_ROOT=/tmp/official python -m evbench.bench.faithfulness --size paper --inputs 10
    python -m evbench.bench.faithfulness --official-root /tmp/official --size reduced \\
        --write-golden tests/data/golden

One method at a time, over a slice of the input seeds (slices of one case pool in
:func:`decision_rows`), with a torch thread count::

    python -m evbench.bench.faithfulness --official-root /tmp/official --method tlee --size paper \
        --inputs 5 --input-seed 105 --threads 1 --json tlee-105.json

The output is two Markdown tables: one row per case, and one row per case and
forced decision (every resolution, exit frame@layer or exit step) plus the free
decisions, each with its inputs, max |logit difference|, identical decisions
(n/n) and, for free decisions, the mix the official code took.  The paper cases
compare every forced decision on every input.

``--write-golden`` stores, per method, the *official* code's logits and
decisions for the reduced configuration (a few KB); ``tests/test_faithfulness.py``
replays them against evbench without any checkout, and runs this check itself
when ``EVBENCH_OFFICIAL_ROOT`` (or a per-repository ``EVBENCH_OFFICIAL_<NAME>``)
points at the checkouts.  Missing checkouts are reported as skipped, never as
failures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import types
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "REPOS", "SHIMS", "CASES", "Case", "seeded_state", "clip_pixels", "feature_pair", "evbench_method",
    "run_evbench", "official_repo", "check", "check_all", "golden_record", "decision_rows", "decision_table",
    "TOLERANCE",
]

#: Largest accepted max |logit difference| (the issue's criterion).
TOLERANCE = 1e-4

#: Official repositories: evbench method → (GitHub name, checkout folder name, environment variable).
REPOS: dict[str, tuple[str, str, str]] = {
    "rsee": ("fangvv/RSEE", "RSEE", "EVBENCH_OFFICIAL_RSEE"),
    "arnet": ("mengyuest/AR-Net", "AR-Net", "EVBENCH_OFFICIAL_ARNET"),
    "uniform": ("mengyuest/AR-Net", "AR-Net", "EVBENCH_OFFICIAL_ARNET"),
    "tlee": ("fangvv/TLEE", "TLEE", "EVBENCH_OFFICIAL_TLEE"),
    "frameexit": ("Qualcomm-AI-research/FrameExit", "FrameExit", "EVBENCH_OFFICIAL_FRAMEEXIT"),
    "liteeval": ("zxwu/lite_eval", "lite_eval", "EVBENCH_OFFICIAL_LITEEVAL"),
}

#: What is changed around the official code so it runs here (nothing inside it is edited).
SHIMS: dict[str, str] = {
    "thop, efficientnet_pytorch, tensorboardX, torchnet, loguru": "empty stand-in modules (imported, never used "
    "on the test path: FLOP tables, optional backbones, logging)",
    "torchvision.models.<name>(pretrained)": "always random initialisation (no download); the weights are "
    "overwritten anyway",
    "Tensor.cuda": "identity (CPU-only run)",
    "AR-Net SegmentConsensus (TSN baseline)": "the legacy autograd.Function instance is called through its own "
    "forward (torch 2.x refuses legacy Function calls); forward is the official average",
    "RSEE ParallelResNet.layer1..4": "an nn.Sequential that passes keyword arguments (spec=) on to its blocks: "
    "ops/parallel_resnet.py calls self.layerN(x, **kwargs), which torch's nn.Sequential refuses; the blocks and "
    "their downsample calls are the official ones",
    "F.gumbel_softmax (RSEE, AR-Net)": "arg-max one-hot (free) or the forced one-hot, instead of a Gumbel sample",
    "TLEE read_config": "the configuration object built from config/cloud_ucf101_resnet50_branch.yml with "
    "train_mode=test and the case's sizes (the module reads sys.argv[1] at import)",
    "TLEE/FrameExit exit tests (forced runs only)": "threshold_selection / gate_selection return the forced "
    "schedule, and num_frames is raised by one so the last frame obeys it",
    "LiteEval gumbel_softmax (forced runs only)": "the forced one-hot",
}

#: Range of the seeded BatchNorm weights (see :func:`seeded_state`).
BN_WEIGHT = (0.4, 1.0)

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))  # official TLEE configuration


# =============================================================================== seeded weights and inputs


def _generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + zlib.crc32(name.encode()))


def seeded_state(model: nn.Module, seed: int, *, gains: Mapping[str, float] | None = None,
                 bn_weight: tuple[float, float] = BN_WEIGHT) -> dict[str, torch.Tensor]:
    """A state_dict for ``model`` whose every tensor depends only on ``seed`` and the tensor's name.

    BatchNorm: weight U(``bn_weight``), bias N(0, 0.02²), running mean N(0, 0.02²),
    running var U(0.5, 1.5) (so every bank differs; the default weight range keeps
    a random ResNet-50's activations of order one); weights N(0, (g/√fan_in)²)
    with g = √2 for convolutions and 1 otherwise, times ``gains[prefix]`` for
    the first matching module-name prefix; biases N(0, 0.01²); scalars U(0, 1);
    integer buffers kept.

    Args:
        model: Any module (its state_dict names the tensors).
        seed: Weight seed.
        gains: Extra factors by module-name prefix (e.g. sharper classifiers).

    Returns:
        ``{name: tensor}`` with the model's shapes and dtypes.
    """
    mods = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            out[name] = t.clone()
            continue
        g = _generator(seed, name)
        prefix, _, leaf = name.rpartition(".")
        mod = mods.get(prefix)
        shape = tuple(t.shape)
        if leaf == "running_mean":
            v = 0.02 * torch.randn(shape, generator=g)
        elif leaf == "running_var":
            v = 0.5 + torch.rand(shape, generator=g)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            lo, hi = bn_weight
            v = (lo + (hi - lo) * torch.rand(shape, generator=g) if leaf == "weight"
                 else 0.02 * torch.randn(shape, generator=g))
        elif t.dim() <= 1 and t.numel() == 1:
            v = torch.rand(shape, generator=g)
        elif leaf.startswith("bias"):
            v = 0.01 * torch.randn(shape, generator=g)
        else:
            fan_in = max(1, t.numel() // shape[0])
            gain = math.sqrt(2.0) if isinstance(mod, nn.Conv2d) else 1.0
            for p, extra in (gains or {}).items():
                if name.startswith(p):
                    gain *= extra
                    break
            v = torch.randn(shape, generator=g) * (gain / math.sqrt(fan_in))
        out[name] = v.to(t.dtype)
    return out


def clip_pixels(seed: int, frames: int, size: int) -> torch.Tensor:
    """Seeded raw pixels ``(1, T, 3, S, S)`` in [0, 1].

    Per frame: a random colour, a random-contrast smooth pattern (4–16 px grid,
    bilinearly upsampled) and noise — clips that differ enough for a random
    policy to take different decisions.
    """
    g = _generator(seed, "clip")
    out = []
    for _ in range(frames):
        grid = int(torch.randint(4, 17, (1,), generator=g))
        pattern = nn.functional.interpolate(torch.rand(1, 3, grid, grid, generator=g), size=(size, size),
                                            mode="bilinear", align_corners=False)[0]
        colour = torch.rand(3, 1, 1, generator=g)
        contrast = 0.2 + 0.8 * torch.rand(1, generator=g)
        noise = 0.1 * torch.rand(3, size, size, generator=g)
        out.append((0.5 * colour + contrast * (pattern - 0.5) + noise + 0.2).clamp(0, 1))
    return torch.stack(out).unsqueeze(0)


def feature_pair(seed: int, frames: int, fine: int = 2048, coarse: int = 1280) -> torch.Tensor:
    """Seeded non-negative feature pairs ``(1, T, fine + coarse)`` (post-ReLU CNN features)."""
    g = _generator(seed, "features")
    return torch.relu(torch.randn(1, frames, fine + coarse, generator=g))


def _normalise(u: torch.Tensor, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    mean = torch.tensor(stats[0]).view(1, 1, 3, 1, 1)
    std = torch.tensor(stats[1]).view(1, 1, 3, 1, 1)
    return (u - mean) / std


# =============================================================================== cases


@dataclass(frozen=True)
class Case:
    """One evbench configuration compared with the official code.

    Attributes:
        method: evbench registry name.
        size: ``"paper"`` (official sizes) or ``"reduced"`` (small, for golden fixtures).
        config: evbench configuration.
        overrides: Builder overrides on top of ``config``.
        num_classes: C.
        knobs: Knobs of every evbench run (the same thresholds are given to the official code).
        forced: Forced decisions compared (each input gets ``per_input`` of them, cycling).
        per_input: Forced decisions per input (0 = all of them on every input).
        official: Sizes/flags of the official model (method specific).
        gains: Weight gains (:func:`seeded_state`).
    """

    method: str
    size: str
    config: str
    overrides: Mapping[str, Any]
    num_classes: int
    knobs: Mapping[str, Any]
    forced: tuple[Any, ...]
    per_input: int = 0
    official: Mapping[str, Any] = field(default_factory=dict)
    gains: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``<method>-<size>``."""
        return f"{self.method}-{self.size}"


def _tlee_forced(frames: int) -> tuple[str, ...]:
    return tuple(f"{n}@{layer}" for n in range(1, frames + 1) for layer in ("layer2", "layer3", "layer4"))


CASES: dict[str, Case] = {c.key: c for c in [
    Case("rsee", "paper", "official", {}, 5, {"threshold": 0.6}, (224, 168, 112, 84),
         official={"resolutions": (224, 168, 112, 84), "frames": 10}, gains={"new_fc": 6.0, "policy.linear": 15.0}),
    Case("rsee", "reduced", "official", {"resolutions": (64, 48, 32, 24), "frames": 4}, 5, {"threshold": 0.6},
         (64, 48, 32, 24), official={"resolutions": (64, 48, 32, 24), "frames": 4},
         gains={"new_fc": 6.0, "policy.linear": 15.0}),
    Case("arnet", "paper", "official", {}, 5, {}, (224, 168, 112, 84),
         official={"backbones": ("resnet50", "resnet34", "resnet18"), "resolutions": (224, 168, 112, 84),
                   "frames": 16}, gains={"policy.rnn": 12.0, "policy.linear": 12.0, "heads": 3.0, "lite_fc": 3.0}),
    Case("arnet", "reduced", "official",
         {"backbones": ["resnet18", "resnet18", "resnet18"], "resolutions": [64, 48, 32], "policy_resolution": 24,
          "frames": 8}, 5, {}, (64, 48, 32, 24),
         official={"backbones": ("resnet18", "resnet18", "resnet18"), "resolutions": (64, 48, 32, 24), "frames": 8},
         gains={"policy.rnn": 12.0, "policy.linear": 12.0, "heads": 3.0, "lite_fc": 3.0}),
    Case("uniform", "paper", "paper", {}, 5, {}, (), official={"backbone": "resnet50", "resolution": 224, "frames": 16}),
    Case("uniform", "reduced", "paper", {"backbone": "resnet18", "resolution": 64, "frames": 4}, 5, {}, (),
         official={"backbone": "resnet18", "resolution": 64, "frames": 4}),
    Case("tlee", "paper", "official", {}, 5, {"first_threshold": 0.95, "layer_threshold": 0.75}, _tlee_forced(10),
         official={"backbone": "resnet50", "output_dim": 2048}, gains={"classifier": 4.0, "gate": 3.0}),
    Case("tlee", "reduced", "official", {"backbone": "resnet18"}, 5, {"first_threshold": 0.95, "layer_threshold": 0.75},
         ("2@layer2", "3@layer4", "10@layer3"), per_input=2, official={"backbone": "resnet18", "output_dim": 512},
         gains={"classifier": 4.0, "gate": 3.0}),
    Case("frameexit", "paper", "paper", {}, 5, {"first_threshold": 0.7}, tuple(range(1, 11)),
         official={"backbone": "resnet50", "output_dim": 2048, "resolution": 224},
         gains={"classifiers": 4.0, "exit_selector": 3.0}),
    Case("frameexit", "reduced", "paper", {"backbone": "resnet18", "resolution": 64}, 5, {"first_threshold": 0.7},
         (2, 10), per_input=1, official={"backbone": "resnet18", "output_dim": 512, "resolution": 64},
         gains={"classifiers": 4.0, "exit_selector": 3.0}),
    Case("liteeval", "paper", "official", {}, 5, {}, ("fine", "coarse"), official={"frames": 25},
         gains={"core.linear": 4.0, "core.classifier": 3.0}),
    Case("liteeval", "reduced", "official", {"frames": 6}, 5, {}, ("fine", "coarse"), official={"frames": 6},
         gains={"core.linear": 4.0, "core.classifier": 3.0}),
]}


def evbench_method(case: Case) -> nn.Module:
    """The evbench method of ``case`` (eval mode, random init)."""
    from evbench.harness.registry import create_method

    return create_method(case.method, config=case.config, num_classes=case.num_classes, **dict(case.overrides))


def case_inputs(case: Case, seed: int) -> torch.Tensor:
    """Raw input of ``case`` for input seed ``seed``: pixels in [0, 1] or feature pairs."""
    if case.method == "liteeval":
        return feature_pair(seed, int(case.official["frames"]))
    m = evbench_method_card(case)
    return clip_pixels(seed, m.frames, m.resolution)


def evbench_method_card(case: Case) -> Any:
    """The card of ``case``'s evbench configuration."""
    from evbench.harness.registry import create_method

    return create_method(case.method, config=case.config, num_classes=case.num_classes,
                         **dict(case.overrides)).card


def forced_for_input(case: Case, index: int) -> list[Any]:
    """The forced decisions compared on input ``index`` (all, or ``per_input`` cycling through them)."""
    if not case.forced:
        return []
    if case.per_input <= 0:
        return list(case.forced)
    n = len(case.forced)
    return [case.forced[(index * case.per_input + j) % n] for j in range(case.per_input)]


# =============================================================================== evbench side


def run_evbench(case: Case, method: nn.Module, raw: torch.Tensor, force: Any = None) -> tuple[torch.Tensor, Any]:
    """evbench logits ``(C,)`` and decisions (the comparable form) for one raw input."""
    x = raw if case.method == "liteeval" else _normalise(raw, IMAGENET)
    knobs = dict(case.knobs)
    if force is not None:
        knobs["force"] = force
    with torch.no_grad():
        out = method(x, knobs=knobs)
    d = out.decisions[0] if out.decisions else {}
    if case.method == "rsee":
        dec: Any = {"resolutions": d["resolutions"], "exit_frame": d["exit_frame"]}
    elif case.method == "arnet":
        dec = {"resolutions": d["resolutions"]}
    elif case.method == "tlee":
        dec = {"frames": d["frames"], "frame_exit_layers": d["frame_exit_layers"], "exit_frame": d["exit_frame"],
               "exit_layer": d["exit_layer"]}
    elif case.method == "frameexit":
        dec = {"frames": d["frames"], "exit_step": d["exit_step"]}
    elif case.method == "liteeval":
        dec = {"actions": d["actions"]}
    else:
        dec = None
    return out.logits[0].detach(), dec


# =============================================================================== official side: imports and shims

_OFFICIAL_TOP = ("ops", "opts", "main_base", "model", "models", "utils", "dataset", "datasets", "tools", "log",
                 "read_config", "arch", "thop", "efficientnet_pytorch", "tensorboardX", "torchnet", "loguru")


def official_repo(method: str, root: str | os.PathLike[str] | None = None) -> Path | None:
    """The checkout of ``method``'s official repository, or None when not given / not there.

    Looked up in ``EVBENCH_OFFICIAL_<NAME>``, then ``<root>/<folder>`` with ``root`` or
    ``EVBENCH_OFFICIAL_ROOT`` (folders: :data:`REPOS`).
    """
    _, folder, env = REPOS[method]
    cands = [os.environ.get(env)]
    base = root or os.environ.get("EVBENCH_OFFICIAL_ROOT")
    if base:
        cands.append(str(Path(base) / folder))
    for c in cands:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    had = name in vars(obj) if isinstance(obj, type | types.ModuleType) else hasattr(obj, name)
    old = getattr(obj, name, None)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextlib.contextmanager
def official_imports(repo: Path, extra: Mapping[str, types.ModuleType] | None = None) -> Iterator[None]:
    """Import context for one official repository (see :data:`SHIMS`); everything is undone on exit."""
    import torchvision

    saved_mods = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _OFFICIAL_TOP}
    for k in saved_mods:
        del sys.modules[k]
    stubs = {
        "thop": _stub("thop", profile=lambda *a, **k: (0.0, 0.0), clever_format=lambda *a, **k: a),
        "efficientnet_pytorch": _stub("efficientnet_pytorch", EfficientNet=type("EfficientNet", (), {})),
        "tensorboardX": _stub("tensorboardX", SummaryWriter=type("SummaryWriter", (), {})),
        "torchnet": _stub("torchnet", meter=_stub("torchnet.meter")),
        "loguru": _stub("loguru", logger=_stub("logger", catch=lambda f: f, info=print)),
    }
    stubs.update(extra or {})
    sys.modules.update(stubs)
    sys.path.insert(0, str(repo))
    tv_names = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")
    originals = {n: getattr(torchvision.models, n) for n in tv_names}

    def no_download(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            kwargs.pop("pretrained", None)
            kwargs.pop("weights", None)
            return fn(weights=None, **kwargs)
        return build

    for n, fn in originals.items():
        setattr(torchvision.models, n, no_download(fn))
    try:
        with _patched(torch.Tensor, "cuda", lambda self, *a, **k: self):
            yield
    finally:
        for n, fn in originals.items():
            setattr(torchvision.models, n, fn)
        sys.path.remove(str(repo))
        for k in [k for k in sys.modules if k.split(".")[0] in _OFFICIAL_TOP]:
            del sys.modules[k]
        sys.modules.update(saved_mods)


def _onehot_gumbel(choice: Callable[[torch.Tensor], int]) -> Callable[..., torch.Tensor]:
    """A stand-in for ``F.gumbel_softmax(logits, tau, hard)``: the one-hot of ``choice(logits)``."""

    def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                       dim: int = -1) -> torch.Tensor:
        out = torch.zeros_like(logits)
        for i in range(logits.shape[0]):
            out[i, choice(logits[i])] = 1.0
        return out

    return gumbel_softmax


def _argmax(row: torch.Tensor) -> int:
    return int(row.argmax())


def _fixed(k: int) -> Callable[[torch.Tensor], int]:
    def choice(row: torch.Tensor) -> int:
        return k
    return choice


# =============================================================================== official builders and runners


class _Official:
    """An official model, its key mapping and its runner for one case."""

    model: nn.Module
    checkpoint_layout: str = "state_dict"  # how official checkpoints hold the weights

    def key_map(self) -> dict[str, str]:
        """evbench key → official key, from evbench's converter applied to the official names."""
        raise NotImplementedError

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        """Official logits ``(C,)`` and decisions (comparable form) for one raw input."""
        raise NotImplementedError


def _mapping(official: nn.Module, convert: Callable[[Mapping[str, Any]], Mapping[str, Any]],
             prefix: str = "module.") -> dict[str, str]:
    names = {prefix + k: prefix + k for k in official.state_dict()}
    mapped = convert(names)
    return {new: old[len(prefix):] for new, old in mapped.items()}


class _RSEE(_Official):
    def __init__(self, case: Case, repo: Path) -> None:
        self.case = case
        o = case.official
        self.resolutions = tuple(o["resolutions"])
        with official_imports(repo):
            import ops.rsee as rsee_mod
            from ops.dataset import TSNDataSet
            from opts import parser

            argv = ["hmdb", "RGB", "--arch", "parallel_resnet50", "--num_segments", str(o["frames"]), "--npb",
                    "--irte_joint", "--ada_reso_skip", "--policy_backbone", "mobilenet_v2",
                    "--reso_list", *map(str, self.resolutions), "--backbone_list", "parallel_resnet50",
                    "--exp_decay", "--init_tau", "0.000001", "--policy_also_backbone", "--policy_input_offset",
                    str(len(self.resolutions) - 1), "--blstm", "--irte_final", "--policy_from_scratch",
                    "--TE", str(case.knobs.get("threshold", 0.9))]
            args = parser.parse_args(argv)
            args.ada_crop_list = [1 for _ in args.reso_list]  # main_base.main does the same
            self.model = rsee_mod.RSEE(case.num_classes, args.num_segments, base_model=args.arch,
                                       consensus_type=args.consensus_type, dropout=args.dropout,
                                       partial_bn=not args.no_partialbn, pretrain=args.pretrain, fc_lr5=True,
                                       args=args)
            self.model.eval()  # RSEE.train() returns None, so no chaining
            self._kwargs_sequential(self.model.base_model_list[0])
            self.rescale = TSNDataSet.rescale_proc
            self.mod = rsee_mod
        self.repo = repo

    @staticmethod
    def _kwargs_sequential(net: nn.Module) -> None:
        def forward(seq: nn.Sequential, x: Any, **kwargs: Any) -> Any:
            for block in seq:
                x = block(x, **kwargs)
            return x

        for name in ("layer1", "layer2", "layer3", "layer4"):
            seq = getattr(net, name)
            seq.forward = types.MethodType(forward, seq)

    def key_map(self) -> dict[str, str]:
        from evbench.methods.rsee import convert_official_rsee

        return _mapping(self.model, convert_official_rsee)

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        x = _normalise(raw, IMAGENET)[0]  # (T, 3, S, S): the normalised crop of the official pipeline
        t, _, s, _ = x.shape
        flat = x.reshape(t * 3, s, s)
        inputs = [flat.unsqueeze(0)] + [self.rescale(None, flat, (r, r)).unsqueeze(0) for r in self.resolutions[1:]]
        choice = _argmax if force is None else _fixed(self.resolutions.index(int(force)))
        with official_imports(self.repo), _patched(torch.nn.functional, "gumbel_softmax", _onehot_gumbel(choice)), \
                torch.no_grad():
            out, r, exit_t, _ = self.model.forward_irte(input=inputs, tau=1e-6, isTraining=False)
        res = [self.resolutions[int(i)] for i in r[0].argmax(-1).tolist()]
        return out[0], {"resolutions": res, "exit_frame": int(exit_t) - 1}


class _ARNet(_Official):
    def __init__(self, case: Case, repo: Path, *, adaptive: bool = True) -> None:
        self.case, self.repo, self.adaptive = case, repo, adaptive
        o = case.official
        with official_imports(repo):
            import ops.models_ada as ada
            from ops.dataset import TSNDataSet
            from opts import parser

            if adaptive:
                self.resolutions = tuple(o["resolutions"])
                argv = ["actnet", "RGB", "--arch", o["backbones"][0], "--num_segments", str(o["frames"]), "--npb",
                        "--ada_reso_skip", "--policy_backbone", "mobilenet_v2",
                        "--reso_list", *map(str, self.resolutions), "--backbone_list", *o["backbones"],
                        "--skip_list", "1", "2", "4", "--exp_decay", "--init_tau", "0.000001",
                        "--policy_also_backbone", "--policy_input_offset", str(len(self.resolutions) - 1),
                        "--policy_from_scratch", "--model_paths", "none"]
            else:
                self.resolutions = (int(o["resolution"]),)
                argv = ["actnet", "RGB", "--arch", o["backbone"], "--num_segments", str(o["frames"]), "--npb",
                        "--rescale_to", str(o["resolution"]), "--pretrain", "none"]
            args = parser.parse_args(argv)
            if adaptive:
                args.ada_crop_list = [1 for _ in args.reso_list]  # main_base.main does the same
            self.model = ada.TSN_Ada(case.num_classes, args.num_segments, base_model=args.arch,
                                     consensus_type=args.consensus_type, dropout=args.dropout,
                                     partial_bn=not args.no_partialbn, pretrain=args.pretrain, fc_lr5=True,
                                     args=args)
            self.model.eval()  # TSN_Ada.train() returns None, so no chaining
            self.rescale = TSNDataSet.rescale_proc
            import ops.basic_ops as basic_ops

            self.basic_ops = basic_ops

    def key_map(self) -> dict[str, str]:
        if self.adaptive:
            from evbench.methods.arnet import convert_official_arnet

            return _mapping(self.model, convert_official_arnet)
        from evbench.methods.uniform import convert_official_tsn

        return _mapping(self.model, convert_official_tsn)

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        x = _normalise(raw, IMAGENET)[0]
        t, _, s, _ = x.shape
        flat = x.reshape(t * 3, s, s)
        if not self.adaptive:
            legacy_call = _patched(self.basic_ops.SegmentConsensus, "__call__", lambda fn, inp: fn.forward(inp))
            with official_imports(self.repo), legacy_call, torch.no_grad():
                out = self.model(input=[flat.unsqueeze(0)])
            return out[0], None
        inputs = [flat.unsqueeze(0)] + [self.rescale(None, flat, (r, r)).unsqueeze(0) for r in self.resolutions[1:]]
        n_pred = len(self.case.official["backbones"]) + 1
        # forced: branches in order, then the policy head (the last resolution)
        choice = _argmax if force is None else _fixed(self.resolutions.index(int(force)))
        with official_imports(self.repo), _patched(torch.nn.functional, "gumbel_softmax", _onehot_gumbel(choice)), \
                torch.no_grad():
            out, r_all, _, _ = self.model(input=inputs, tau=1e-6)
        res = [self.resolutions[a] if a < n_pred else "skip" for a in r_all[0].argmax(-1).tolist()]
        return out[0], {"resolutions": res}


def _tlee_config(repo: Path, case: Case) -> Any:
    import yaml

    with official_imports(repo):
        from utils.config import Config

        raw = yaml.safe_load((repo / "config" / "cloud_ucf101_resnet50_branch.yml").read_text())
        raw["train_mode"] = "test"
        raw["model"]["name"] = case.official["backbone"]
        raw["model"]["output_dim"] = [int(case.official["output_dim"])]
        raw["model"]["num_classes"] = case.num_classes
        raw["model"]["exit_thresh"] = float(case.knobs.get("layer_threshold", 0.8))
        raw["model"]["first_threshold"] = float(case.knobs.get("first_threshold", 0.99))
        return Config(raw)


_FIRST, _LAYER = 0.123456789, 0.987654321  # sentinel thresholds that tell the forced exit tests apart


class _TLEE(_Official):
    def __init__(self, case: Case, repo: Path) -> None:
        self.case, self.repo = case, repo
        self.config = _tlee_config(repo, case)
        with self._imports():
            import model.tlee as tlee_mod

            self.mod = tlee_mod
            self.model = tlee_mod.TLEEModel(self.config, is_train=False, branch_num=self.config.model.branch_num)
            self.model.eval()
        self.order = list(self.config.model.input_order10)
        self.frames = int(self.config.data.num_frames)

    def _imports(self) -> contextlib.AbstractContextManager[None]:
        return official_imports(self.repo, {"read_config": _stub("read_config", config=self.config)})

    def key_map(self) -> dict[str, str]:
        from evbench.methods.tlee import convert_official_tlee

        return _mapping(self.model, convert_official_tlee)

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        # the official test_fine loop (main.py), frames re-ordered by input_order10, batch 1
        x = _normalise(raw, KINETICS)[:, self.order]
        m, layers = self.model, ("layer2", "layer3", "layer4")
        branch_num = self.config.model.branch_num
        ctx: dict[str, int] = {}
        patches: list[contextlib.AbstractContextManager[Any]] = []
        if force is not None:
            n, layer = str(force).split("@")
            n, kf = int(n), layers.index(layer)

            def threshold_selection(y_t: torch.Tensor, threshold: float = 0.99) -> bool:
                temporal = ctx["t"] == n - 1 and ctx["k"] == kf
                return temporal if threshold == _FIRST else ctx["k"] == kf

            patches = [_patched(self.mod, "threshold_selection", threshold_selection),
                       _patched(m, "gate_selection", lambda idx, y_t: ctx["t"] == n - 1 and ctx["k"] == kf),
                       _patched(m, "first_threshold", _FIRST), _patched(m, "exit_thresh", _LAYER),
                       _patched(m, "num_frames", self.frames + 1)]
        frames, frame_layers, exit_frame, exit_layer, logits = [], [], None, None, None
        with self._imports(), contextlib.ExitStack() as stack, torch.no_grad():
            for p in patches:
                stack.enter_context(p)
            z_prev = None
            for t in range(x.shape[1]):
                frames.append(self.order[t])
                stopped = False
                for k in range(branch_num + 1):
                    ctx.update(t=t, k=k)
                    y, z_prev, branch_exit = m(x[:, t].unsqueeze(1), z_prev, t, k)
                    if y is not None:
                        frame_layers.append(layers[k])
                        exit_frame, exit_layer, logits = self.order[t], layers[k], y
                        break
                    if branch_exit:
                        frame_layers.append(layers[k])
                        stopped = True
                        break
                else:
                    frame_layers.append(layers[-1])
                    continue
                if stopped and y is None:
                    continue
                break
        return logits[0], {"frames": frames, "frame_exit_layers": frame_layers, "exit_frame": exit_frame,
                           "exit_layer": exit_layer}


class _FrameExit(_Official):
    checkpoint_layout = "bare"  # released checkpoints are a DataParallel state_dict

    def __init__(self, case: Case, repo: Path) -> None:
        self.case, self.repo = case, repo
        o = case.official
        with official_imports(repo):
            import model.adaptive_models as am
            from utils.config import Config

            self.mod = am
            cfg = {"data": {"num_frames": 10}, "model": {
                "first_threshold": float(case.knobs.get("first_threshold", 0.99)), "num_class": case.num_classes,
                "backbone": {"type": "2d", "name": f"torchvision.{o['backbone']}", "pretrained": False,
                             "requires_grad": False, "truncate_modules": -1, "output_dim": int(o["output_dim"])}}}
            self.model = am.ConditionalFrameExitInferenceModel(Config(cfg)).eval()
        self.order = [5, 0, 9, 2, 7, 4, 6, 3, 8, 1]  # inference.py

    def key_map(self) -> dict[str, str]:
        from evbench.methods.frameexit import convert_official_frameexit

        return _mapping(self.model, convert_official_frameexit)

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        x = _normalise(raw, IMAGENET)[:, self.order]
        m = self.model
        ctx: dict[str, int] = {}
        patches: list[contextlib.AbstractContextManager[Any]] = []
        if force is not None:
            n = int(force)
            patches = [_patched(self.mod, "threshold_selection", lambda y_t, threshold=0.99: ctx["t"] == n - 1),
                       _patched(m, "gate_selection", lambda idx, y_t: ctx["t"] == n - 1),
                       _patched(m, "num_frames", 11)]
        frames, step, y_pred = [], None, None
        with official_imports(self.repo), contextlib.ExitStack() as stack, torch.no_grad():
            for p in patches:
                stack.enter_context(p)
            z_prev = None
            for t in range(x.shape[1]):  # inference.py's loop
                ctx["t"] = t
                frames.append(self.order[t])
                y_pred, z_prev = m(x[:, t].unsqueeze(dim=1), z_prev, t)
                if y_pred is not None:
                    step = t
                    break
        return y_pred[0], {"frames": frames, "exit_step": step}


class _LiteEval(_Official):
    def __init__(self, case: Case, repo: Path) -> None:
        self.case, self.repo = case, repo
        with official_imports(repo):
            import models.lite_eval as le

            self.mod = le
            args = types.SimpleNamespace(large_cell_size=2048, small_cell_size=512, tau=1.0,
                                         num_frames=int(case.official["frames"]))
            self.model = le.LiteEval(args, num_classes=case.num_classes).eval()

    def key_map(self) -> dict[str, str]:
        return {"core." + k: k for k in self.model.state_dict()}

    def run(self, raw: torch.Tensor, force: Any) -> tuple[torch.Tensor, Any]:
        fine, coarse = raw[..., :2048], raw[..., 2048:]
        patches = []
        if force is not None:
            idx = 0 if force == "fine" else 1

            def gumbel_softmax(training: bool, x: torch.Tensor, tau: float = 1.0, hard: bool = False) -> torch.Tensor:
                out = torch.zeros_like(x)
                out[:, idx] = 1.0
                return out

            patches = [_patched(self.mod, "gumbel_softmax", gumbel_softmax)]
        with official_imports(self.repo), contextlib.ExitStack() as stack, torch.no_grad():
            for p in patches:
                stack.enter_context(p)
            logits, r = self.model(fine, coarse)
        r = r.reshape(-1, 2)
        return logits[0], {"actions": ["fine" if int(a) == 0 else "coarse" for a in r.argmax(-1).tolist()]}


def build_official(case: Case, repo: Path) -> _Official:
    """The official model of ``case`` built from the checkout ``repo``."""
    if case.method == "rsee":
        return _RSEE(case, repo)
    if case.method == "arnet":
        return _ARNet(case, repo)
    if case.method == "uniform":
        return _ARNet(case, repo, adaptive=False)
    if case.method == "tlee":
        return _TLEE(case, repo)
    if case.method == "frameexit":
        return _FrameExit(case, repo)
    if case.method == "liteeval":
        return _LiteEval(case, repo)
    raise KeyError(case.method)


def load_official(case: Case, method: nn.Module, path: str) -> None:
    """Load an official-layout checkpoint file into ``method`` with evbench's converter."""
    from evbench.methods import arnet, frameexit, liteeval, rsee, tlee, uniform

    loaders = {"rsee": rsee.load_official_rsee, "arnet": arnet.load_official_arnet,
               "uniform": uniform.load_official_tsn, "tlee": tlee.load_official_tlee,
               "frameexit": frameexit.load_official_frameexit, "liteeval": liteeval.load_official_liteeval}
    loaders[case.method](method, path)


# =============================================================================== the check


def check(case: Case, repo: Path, *, inputs: int = 10, weight_seed: int = 0, input_seed: int = 100,
          progress: Callable[[str], None] | None = None,
          partial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Compare evbench with the official code on ``inputs`` seeded clips.

    ``partial`` is called after every input with the result so far (``"partial": True``
    until the last input), so a long paper-size run can be saved as it goes.

    Returns:
        ``{"case", "method", "size", "max_abs_logit_diff_forced", "max_abs_logit_diff_free",
        "decisions_identical", "runs", "records"}`` — ``records`` holds, per input, the
        official logits and decisions of every run (what a golden fixture stores).

    Raises:
        ValueError: ``inputs`` < 1.
        RuntimeError: The converter leaves keys unmatched, or the official-layout round trip changes a tensor.
    """
    if inputs < 1:
        raise ValueError(f"inputs must be >= 1, got {inputs}")
    ev = evbench_method(case).eval()
    state = seeded_state(ev, weight_seed, gains=case.gains)
    ev.load_state_dict(state)
    off = build_official(case, repo)
    kmap = off.key_map()
    own = off.model.state_dict()
    missing = sorted(set(state) - set(kmap)) + sorted(set(own) - set(kmap.values()))
    if missing:
        raise RuntimeError(f"{case.key}: converter leaves keys unmatched: {missing[:10]}")
    off.model.load_state_dict({kmap_old: state[new] for new, kmap_old in kmap.items()}, strict=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "official.pth")
        sd = {"module." + k: v for k, v in off.model.state_dict().items()}
        torch.save(sd if off.checkpoint_layout == "bare" else {"state_dict": sd}, path)
        loaded = evbench_method(case).eval()
        load_official(case, loaded, path)
    for k, v in loaded.state_dict().items():
        if not torch.equal(v, state[k]):
            raise RuntimeError(f"{case.key}: {k} differs after the official-layout round trip")
    worst = {"forced": 0.0, "free": 0.0}
    same = True
    resolutions = evbench_method_card(case).resolutions
    result: dict[str, Any] = {}
    records = []
    runs = 0
    for i in range(inputs):
        seed = input_seed + i
        raw = case_inputs(case, seed)
        rec: dict[str, Any] = {"input_seed": seed, "runs": []}
        for force in [None, *forced_for_input(case, i)]:
            lo, do = off.run(raw, force)
            le, de = run_evbench(case, loaded, raw, force)
            diff = float((lo.float() - le.float()).abs().max())
            if not (math.isfinite(diff) and bool(torch.isfinite(lo).all())):
                diff = math.inf  # NaN/inf logits fail (max() would silently skip a NaN)
            kind = "free" if force is None else "forced"
            worst[kind] = max(worst[kind], diff)
            same = same and do == de
            runs += 1
            rec["runs"].append({"force": force, "logits": [round(float(v), 7) for v in lo],
                                "decisions": do, "max_abs_diff": diff, "same_decisions": do == de,
                                **({} if do == de else {"evbench_decisions": de})})
        records.append(rec)
        if progress:
            progress(f"{case.key}: input {i + 1}/{inputs} worst forced {worst['forced']:.2e} "
                     f"free {worst['free']:.2e} decisions {'same' if same else 'DIFFER'}")
        result = {"case": case.key, "method": case.method, "size": case.size, "config": case.config,
                  "overrides": dict(case.overrides), "num_classes": case.num_classes, "knobs": dict(case.knobs),
                  "gains": dict(case.gains), "weight_seed": weight_seed, "inputs": len(records),
                  "resolutions": list(resolutions),
                  "max_abs_logit_diff_forced": worst["forced"] if case.forced else None,
                  "max_abs_logit_diff_free": worst["free"], "decisions_identical": same, "runs": runs,
                  "passed": same and max(worst.values()) <= TOLERANCE, "records": list(records),
                  **({"partial": True} if len(records) < inputs else {})}
        if partial:
            partial(result)
    return result


def golden_record(result: Mapping[str, Any]) -> dict[str, Any]:
    """The golden-fixture form of a :func:`check` result: official outputs only, no differences."""
    keep = ("case", "method", "size", "config", "overrides", "num_classes", "knobs", "gains", "weight_seed")
    recs = [{"input_seed": r["input_seed"],
             "runs": [{"force": x["force"], "logits": x["logits"], "decisions": x["decisions"]} for x in r["runs"]]}
            for r in result["records"]]
    source = REPOS[result["method"]][0]
    return {**{k: result[k] for k in keep}, "official_repository": source, "tolerance": TOLERANCE,
            "generated_by": "python -m evbench.bench.faithfulness --size reduced --write-golden (official code, CPU, "
                            "fp32)", "records": recs}


def check_all(methods: Sequence[str], *, size: str = "paper", inputs: int = 10, root: str | None = None,
              input_seed: int = 100, progress: Callable[[str], None] | None = None,
              done: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """:func:`check` for every method in ``methods`` whose checkout is found (others: ``skipped``).

    ``done`` is called with the results so far after every input of every method (the
    method in progress last, ``"partial": True``), e.g. to save them as the run goes.
    """
    out: list[dict[str, Any]] = []
    for name in methods:
        case = CASES[f"{name}-{size}"]
        repo = official_repo(name, root)
        if repo is None:
            out.append({"case": case.key, "method": name, "size": size, "skipped": True,
                        "reason": f"no checkout of {REPOS[name][0]} (set {REPOS[name][2]} or EVBENCH_OFFICIAL_ROOT)"})
            continue
        out.append(check(case, repo, inputs=inputs, input_seed=input_seed, progress=progress,
                         partial=(lambda r, prev=list(out): done([*prev, r])) if done else None))
    return out


def _mix(method: str, decisions: Sequence[Any]) -> str:
    """A one-line summary of the official free decisions of ``method`` over several inputs."""
    from collections import Counter

    def fmt(c: Counter[Any]) -> str:
        return " ".join(f"{k}:{v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0])))

    if method == "rsee":
        res = Counter(r for d in decisions for r in d["resolutions"][:d["exit_frame"] + 1])
        return f"frames at {fmt(res)}; exit after frame {fmt(Counter(d['exit_frame'] + 1 for d in decisions))}"
    if method == "arnet":
        return "frames at " + fmt(Counter(r for d in decisions for r in d["resolutions"]))
    if method == "tlee":
        return "exit " + fmt(Counter(f"{len(d['frames'])}@{d['exit_layer']}" for d in decisions))
    if method == "frameexit":
        return "exit after frame " + fmt(Counter(d["exit_step"] + 1 for d in decisions))
    if method == "liteeval":
        return "frames " + fmt(Counter(a for d in decisions for a in d["actions"]))
    return ""


def decision_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per case and per forced decision (``"free"`` for free decisions), pooled over ``results``.

    Several results of one case (e.g. runs over different input seeds) are pooled.

    Returns:
        Rows ``{"case", "force", "inputs", "max_abs_logit_diff", "identical", "runs", "mix"}``;
        ``mix`` summarises the official free decisions (:func:`_mix`), empty for forced rows.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if r.get("skipped"):
            continue
        for rec in r["records"]:
            for run in rec["runs"]:
                key = (r["case"], "free" if run["force"] is None else str(run["force"]))
                g = groups.setdefault(key, {"case": key[0], "method": r["method"], "force": key[1], "seeds": set(),
                                            "max_abs_logit_diff": 0.0, "identical": 0, "runs": 0, "decisions": []})
                g["seeds"].add(rec["input_seed"])
                g["max_abs_logit_diff"] = max(g["max_abs_logit_diff"], run["max_abs_diff"])
                g["identical"] += bool(run["same_decisions"])
                g["runs"] += 1
                g["decisions"].append(run["decisions"])
    rows = []
    for g in groups.values():
        rows.append({"case": g["case"], "force": g["force"], "inputs": len(g["seeds"]),
                     "max_abs_logit_diff": g["max_abs_logit_diff"], "identical": g["identical"], "runs": g["runs"],
                     "mix": _mix(g["method"], g["decisions"]) if g["force"] == "free" else ""})
    return rows


def decision_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per case and forced decision (and free decisions), see :func:`decision_rows`."""
    lines = ["| case | decision | inputs | max |Δlogit| | decisions identical | official free decisions |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in decision_rows(results):
        lines.append(f"| {row['case']} | {'forced ' + row['force'] if row['force'] != 'free' else 'free'} | "
                     f"{row['inputs']} | {row['max_abs_logit_diff']:.2e} | {row['identical']}/{row['runs']} | "
                     f"{row['mix']} |")
    return "\n".join(lines)


def _table(results: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| case | resolutions | runs | max |Δlogit| forced | max |Δlogit| free | decisions | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['case']} | | | | | | skipped: {r['reason']} |")
            continue
        forced = "—" if r["max_abs_logit_diff_forced"] is None else f"{r['max_abs_logit_diff_forced']:.2e}"
        lines.append(f"| {r['case']} | {'/'.join(map(str, r['resolutions']))} | {r['runs']} | {forced} | "
                     f"{r['max_abs_logit_diff_free']:.2e} | {'identical' if r['decisions_identical'] else 'DIFFER'} | "
                     f"{'pass' if r['passed'] else 'FAIL'}{' (partial)' if r.get('partial') else ''} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the check, print a Markdown table, optionally write JSON and golden fixtures.

    Returns:
        0 when every checked case passes (skipped cases do not fail), 1 otherwise.
    """
    ap = argparse.ArgumentParser(prog="python -m evbench.bench.faithfulness", description=__doc__.split("\n")[0])
    ap.add_argument("--official-root", help="folder holding the official checkouts (default: $EVBENCH_OFFICIAL_ROOT)")
    ap.add_argument("--method", action="append", choices=sorted(REPOS), help="method(s) to check (default: all)")
    ap.add_argument("--size", choices=("paper", "reduced"), default="paper")
    ap.add_argument("--inputs", type=int, default=10, help="seeded clips per method (default 10)")
    ap.add_argument("--input-seed", type=int, default=100,
                    help="seed of the first clip (default 100; clips use input-seed .. input-seed + inputs - 1)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", help="write the full results (with per-run records) here, after every method")
    ap.add_argument("--write-golden", metavar="DIR", help="write <method>.json golden fixtures (official outputs)")
    a = ap.parse_args(argv)
    if a.inputs < 1:
        ap.error("--inputs must be >= 1")
    if a.threads is not None:
        if a.threads < 1:
            ap.error("--threads must be >= 1")
        torch.set_num_threads(a.threads)

    def save(partial: list[dict[str, Any]]) -> None:
        if a.json:
            Path(a.json).write_text(json.dumps(partial, indent=1))

    results = check_all(a.method or sorted(REPOS), size=a.size, inputs=a.inputs, root=a.official_root,
                        input_seed=a.input_seed, progress=lambda s: print(s, file=sys.stderr, flush=True), done=save)
    print(_table(results))
    print()
    print(decision_table(results))
    save(results)
    if a.write_golden:
        d = Path(a.write_golden)
        d.mkdir(parents=True, exist_ok=True)
        for r in results:
            if not r.get("skipped"):
                (d / f"{r['method']}.json").write_text(json.dumps(golden_record(r), separators=(",", ":")) + "\n")
    return 0 if all(r.get("skipped") or r["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
