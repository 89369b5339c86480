"""Datasets for evbench: layouts, decoding, sampling, pre-processing, caching,
feature files and the embedded generated dataset.

Modules (one job each):

* :mod:`~evbench.harness.data.errors` — :class:`DataError`.
* :mod:`~evbench.harness.data.records` — :class:`Sample`, :class:`Entry`.
* :mod:`~evbench.harness.data.sampling` — TSN / uniform frame indices, stratified splits.
* :mod:`~evbench.harness.data.decode` — PyAV / JPEG-folder decoding and frame counting.
* :mod:`~evbench.harness.data.transforms` — resize, centre crop, ImageNet normalisation.
* :mod:`~evbench.harness.data.cache` — the on-disk frame cache.
* :mod:`~evbench.harness.data.layouts` — UCF101, HMDB51, TSN lists, folder-per-class.
* :mod:`~evbench.harness.data.datasets` — :class:`ClipDataset`, :class:`VideoDataset`.
* :mod:`~evbench.harness.data.features` — :class:`FeatureDataset` (``.npz``).
* :mod:`~evbench.harness.data.generate` — the generated, synthetic default dataset.
* :mod:`~evbench.harness.data.source` — :func:`open_dataset` (source string → dataset).
* :mod:`~evbench.harness.data.random_clips` — :class:`RandomClips` (in-memory random inputs).
* :mod:`~evbench.harness.data.fingerprint` — :func:`data_fingerprint` (content identity of a source).
"""

from .cache import FrameCache, default_cache_root, file_fingerprint
from .datasets import ClipDataset, VideoDataset, collate_samples
from .decode import decode_frames, probe_num_frames, probe_video
from .errors import DataError
from .features import FeatureDataset
from .fingerprint import data_fingerprint
from .generate import CLASS_SPECS, generate_dataset, read_manifest
from .random_clips import RandomClips
from .records import Entry, Sample
from .sampling import blocked_stratified_split, stratified_split, tsn_indices, uniform_indices
from .source import open_dataset
from .transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, preprocess, resize_crop

__all__ = [
    "blocked_stratified_split",
    "CLASS_SPECS",
    "ClipDataset",
    "DataError",
    "Entry",
    "FeatureDataset",
    "FrameCache",
    "RandomClips",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Sample",
    "VideoDataset",
    "collate_samples",
    "data_fingerprint",
    "decode_frames",
    "default_cache_root",
    "file_fingerprint",
    "generate_dataset",
    "normalize",
    "open_dataset",
    "preprocess",
    "probe_num_frames",
    "probe_video",
    "read_manifest",
    "resize_crop",
    "stratified_split",
    "tsn_indices",
    "uniform_indices",
]
