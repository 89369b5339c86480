"""Method API and registry: cards, knobs, configurations, errors."""

from __future__ import annotations

import pytest
import torch
from evbench.harness.api import KnobError, Output, TraceStep
from evbench.harness.registry import UnknownMethodError, create_method


def test_unknown_method_and_config_errors_name_them():
    with pytest.raises(UnknownMethodError, match="nosuch"):
        create_method("nosuch", num_classes=3)
    with pytest.raises(UnknownMethodError, match="huge"):
        create_method("uniform", config="huge", num_classes=3)


def test_unknown_knob_is_rejected_with_the_known_ones():
    m = create_method("uniform", config="lite", num_classes=3)
    with pytest.raises(KnobError, match="frames"):
        m(torch.zeros(1, 4, 3, 112, 112), knobs={"threshold": 0.5})
    with pytest.raises(KnobError, match="forced-decision"):
        m.resolve_knobs({"force": 224})


def test_output_validates_shapes():
    with pytest.raises(ValueError, match="trace"):
        Output(torch.zeros(2, 3), [[TraceStep(0, "m", (1,))]])
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        Output(torch.zeros(2), [[], []])


def test_overrides_reach_the_builder_and_bad_ones_fail():
    m = create_method("uniform", config="paper", num_classes=10, backbone="resnet18", frames=2, resolution=112)
    assert m.card.frames == 2 and m.card.resolution == 112 and "resnet18" in m.card.title
    with pytest.raises(TypeError):
        create_method("uniform", config="lite", num_classes=10, nonsense=1)


def test_card_is_the_registry_object_and_claims_follow_the_configuration():
    from evbench.harness.claims import claims_by_id
    from evbench.harness.registry import method_card

    m = create_method("uniform", config="lite", num_classes=3)
    assert m.card == method_card("uniform", "lite") and m.card.config == "lite"
    paper = method_card("uniform", "paper")
    assert "arnet-uniform-resnet50-gmacs-per-video" in paper.claims
    assert claims_by_id(paper.claims)["arnet-uniform-resnet50-gmacs-per-video"].claimed == 65.76
    # an override that restates the configuration keeps its claims; one that changes it drops them
    assert method_card("uniform", "paper", frames=16).claims == paper.claims
    changed = method_card("uniform", "paper", frames=4)
    assert changed.claims == () and changed.frames == 4
    assert [s for s in changed.knobs[0].sweep] == [1, 2, 0] and changed.knobs[0].high == 4
    with pytest.raises(TypeError, match="nonsense"):
        method_card("uniform", "lite", nonsense=1)
    with pytest.raises(UnknownMethodError, match="huge"):
        method_card("uniform", "huge")


def test_knob_spec_range_and_choices():
    from evbench.harness.api import KnobSpec

    k = KnobSpec("threshold", 0.9, "exit threshold", (0.5, 1.01), low=0.0)
    assert k.in_range(0.0) and k.in_range(5) and not k.in_range(-0.1) and not k.in_range(float("nan"))
    assert not k.in_range("abc")
    r = KnobSpec("route", "diagonal", "grid route", choices=("diagonal", "depth_first"))
    assert r.in_range("depth_first") and not r.in_range("zigzag")
    assert r.to_dict()["choices"] == ["diagonal", "depth_first"]
