"""Resize / crop / normalise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evbench.harness.data import IMAGENET_MEAN, IMAGENET_STD, normalize, preprocess, resize_crop


@pytest.mark.parametrize("size", [224, 168, 112, 84])
def test_preprocess_shape_and_dtype(size):
    frames = np.random.default_rng(0).integers(0, 256, (3, 240, 320, 3), dtype=np.uint8)
    x = preprocess(frames, size)
    assert x.shape == (3, 3, size, size)
    assert x.dtype == torch.float32


def test_normalisation_of_a_constant_image():
    frames = np.full((2, 120, 160, 3), (255, 0, 128), dtype=np.uint8)
    x = preprocess(frames, 112)
    expect = [
        (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
        -IMAGENET_MEAN[1] / IMAGENET_STD[1],
        (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
    ]
    for c in range(3):
        assert torch.allclose(x[:, c], torch.tensor(expect[c]), atol=1e-5)


def test_resize_shorter_side_then_centre_crop():
    # left third red, middle green, right third blue on a wide frame: the
    # centre crop of a 256-high, 512-wide resize keeps only green.
    f = np.zeros((1, 100, 200, 3), dtype=np.uint8)
    f[:, :, :50, 0] = 255
    f[:, :, 50:150, 1] = 255
    f[:, :, 150:, 2] = 255
    out = resize_crop(f, 224)
    assert out.shape == (1, 224, 224, 3) and out.dtype == np.uint8
    assert (
        out[0, :, :, 1].min() == 255 and out[0, :, :, 0].max() == 0 and out[0, :, :, 2].max() == 0
    )


def test_portrait_frames_and_custom_scale_crop():
    f = np.zeros((2, 300, 100, 3), dtype=np.uint8)
    assert resize_crop(f, 56, scale_size=128, crop_size=112).shape == (2, 56, 56, 3)


def test_lower_resolution_is_derived_from_the_crop():
    f = np.random.default_rng(1).integers(0, 256, (1, 240, 320, 3), dtype=np.uint8)
    full = torch.from_numpy(resize_crop(f, 224)).permute(0, 3, 1, 2).float()
    small = torch.nn.functional.interpolate(full, size=(112, 112), mode="bilinear", antialias=True)
    got = torch.from_numpy(resize_crop(f, 112)).permute(0, 3, 1, 2).float()
    assert (got - small).abs().mean() < 2.0  # same content, up to the uint8 rounding in between


def test_normalize_accepts_torch_and_rejects_bad_shapes():
    x = normalize(torch.zeros(1, 4, 4, 3, dtype=torch.uint8))
    assert x.shape == (1, 3, 4, 4)
    with pytest.raises(ValueError):
        resize_crop(np.zeros((4, 4, 3), dtype=np.uint8), 112)
    with pytest.raises(ValueError):
        resize_crop(np.zeros((1, 4, 4, 3), dtype=np.float32), 112)
    with pytest.raises(ValueError):
        resize_crop(np.zeros((1, 4, 4, 3), dtype=np.uint8), 112, scale_size=100, crop_size=224)
