"""``open_dataset``: one entry point from a source string to a dataset."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .cache import FrameCache, default_cache_root
from .datasets import ClipDataset, VideoDataset
from .errors import DataError
from .features import FeatureDataset
from .generate import DEFAULT_DATASET, generate_dataset, generated_root, read_manifest
from .layouts import (
    detect_layout,
    list_class_folders,
    list_hmdb51,
    list_tsn_file,
    list_ucf101,
)

__all__ = ["open_dataset"]


def _synthetic_note(manifest: dict, split_note: str) -> str:
    p = manifest.get("params", {})
    fine = [c["name"] for c in manifest.get("classes", []) if c.get("needs_high_res")]
    n = p.get("num_frames")
    return (
        f"SYNTHETIC generated dataset (evbench generator v{manifest.get('version')}, "
        f"seed {p.get('seed')}, {manifest.get('codec')} {p.get('size')}x{p.get('size')} px, "
        f"{n} frames): class evidence in only {round((n or 48) * 6 / 48)}-"
        f"{round((n or 48) * 10 / 48)} frames per video; "
        f"classes needing high resolution: {', '.join(fine) or 'none'}; {split_note}"
    )


def _open_generated(
    source: str, split, frames, size, train, seed, cache, cache_root, split_id, sc, cc
):
    root_arg = source.split(":", 1)[1] if ":" in source else ""
    root = Path(root_arg).expanduser() if root_arg else generated_root(cache_root, 0)
    try:
        if read_manifest(root) is None:  # absent: generate with the defaults
            generate_dataset(root, seed=0, **DEFAULT_DATASET)
    except (FileExistsError, ValueError) as e:
        raise DataError(str(root), f"cannot use as the generated dataset: {e}") from e
    return _open_pixels(root, "ucf101", split, frames, size, train, seed, cache, split_id, sc, cc)


def _open_pixels(
    root, layout, split, frames, size, train, seed, cache, split_id, sc, cc
) -> VideoDataset:
    root = Path(root)
    if layout == "ucf101":
        listing = list_ucf101(root, split, split_id)
    elif layout == "hmdb51":
        listing = list_hmdb51(root, split, split_id)
    elif layout == "tsn_list":
        listing = list_tsn_file(root)
    else:
        listing = list_class_folders(root, split)
    manifest = read_manifest(root) if root.is_dir() else None
    entries = listing.entries
    name = root.stem if layout == "tsn_list" else root.name
    note = listing.note
    if manifest is not None:
        per_video = {v["id"]: v for v in manifest.get("videos", [])}
        entries = [
            dataclasses.replace(e, num_frames=per_video[e.id]["num_frames"])
            if e.id in per_video
            else e
            for e in entries
        ]
        name = "generated"
        note = _synthetic_note(manifest, listing.note)
    ds = VideoDataset(
        name=name,
        class_names=listing.class_names,
        entries=entries,
        synthetic=manifest is not None,
        note=note,
        frames=frames,
        size=size,
        train=train,
        seed=seed,
        cache=cache,
        scale_size=sc,
        crop_size=cc,
    )
    ds.manifest = manifest
    ds.layout = listing.layout
    return ds


def open_dataset(
    source: str,
    *,
    split: str = "test",
    frames: int = 8,
    size: int = 224,
    train: bool = False,
    seed: int = 0,
    cache_dir: str | None = None,
    split_id: int = 1,
    val_fraction: float = 0.2,
    gmacs_per_frame: float | None = None,
    scale_size: int = 256,
    crop_size: int = 224,
) -> ClipDataset:
    """Open a dataset from a source string, detecting its layout.

    Sources:

    * ``"generated"`` — the embedded generated dataset (see
      :mod:`evbench.harness.data.generate`), created on first use in
      ``<cache root>/generated-v<GENERATOR_VERSION>-seed0`` (generation seed is always 0;
      ``seed`` here only drives sampling).  ``"generated:<root>"`` opens the generated
      dataset in ``<root>`` whatever its parameters, generating the default
      one there if absent.  Opened as UCF101 split 1, with
      ``synthetic = True`` and a note starting ``"SYNTHETIC"``.
    * a ``.npz`` file — :class:`~evbench.harness.data.features.FeatureDataset`
      (``split`` ``"train"`` / ``"test"`` carve a stratified validation split
      with ``val_fraction`` and ``seed``; ``"all"`` is the whole file).
    * a folder with ``ucfTrainTestlist/`` — UCF101 official split
      ``split_id``; a folder with ``testTrainMulti_7030_splits/`` — HMDB51.
    * a ``.txt`` file — TSN list of frame folders (``split`` is ignored: the
      list is the split).
    * any other folder — folder per class (videos or frame folders); every
      item is a test item and ``"train"`` returns the same items.

    Any folder holding a generator ``manifest.json`` is marked synthetic.

    Args:
        source: See above.
        split: ``"train"``, ``"test"`` or ``"all"``.
        frames: Frames per clip ``T`` (pixel datasets).
        size: Output side ``S`` in pixels (pixel datasets).
        train: Training sampling (random TSN offsets) instead of centres.
        seed: Seed of training offsets and of feature-file carve-outs.
        cache_dir: Cache root; frames are cached in ``<cache_dir>/frames``
            and the generated dataset lives in
            ``<cache_dir>/generated-v<GENERATOR_VERSION>-seed0``.  ``None``: ``$EVBENCH_CACHE``
            or ``~/.cache/evbench``.
        split_id: Official split number (UCF101 / HMDB51).
        val_fraction: Feature files: fraction carved out for validation.
        gmacs_per_frame: Feature files: declared GMACs per frame, used when
            the file does not declare it.
        scale_size: Shorter side before the crop, pixels.
        crop_size: Centre crop side, pixels.

    Returns:
        A :class:`~evbench.harness.data.datasets.VideoDataset` (``input_kind
        "pixels"``) or :class:`~evbench.harness.data.features.FeatureDataset`
        (``"features"``).

    Raises:
        DataError: Missing source, malformed split/list/feature file (naming
            file and line), unknown class.
        ValueError: Unknown ``split`` or bad numeric arguments.
    """
    if split not in ("train", "test", "all") and not (
        split == "val" and str(source).endswith(".npz")
    ):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if size < 1 or frames < 1:
        raise ValueError(f"size and frames must be positive, got size={size}, frames={frames}")
    cache_root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    cache = FrameCache(cache_root / "frames")
    source = str(source)
    if source == "generated" or source.startswith("generated:"):
        return _open_generated(
            source,
            split,
            frames,
            size,
            train,
            seed,
            cache,
            cache_root,
            split_id,
            scale_size,
            crop_size,
        )
    path = Path(os.path.expanduser(source))
    layout = detect_layout(path)
    if layout == "features":
        return FeatureDataset(
            path, split=split, val_fraction=val_fraction, seed=seed, gmacs_per_frame=gmacs_per_frame
        )
    return _open_pixels(
        path, layout, split, frames, size, train, seed, cache, split_id, scale_size, crop_size
    )
