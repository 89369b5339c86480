"""The method contract, checked for every registered method x configuration (timm's tests/test_models.py style).

Every ``(method, configuration)`` of the registry gets the metadata checks —
its card is data (readable without building a network, the same object the
built method carries), its knobs' defaults, sweeps and upper-bound values lie
in their declared ranges, its claims exist in the claims registry.  The
configurations that run on a CPU in seconds (``lite`` and ``features``) also
get the behavioural checks on a seeded random clip:

* executed MACs (``FlopCounterMode``) == the trace sum over the cost table
  (less the declared costs that run outside the method), at the default and
  the upper-bound knobs;
* forced decisions (``knobs={"force": v}``): every option (at most ~8) runs, gives the same
  schedule when given as a string (as ``--knob force=...`` does), a forced
  resolution runs backbones only at that resolution, an unknown one is refused;
* batch independence: a batch of two gives the logits, traces and decisions of
  two batch-1 runs, at the default knobs and at the middle sweep value of the
  first swept knob (samples deciding differently in one batch);
* the ONNX Runtime round trip reproduces the torch logits (1e-4) and decisions
  at the default, the upper-bound and the first forced operating point.

Adding a method adds its cases here automatically; nothing in ``harness/`` or
``reports/`` names a method (checked below).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from evbench.harness.api import Method
from evbench.harness.claims import claims_by_id
from evbench.harness.costs import cost_table
from evbench.harness.registry import create_method, list_methods, method_card, method_configs
from method_helpers import run
from torch import nn

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
#: Configurations small enough for forwards on a 2-core CPU; the others get the metadata checks only.
RUN_CONFIGS = ("lite", "features")
CASES = [(n, c) for n in list_methods() for c in method_configs(n)]
RUN_CASES = [(n, c) for n, c in CASES if c in RUN_CONFIGS]
IDS = [f"{n}-{c}" for n, c in CASES]
RUN_IDS = [f"{n}-{c}" for n, c in RUN_CASES]
NUM_CLASSES = 5


# --------------------------------------------------------------------------- helpers

_BUILT: dict[tuple[str, str], Method] = {}


def _method(name: str, config: str) -> Method:
    """The seeded method of a case, built once per session (the checks below do not change it)."""
    if (name, config) not in _BUILT:
        torch.manual_seed(0)
        _BUILT[(name, config)] = create_method(name, config=config, num_classes=NUM_CLASSES)
    return _BUILT[(name, config)]


def _clip(method: Method, batch: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(method.example_input(batch).shape), generator=g)


def _traces(out) -> list[list[dict[str, Any]]]:
    return [[s.to_dict() for s in t] for t in out.trace]


class _CountModules:
    """Counts ``nn.Module`` constructions while active (a card must build none)."""

    def __enter__(self) -> _CountModules:
        self.count = 0
        self._orig = nn.Module.__init__
        counter = self

        def init(module: nn.Module, *args: Any, **kwargs: Any) -> None:
            counter.count += 1
            counter._orig(module, *args, **kwargs)

        nn.Module.__init__ = init  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        nn.Module.__init__ = self._orig  # type: ignore[method-assign]


# --------------------------------------------------------------------------- metadata: every case


@pytest.mark.parametrize(("name", "config"), CASES, ids=IDS)
def test_card_is_data_readable_without_building(name: str, config: str) -> None:
    with _CountModules() as built:
        card = method_card(name, config)
        again = method_card(name, config)
    assert built.count == 0, f"method_card({name!r}, {config!r}) constructed {built.count} modules"
    assert card == again
    assert card.name == name and card.config == config
    assert card.title and card.paper and card.input_kind in ("pixels", "features")
    assert card.frames > 0 and card.stages
    if card.input_kind == "pixels":
        assert card.resolution > 0 and card.resolution in card.resolutions and card.feature_dim == 0
    else:
        assert card.resolution == 0 and card.feature_dim > 0
    json.dumps(card.to_dict())  # what `evbench methods --json` prints


@pytest.mark.parametrize(("name", "config"), CASES, ids=IDS)
def test_knobs_defaults_sweeps_and_upper_bound_in_range(name: str, config: str) -> None:
    card = method_card(name, config)
    names = [k.name for k in card.knobs]
    assert len(names) == len(set(names)) and "force" not in names
    for k in card.knobs:
        assert k.description, k.name
        assert k.in_range(k.default), (k.name, k.default, k.low, k.high, k.choices)
        for v in k.sweep:
            assert k.in_range(v), (k.name, v, k.low, k.high, k.choices)
        if k.low is not None and k.high is not None:
            assert k.low <= k.high
    for key, value in card.upper_bound_knobs.items():
        if key == "force":
            assert value in card.force_options, (value, card.force_options)
        else:
            assert card.knob(key).in_range(value), (key, value)
    assert len(set(map(str, card.force_options))) == len(card.force_options)


@pytest.mark.parametrize(("name", "config"), CASES, ids=IDS)
def test_claims_exist_in_the_claims_registry_and_measure_this_method(name: str, config: str) -> None:
    card = method_card(name, config)
    claims = claims_by_id(card.claims)  # KeyError for an id the registry lacks
    for claim in claims.values():
        assert math.isfinite(claim.claimed) and claim.source
    assert not hasattr(card, "published"), "published numbers live in harness/claims.toml only"


def test_knob_sweeps_and_methods_listing_build_no_network(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from evbench.harness.cli import cmd_methods
    from evbench.harness.runner import knob_sweep

    with _CountModules() as built:
        sweeps = {(n, c): knob_sweep(n, c) for n, c in CASES}
        assert cmd_methods(argparse.Namespace(json=True, config="paper", num_classes=200)) == 0
    assert built.count == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(item["name"] for item in listing) == list_methods()
    for item in listing:
        assert set(item["cards"]) == set(method_configs(item["name"]))
        assert [c["id"] for c in item["claims"]] == list(item["card"]["claims"])
    for (n, c), settings in sweeps.items():
        assert settings[0] == {} and all(len(s) == 1 for s in settings[1:]), (n, c)


@pytest.mark.parametrize(("name", "config"), RUN_CASES, ids=RUN_IDS)
def test_built_method_carries_the_registry_card(name: str, config: str) -> None:
    method = _method(name, config)
    assert method.card == method_card(name, config)
    assert not method.training
    assert method.example_input(1).shape[1] == method.card.frames


# --------------------------------------------------------------------------- behaviour: lite / features


def _operating_points(method: Method) -> list[dict[str, Any] | None]:
    """The default knobs, the upper bound, and the middle sweep value of the first swept knob (mixed decisions)."""
    points: list[dict[str, Any] | None] = [None, dict(method.card.upper_bound_knobs) or None]
    points += [{k.name: k.sweep[len(k.sweep) // 2]} for k in method.card.knobs if k.sweep][:1]
    return points


@pytest.mark.parametrize(("name", "config"), RUN_CASES, ids=RUN_IDS)
def test_executed_macs_equal_trace_sum(name: str, config: str) -> None:
    method = _method(name, config)
    x = _clip(method, 2)
    table = cost_table(method)
    declared = {e.key: e.declared_gmacs for e in method.cost_entries() if e.declared_gmacs is not None}
    for knobs in _operating_points(method)[:2]:  # default and upper bound (the mixed point: batch test)
        out, per, executed = run(method, x, knobs, count=True)
        assert out.logits.shape == (2, NUM_CLASSES)
        assert all(s.key in table for t in out.trace for s in t)
        outside = sum(declared.get(s.key, 0.0) for t in out.trace for s in t)
        # executed counts what ran inside the method; declared costs (feature extractors) run outside it
        assert executed == pytest.approx(sum(per) - outside, rel=0.01, abs=1e-9), knobs


@pytest.mark.parametrize(("name", "config"), RUN_CASES, ids=RUN_IDS)
def test_forced_decisions(name: str, config: str) -> None:
    method = _method(name, config)
    if not method.card.force_options:
        pytest.skip(f"{name} [{config}] declares no forced-decision mode")
    x = _clip(method, 2, seed=2)
    table = cost_table(method)
    options = method.card.force_options
    step = max(1, len(options) // 8)  # at most ~8 schedules (TLEE has T x 3), always the first and the last
    for option in dict.fromkeys(options[::step] + options[-1:]):
        out, per, _ = run(method, x, {"force": option})
        assert all(s.key in table for t in out.trace for s in t) and all(g > 0 for g in per), option
        if option in (options[0], options[-1]):
            again, _, _ = run(method, x, {"force": str(option)})  # as a CLI string: the same schedule
            assert _traces(out) == _traces(again), option
        if option in method.card.resolutions and method.card.input_kind == "pixels":
            sides = {s.input_shape[-1] for t in out.trace for s in t if s.role == "backbone"}
            assert sides <= {option}, (option, sides)
    with pytest.raises(ValueError):  # KnobError is a ValueError
        method(x, knobs={"force": "no-such-schedule"})


@pytest.mark.parametrize(("name", "config"), RUN_CASES, ids=RUN_IDS)
def test_batch_of_two_equals_two_single_runs(name: str, config: str) -> None:
    method = _method(name, config)
    x = _clip(method, 2, seed=3)
    for knobs in _operating_points(method)[::2]:  # default and the mixed point (upper bound: no decisions)
        both, _, _ = run(method, x, knobs)
        for i in range(2):
            single, _, _ = run(method, x[i:i + 1], knobs)
            torch.testing.assert_close(single.logits[0], both.logits[i], atol=1e-4, rtol=1e-4)
            assert _traces(single)[0] == _traces(both)[i], knobs
            if both.decisions:  # same choices; float statistics (confidences) to the logits' tolerance
                assert single.decisions[0] == pytest.approx(both.decisions[i], rel=1e-4, abs=1e-4), knobs


@pytest.mark.parametrize(("name", "config"), RUN_CASES, ids=RUN_IDS)
def test_onnx_round_trip(name: str, config: str) -> None:
    from evbench.harness.onnx_backend import backend_info, max_abs_logit_diff, to_onnxruntime

    method = _method(name, config)
    ort_method = to_onnxruntime(method)
    counted = [e for e in method.cost_entries() if e.declared_gmacs is None]
    info = backend_info(ort_method)
    assert info["modules_exported"] == len(counted) > 0 and info["backend"] == "onnxruntime-cpu"
    clips = [_clip(method, 2, seed=4)]
    forced = method.card.force_options
    settings: list[dict[str, Any]] = [{}, dict(method.card.upper_bound_knobs)]
    settings += [{"force": f} for f in forced[:1]]
    for knobs in settings:
        check = max_abs_logit_diff(method, ort_method, clips, knobs=knobs)
        assert check["decisions_match"], (knobs, check)
        assert check["max_abs_logit_diff"] <= 1e-4, (knobs, check)
    # the copy reads the original's cost table and runs no torch module of the original's costed ones
    assert cost_table(ort_method) == cost_table(method)
    assert all(type(ort_method.get_submodule(e.module)).__name__ == "OrtModule" for e in counted)


# --------------------------------------------------------------------------- the harness knows no method


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_harness_or_report_module_names_a_method() -> None:
    names = set(list_methods())
    hits = []
    for folder in ("harness", "reports"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            hits += [f"{path.relative_to(ROOT)}:{line}: {value!r}" for line, value in _string_constants(path)
                     if value in names]
    assert not hits, "the harness and the reports must go through the registry, not method names:\n" + "\n".join(hits)


def test_the_methods_package_lists_no_method() -> None:
    import re

    text = (ROOT / "methods" / "__init__.py").read_text("utf-8")
    named = [n for n in list_methods() if re.search(rf"\b{re.escape(n)}\b", text)]
    assert not named, f"methods/__init__.py names {named}: a new method must need only its own file"


def test_every_method_declares_an_action_space_the_oracle_knows() -> None:
    from evbench.harness.oracle import ACTION_SPACES

    for name in list_methods():
        for config in method_configs(name):
            space = method_card(name, config).action_space
            assert space in ACTION_SPACES, f"{name} [{config}] declares action space {space!r}; known: {sorted(ACTION_SPACES)}"
