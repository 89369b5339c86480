"""Per-frame feature files (``.npz``) as a dataset.

File format (keys of the ``.npz``):

=================== ========================= ======================================
key                 shape / dtype             meaning
=================== ========================= ======================================
``features``        ``(N, T, D)`` any numeric per-frame features
``labels``          ``(N,)`` int              class index ``0..C-1``
``class_names``     ``(C,)`` str              optional; else ``class_<k>``
``video_ids``       ``(N,)`` str              optional; else ``"<file stem>#<i>"``
``scale``           ``()`` float              optional; real value = features * scale
``gmacs_per_frame`` ``()`` float              optional; cost of one frame's feature
=================== ========================= ======================================

Arrays are read with ``allow_pickle=False`` (object arrays are refused).  Only
``labels`` and the small arrays are read when the dataset is opened; the
``features`` array is read on the first ``__getitem__`` and shared, per
process, by every dataset opened on the same file (train and validation views
of one file hold one copy).  ``np.load`` memory-maps nothing inside a
(possibly compressed) ``.npz``, so the array is held in memory: 148 MB for the
shared UCF101 VGG16 file.
"""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from .datasets import ClipDataset
from .errors import DataError
from .records import Entry, Sample
from .sampling import blocked_stratified_split, stratified_split

__all__ = ["FeatureDataset"]

_memo: dict[tuple[str, int, int], np.ndarray] = {}
_memo_lock = threading.Lock()
_MEMO_MAX = 2


