"""Spatial pre-processing: resize shorter side, centre crop, ImageNet normalise.

The pipeline is split in two so the frame cache can store the expensive part:

1. :func:`resize_crop` — ``(T, H, W, 3)`` uint8 → shorter side resized to
   ``scale_size`` → centre ``crop_size`` crop → resized to ``size`` when
   ``size != crop_size`` → ``(T, size, size, 3)`` uint8 (rounded).  All
   resizing is bilinear with anti-aliasing (``torch.nn.functional.interpolate``,
   ``antialias=True``), so lower resolutions are derived from the 224 crop the
   way AR-Net / RSEE derive them.
2. :func:`normalize` — uint8 → float32 ``(T, 3, S, S)``, ``/255``, minus
   ImageNet mean, divided by ImageNet std.

:func:`preprocess` is the composition.  The intermediate uint8 rounding is
deliberate: a clip served from the cache and one decoded afresh give
bit-identical tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "resize_crop", "normalize", "preprocess"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def resize_crop(
    frames: np.ndarray, size: int, *, scale_size: int = 256, crop_size: int = 224
) -> np.ndarray:
    """Resize the shorter side, centre-crop, and resize the crop to ``size``.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        size: Output side in pixels (e.g. 224, 168, 112, 84).
        scale_size: Target of the shorter side before cropping, pixels.
        crop_size: Side of the centre crop, pixels; ``<= scale_size``.

    Returns:
        ``(T, size, size, 3)`` uint8 RGB.

    Raises:
        ValueError: Wrong shape/dtype, non-positive sizes, or
            ``crop_size > scale_size``.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if min(size, scale_size, crop_size) < 1:
        raise ValueError("size, scale_size and crop_size must be positive")
    if crop_size > scale_size:
        raise ValueError(f"crop_size {crop_size} > scale_size {scale_size}")
    _, h, w, _ = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if h <= w:
        nh, nw = scale_size, max(crop_size, int(round(w * scale_size / h)))
    else:
        nh, nw = max(crop_size, int(round(h * scale_size / w))), scale_size
    x = _resize(x, nh, nw)
    top, left = (nh - crop_size) // 2, (nw - crop_size) // 2
    x = x[:, :, top : top + crop_size, left : left + crop_size]
    x = _resize(x, size, size)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def normalize(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """ImageNet-normalise uint8 RGB frames.

    Args:
        frames: ``(T, S, S, 3)`` uint8 RGB (numpy or torch).

    Returns:
        ``(T, 3, S, S)`` float32: ``(pixel / 255 - mean) / std`` per channel with
        mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``.

    Raises:
        ValueError: Not a ``(T, H, W, 3)`` array.
    """
    x = torch.as_tensor(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()


def preprocess(
    frames: np.ndarray, size: int, *, scale_size: int = 256, crop_size: int = 224
) -> torch.Tensor:
    """Full spatial pipeline: :func:`resize_crop` then :func:`normalize`.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        size: Output side in pixels.
        scale_size: Shorter side before cropping, pixels (default 256).
        crop_size: Centre crop side, pixels (default 224).

    Returns:
        ``(T, 3, size, size)`` float32, ImageNet-normalised.

    Raises:
        ValueError: As :func:`resize_crop`.
    """
    return normalize(resize_crop(frames, size, scale_size=scale_size, crop_size=crop_size))
