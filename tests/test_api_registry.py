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
