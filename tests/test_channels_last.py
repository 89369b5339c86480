"""Backbones store their convolutions channels-last; the function is the NCHW one (methods/backbones.py)."""

import pytest
import torch
from evbench.methods.backbones import build_backbone
from evbench.methods.resnet_multibn import MultiBNResNet


def _conv_weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("name", ["resnet10", "mobilenet_v2_035"])
def test_backbone_is_channels_last_and_computes_the_nchw_function(name):
    torch.manual_seed(0)
    net = build_backbone(name).eval()
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(net))
    flat = build_backbone(name).to(memory_format=torch.contiguous_format).eval()
    flat.load_state_dict({k: v.contiguous() for k, v in net.state_dict().items()})
    assert not all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(flat))
    net.load_state_dict(flat.state_dict())  # loading NCHW tensors keeps the channels-last layout
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(net))
    x = torch.randn(2, 3, 56, 56)
    with torch.inference_mode():
        assert torch.allclose(net(x), flat(x), atol=1e-4, rtol=1e-4)


def test_multibn_resnet_is_channels_last():
    net = MultiBNResNet("resnet10", (112, 56), fc_dim=0)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(net))
