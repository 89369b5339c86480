"""Plain records passed between the data modules and the harness."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Entry", "Sample"]


@dataclass(frozen=True)
class Entry:
    """One item of a dataset listing, before anything is decoded.

    Attributes:
        id: Stable identifier, e.g. the path relative to the dataset root
            (``"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"``) or a feature
            file's ``video_ids`` value.
        path: Absolute path of the video file, frame folder or feature file.
        label: Class index, ``0 <= label < len(dataset.class_names)``.
        num_frames: Frame count when the listing knows it (TSN list files,
            generated manifest, feature arrays); ``None`` means "probe the file
            when first indexed".
    """

    id: str
    path: str
    label: int
    num_frames: int | None = None


@dataclass
class Sample:
    """One clip as served to a method, with timing of how it was produced.

    Attributes:
        id: Stable identifier (see :class:`Entry`).
        label: Class index.
        x: ``(T, 3, S, S)`` float32 ImageNet-normalised pixels, or ``(T, D)``
            float32 per-frame features.
        path: The file or folder it came from.
        frame_indices: 0-based source frame index of each of the ``T`` rows of
            ``x`` (may repeat for clips shorter than ``T``).
        decode_ms: Wall time spent decoding, in milliseconds; ``0.0`` when
            served from the frame cache.
        preprocess_ms: Wall time for resize / crop / normalise (and, when
            served from the cache, for reading the cache file), milliseconds.
        cached: Whether the frames came from the on-disk frame cache.
    """

    id: str
    label: int
    x: torch.Tensor
    path: str
    frame_indices: list[int] = field(default_factory=list)
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    cached: bool = False