def _file_key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def _member_shape(path: str, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an ``.npz`` member from its header, without reading the data."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{member}.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(shape), np.dtype(dtype)


def _load_features(path: str) -> tuple[np.ndarray, bool]:
    """The file's ``features`` array and whether this call read it from disk."""
    key = _file_key(path)
    with _memo_lock:
        arr = _memo.get(key)
        if arr is not None:
            return arr, False
        try:
            with np.load(path, allow_pickle=False) as z:
                arr = z["features"]
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
            raise DataError(path, f"cannot read 'features': {e}") from e
        while len(_memo) >= _MEMO_MAX:
            _memo.pop(next(iter(_memo)))
        _memo[key] = arr
        return arr, True


def _feature_name(path: Path) -> str:
    return path.parent.name if path.stem in ("train", "test", "val", "features") else path.stem


class FeatureDataset(ClipDataset):
    """Clips as per-frame feature sequences from an ``.npz`` file.

    ``Sample.x`` is ``(T, D)`` float32 with **all** ``T`` frames of the clip
    (methods choose frames themselves); ``frame_indices`` is ``range(T)``.
    ``decode_ms`` is the time spent reading the feature array from the file
    (non-zero only on the access that loads it); ``preprocess_ms`` the
    dequantisation (``features * scale``) time.

    Splits: ``"all"`` is every clip (the file used only as a test file).
    ``"train"`` and ``"test"`` (alias ``"val"``) carve a stratified validation
    split out of the file with :func:`blocked_stratified_split` when it has ``video_ids``
    (else :func:`stratified_split`; ``val_fraction``,
    ``seed``): ``"train"`` is the rest, ``"test"`` the carve-out, and the note
    says so.

    Args:
        path: The ``.npz`` file.
        split: ``"train"``, ``"test"``, ``"val"`` or ``"all"``.
        val_fraction: Fraction carved out for validation, in ``(0, 1)``.
        seed: Seed of the carve-out.
        gmacs_per_frame: Declared GMACs of one frame's feature, used when the
            file has no ``gmacs_per_frame`` key.

    Raises:
        DataError: The file is unreadable, misses ``features``/``labels``,
            holds object arrays, has inconsistent shapes / labels, or a
            ``gmacs_per_frame`` (or the declared one) that is NaN, inf or
            negative.  Reading a clip whose features hold NaN or inf raises
            it for that clip only (``path`` names the file and the clip id).
        ValueError: Unknown ``split`` or bad ``val_fraction``.
    """

    input_kind = "features"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        split: str = "test",
        val_fraction: float = 0.2,
        seed: int = 0,
        gmacs_per_frame: float | None = None,
    ) -> None:
        path = str(path)
        if split not in ("train", "test", "val", "all"):
            raise ValueError(f"split must be 'train', 'test', 'val' or 'all', got {split!r}")
        try:
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                missing = {"features", "labels"} - keys
                if missing:
                    raise DataError(
                        path, f"feature file lacks {sorted(missing)} (has {sorted(keys)})"
                    )
                labels = np.asarray(z["labels"])
                class_names = [str(c) for c in z["class_names"]] if "class_names" in keys else None
                ids = [str(v) for v in z["video_ids"]] if "video_ids" in keys else None
                scale = float(z["scale"]) if "scale" in keys else None
                gm = float(z["gmacs_per_frame"]) if "gmacs_per_frame" in keys else gmacs_per_frame
            shape, dtype = _member_shape(path, "features")
        except DataError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, KeyError, TypeError) as e:
            raise DataError(path, f"unreadable feature file: {e}") from e
        if len(shape) != 3:
            raise DataError(path, f"'features' must be (N, T, D), got shape {shape}")
        if labels.ndim != 1 or len(labels) != shape[0]:
            raise DataError(path, f"'labels' shape {labels.shape} does not match {shape[0]} clips")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(path, f"'labels' must be integers, got {labels.dtype}")
        if ids is not None and len(ids) != shape[0]:
            raise DataError(path, f"'video_ids' has {len(ids)} entries for {shape[0]} clips")
        n_cls = len(class_names) if class_names is not None else int(labels.max()) + 1
        if len(labels) and (labels.min() < 0 or labels.max() >= n_cls):
            raise DataError(path, f"labels outside 0..{n_cls - 1}")
        if class_names is None:
            class_names = [f"class_{k}" for k in range(n_cls)]
        if gm is not None and not (np.isfinite(gm) and gm >= 0):  # never a negative or NaN GMACs row
            where = "'gmacs_per_frame'" if "gmacs_per_frame" in keys else "the declared gmacs_per_frame (--gmacs-per-frame)"
            raise DataError(path, f"{where} is {gm:g} GMACs: must be a finite number >= 0")
        p = Path(path)
        has_ids = ids is not None
        if ids is None:
            ids = [f"{p.stem}#{i}" for i in range(shape[0])]
        if split == "all":
            sel = np.arange(shape[0])
            note = f"all {shape[0]} clips of {p.name} (file used as a test file only)"
        else:
            part = "the remaining clips" if split == "train" else "the carved-out clips"
            if has_ids:
                train_idx, val_idx = blocked_stratified_split(labels, np.asarray(ids), val_fraction)
                how = (f"stratified {val_fraction * 100:g} %: the last clips of each class in video-id order, "
                       "so clips of one UCF101 group (same actor and scene) stay on one side")
            else:
                train_idx, val_idx = stratified_split(labels, val_fraction, seed)
                how = f"stratified {val_fraction * 100:g} %, random with seed {seed} (no video ids in the file)"
            sel = train_idx if split == "train" else val_idx
            note = f"validation split carved from {p.name} ({how}); this is {part}"
        entries = [
            Entry(id=ids[i], path=path, label=int(labels[i]), num_frames=int(shape[1])) for i in sel
        ]
        super().__init__(
            name=_feature_name(p),
            class_names=class_names,
            entries=entries,
            synthetic=False,
            note=note,
            gmacs_per_frame=gm,
        )
        self.path = path
        self.split = split
        self.rows = sel.astype(np.int64)
        self.scale = scale
        self.feature_shape = shape[1:]
        self.feature_dtype = dtype
        #: Seed of the random carve-out, or None (whole file, or carved by video-id order).
        self.split_seed = seed if split != "all" and not has_ids else None

    def _load(self, i: int, entry: Entry) -> Sample:
        t0 = time.perf_counter()
        feats, loaded = _load_features(self.path)
        t1 = time.perf_counter()
        row = feats[self.rows[i]]
        x = torch.from_numpy(np.asarray(row, dtype=np.float32))
        if self.scale is not None:
            x = x * np.float32(self.scale)
        finite = torch.isfinite(x)
        if not bool(finite.all()):  # this clip is skipped and named; the other clips still count
            nan, frames = int(torch.isnan(x).sum()), sorted({int(t) for t in (~finite).nonzero()[:, 0]})
            raise DataError(f"{self.path} clip {entry.id}",
                            f"non-finite features: {nan} NaN and {int((~finite).sum()) - nan} inf values "
                            f"in frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames[:8]))}"
                            + (" ..." if len(frames) > 8 else ""))
        t2 = time.perf_counter()
        load_ms = (t1 - t0) * 1e3 if loaded else 0.0
        frame_idx = list(range(x.shape[0]))
        return Sample(
            entry.id, entry.label, x, entry.path, frame_idx, load_ms, (t2 - t1) * 1e3, False
        )
