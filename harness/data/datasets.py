"""Dataset classes: the common base and the pixel (video / frame folder) dataset.

A dataset knows its samples and labels and nothing of methods (DESIGN §2).
Listing is eager and cheap (split files and folder names); everything that
touches a video happens lazily in ``__getitem__``, which raises
:class:`~evbench.harness.data.errors.DataError` naming the file for that one item.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from .cache import FrameCache
from .decode import decode_frames, probe_num_frames
from .errors import DataError
from .records import Entry, Sample
from .sampling import tsn_indices
from .transforms import normalize, resize_crop

__all__ = ["ClipDataset", "VideoDataset", "collate_samples"]


class ClipDataset(torch.utils.data.Dataset):
    """Base of every dataset: a labelled list of clips, indexed lazily.

    Args:
        name: Short name for reports (e.g. ``"ucf101"``, ``"generated"``).
        class_names: Class names, index = label.
        entries: The items, one per clip.
        synthetic: Whether the data is generated rather than recorded.
        note: Human-readable remark for reports (how the split was formed;
            ``"SYNTHETIC ..."`` for generated data).
        gmacs_per_frame: Feature datasets: declared cost of producing one
            frame's feature, GMACs; ``None`` for pixel datasets.

    Attributes:
        name, class_names, entries, synthetic, note, gmacs_per_frame: As given.
        input_kind: ``"pixels"`` (``Sample.x`` is ``(T, 3, S, S)``) or
            ``"features"`` (``(T, D)``).
        manifest: The generator's manifest (per-video oracle information) for
            generated datasets, else ``None``.
    """

    input_kind: Literal["pixels", "features"] = "pixels"

    def __init__(
        self,
        *,
        name: str,
        class_names: Sequence[str],
        entries: Sequence[Entry],
        synthetic: bool = False,
        note: str = "",
        gmacs_per_frame: float | None = None,
    ) -> None:
        self.name = name
        self.class_names = list(class_names)
        self.entries = list(entries)
        self.synthetic = synthetic
        self.note = note
        self.gmacs_per_frame = gmacs_per_frame
        self.manifest: dict | None = None
        for e in self.entries:
            if not 0 <= e.label < len(self.class_names):
                raise DataError(e.path, f"label {e.label} outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.entries)

    def _index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += len(self.entries)
        if not 0 <= i < len(self.entries):
            raise IndexError(f"index {i} out of range for dataset of {len(self.entries)}")
        return i

    def __getitem__(self, i: int) -> Sample:
        """The ``i``-th clip.

        Raises:
            IndexError: ``i`` out of range.
            DataError: The item's file is unusable (names the file).
        """
        i = self._index(i)
        entry = self.entries[i]
        try:
            return self._load(i, entry)
        except DataError:
            raise
        except Exception as e:  # anything else is still this file's failure
            raise DataError(entry.path, f"{type(e).__name__}: {e}") from e

    def _load(self, i: int, entry: Entry) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int64 labels of all items, without loading any clip."""
        return np.array([e.label for e in self.entries], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    def __repr__(self) -> str:
        kind = "SYNTHETIC " if self.synthetic else ""
        return (
            f"{type(self).__name__}({self.name!r}, {kind}{len(self)} clips, "
            f"{self.num_classes} classes, {self.input_kind})"
        )


class VideoDataset(ClipDataset):
    """Pixel clips from video files or frame folders.

    ``__getitem__`` samples ``frames`` indices with :func:`tsn_indices`
    (segment centres, or a random offset per segment when ``train``), decodes
    them (:func:`decode_frames`), applies
    :func:`~evbench.harness.data.transforms.resize_crop` and
    :func:`~evbench.harness.data.transforms.normalize`.  Evaluation clips
    (``train=False``) go through the :class:`FrameCache` when one is set;
    training clips bypass it unless ``cache_train`` is true (their random
    offsets would fill the disk with one-off entries).

    Training randomness is reproducible: item ``i``'s offsets come from
    ``numpy.random.default_rng([seed, epoch, i, draw])`` where ``epoch`` is set
    by :meth:`set_epoch` and ``draw`` counts this process's draws of item
    ``i`` (so repeated epochs differ even without ``set_epoch``; call
    ``set_epoch`` for identical results across ``DataLoader`` workers).

    Args:
        frames: ``T``, frames per clip.
        size: Output side ``S`` in pixels.
        train: Training sampling (random offsets) instead of segment centres.
        seed: Seed of the training offsets.
        cache: Frame cache, or ``None`` for no caching.
        scale_size: Shorter side before the crop, pixels.
        crop_size: Centre crop side, pixels.
        **kwargs: Passed to :class:`ClipDataset`.

    ``Sample.x`` is ``(T, 3, S, S)`` float32.  ``decode_ms`` is the decoding
    wall time (0 on a cache hit); ``preprocess_ms`` covers resize, crop and
    normalise, or reading the cache entry and normalising on a hit.
    """

    input_kind: Literal["pixels", "features"] = "pixels"

    def __init__(
        self,
        *,
        frames: int = 8,
        size: int = 224,
        train: bool = False,
        seed: int = 0,
        cache: FrameCache | None = None,
        scale_size: int = 256,
        crop_size: int = 224,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = frames
        self.size = size
        self.train = train
        self.seed = seed
        self.cache = cache
        self.cache_train = False
        #: Training only: ``{}`` to keep every decoded, resized and cropped frame of each clip in memory
        #: (``(N, S, S, 3)`` uint8 per clip, decoded once), so later epochs' random TSN offsets decode
        #: nothing; ``None`` (default): decode every draw.  The pixels are the same either way.
        self.frame_memo: dict[int, np.ndarray] | None = None
        self.scale_size = scale_size
        self.crop_size = crop_size
        self.epoch = 0
        self._num_frames: dict[int, int] = {}
        self._draws: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds training offsets (see the class docstring).

        Args:
            epoch: Epoch number; also resets this process's per-item draw counters.
        """
        self.epoch = int(epoch)
        self._draws.clear()

    def num_frames(self, i: int) -> int:
        """Frame count of item ``i`` (from the listing, else probed once and memoised).

        Args:
            i: Item index.

        Returns:
            Number of frames, ``>= 1``.

        Raises:
            IndexError: ``i`` out of range.
            DataError: The file is unreadable or has 0 frames.
        """
        i = self._index(i)
        if i not in self._num_frames:
            e = self.entries[i]
            n = e.num_frames if e.num_frames is not None else probe_num_frames(e.path)
            if n <= 0:
                raise DataError(e.path, "clip has 0 frames")
            self._num_frames[i] = n
        return self._num_frames[i]

    def indices(self, i: int) -> list[int]:
        """The frame indices item ``i`` is sampled at next (consumes a draw in training).

        Args:
            i: Item index.

        Returns:
            ``frames`` 0-based source frame indices.

        Raises:
            IndexError: ``i`` out of range.
            DataError: The file is unreadable or has 0 frames.
        """
        n = self.num_frames(i)
        if not self.train:
            return tsn_indices(n, self.frames, train=False)
        draw = self._draws.get(i, 0)
        self._draws[i] = draw + 1
        rng = np.random.default_rng([self.seed, self.epoch, i, draw])
        return tsn_indices(n, self.frames, train=True, rng=rng)

    def _load(self, i: int, entry: Entry) -> Sample:
        idx = self.indices(i)
        if self.train and self.frame_memo is not None:
            t0 = time.perf_counter()
            full = self.frame_memo.get(i)
            if full is None:
                raw = decode_frames(entry.path, list(range(self.num_frames(i))))
                full = resize_crop(raw, self.size, scale_size=self.scale_size, crop_size=self.crop_size)
                self.frame_memo[i] = full
            x = normalize(full[idx])
            ms = (time.perf_counter() - t0) * 1e3
            return Sample(entry.id, entry.label, x, entry.path, idx, 0.0, ms, True)
        use_cache = self.cache is not None and (not self.train or self.cache_train)
        key = None
        if use_cache:
            try:
                key = self.cache.key(
                    entry.path, idx, self.size, scale_size=self.scale_size, crop_size=self.crop_size
                )
            except OSError as e:
                raise DataError(entry.path, f"cannot read: {e.strerror or e}") from e
            t0 = time.perf_counter()
            small = self.cache.get(key)
            if small is not None:
                x = normalize(small)
                ms = (time.perf_counter() - t0) * 1e3
                return Sample(entry.id, entry.label, x, entry.path, idx, 0.0, ms, True)
        t0 = time.perf_counter()
        raw = decode_frames(entry.path, idx)
        t1 = time.perf_counter()
        small = resize_crop(raw, self.size, scale_size=self.scale_size, crop_size=self.crop_size)
        x = normalize(small)
        t2 = time.perf_counter()
        if key is not None:
            self.cache.put(key, small)
        return Sample(
            entry.id, entry.label, x, entry.path, idx, (t1 - t0) * 1e3, (t2 - t1) * 1e3, False
        )


def collate_samples(samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack samples into a batch (``DataLoader(collate_fn=collate_samples)``).

    Args:
        samples: Samples of equal ``x`` shape.

    Returns:
        ``(x, y)``: ``x`` of shape ``(B, T, 3, S, S)`` or ``(B, T, D)`` float32,
        ``y`` of shape ``(B,)`` int64.

    Raises:
        ValueError: Empty list or samples of different shapes.
    """
    if not samples:
        raise ValueError("no samples to collate")
    shapes = {tuple(s.x.shape) for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"samples of different shapes: {sorted(shapes)}")
    x = torch.stack([s.x for s in samples])
    y = torch.tensor([s.label for s in samples], dtype=torch.int64)
    return x, y
