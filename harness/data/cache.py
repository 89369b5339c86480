"""On-disk cache of decoded, sampled, resized and cropped frames.

Layout: ``<cache_dir>/<key[:2]>/<key>.npy``, each file one clip's
``(T, S, S, 3)`` uint8 frames (the output of
:func:`~evbench.harness.data.transforms.resize_crop`).  The key is the SHA-1 of the
file's *content fingerprint* together with the frame indices, ``size``,
``scale_size``, ``crop_size`` and the cache format version, so renaming or
moving a video keeps its entries valid, and editing it invalidates them.

Content fingerprint (:func:`file_fingerprint`): SHA-1 over the file size, the
first 1 MiB and the last 1 MiB of the file — cheap on large videos and,
for practical purposes, unique.  For a frame folder it is the SHA-1 over the
sorted frame names and, per frame, its size and the SHA-1 of its first 64 KiB.

Writes are atomic (a temporary file in the same folder, then
``os.replace``), so concurrent workers and interrupted runs never leave a
half-written entry; a corrupt entry reads as a miss.  A cache that cannot be
written (read-only disk, disk full) only warns once: the sample is still
served.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["FrameCache", "default_cache_root", "file_fingerprint"]

CACHE_FORMAT = 1
_CHUNK = 1 << 20
_fp_memo: dict[tuple[str, int, int], str] = {}


def default_cache_root() -> Path:
    """Root of evbench's caches: ``$EVBENCH_CACHE`` if set, else ``~/.cache/evbench``.

    The frame cache lives in ``<root>/frames``, generated datasets in
    ``<root>/generated-v<GENERATOR_VERSION>-seed<N>``.
    """
    env = os.environ.get("EVBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evbench"


def _file_digest(path: str, size: int) -> str:
    h = hashlib.sha1()
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_CHUNK))
        if size > 2 * _CHUNK:
            f.seek(size - _CHUNK)
            h.update(f.read(_CHUNK))
        elif size > _CHUNK:
            h.update(f.read())
    return h.hexdigest()


def _folder_digest(path: str) -> str:
    h = hashlib.sha1(b"folder")
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        if not os.path.isfile(p):
            continue
        size = os.path.getsize(p)
        h.update(f"{name}\0{size}\0".encode())
        with open(p, "rb") as f:
            h.update(hashlib.sha1(f.read(1 << 16)).digest())
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike) -> str:
    """Content fingerprint of a video file or frame folder (hex SHA-1).

    Memoised per process on ``(path, size, mtime)``.

    Args:
        path: Video file or frame folder.

    Returns:
        40-character hex digest (see the module docstring for what it covers).

    Raises:
        OSError: The path cannot be read.
    """
    path = str(path)
    st = os.stat(path)
    memo_key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    fp = _fp_memo.get(memo_key)
    if fp is None:
        fp = _folder_digest(path) if os.path.isdir(path) else _file_digest(path, st.st_size)
        _fp_memo[memo_key] = fp
    return fp


class FrameCache:
    """Content-addressed on-disk cache of pre-processed uint8 clips.

    Args:
        cache_dir: Folder of the cache; ``None`` means
            ``default_cache_root() / "frames"`` (``$EVBENCH_CACHE/frames`` or
            ``~/.cache/evbench/frames``).  Created on first write.

    Attributes:
        cache_dir: The resolved folder.
        hits: Number of successful :meth:`get` calls in this process.
        misses: Number of :meth:`get` calls that found nothing usable.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else default_cache_root() / "frames"
        )
        self.hits = 0
        self.misses = 0
        self._warned = False

    def key(
        self,
        path: str,
        indices: list[int],
        size: int,
        *,
        scale_size: int = 256,
        crop_size: int = 224,
    ) -> str:
        """Cache key of one clip sampling.

        Args:
            path: Video file or frame folder (fingerprinted by content).
            indices: 0-based frame indices, in order.
            size: Output side, pixels.
            scale_size: Shorter side before the crop, pixels.
            crop_size: Crop side, pixels.

        Returns:
            40-character hex SHA-1.

        Raises:
            OSError: ``path`` cannot be read.
        """
        spec = {
            "v": CACHE_FORMAT,
            "file": file_fingerprint(path),
            "indices": [int(i) for i in indices],
            "size": int(size),
            "scale": int(scale_size),
            "crop": int(crop_size),
        }
        return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached clip for ``key``.

        Args:
            key: From :meth:`key`.

        Returns:
            ``(T, S, S, 3)`` uint8 array, or ``None`` on a miss (a missing,
            unreadable or corrupt entry counts as a miss).
        """
        p = self._path(key)
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def put(self, key: str, frames: np.ndarray) -> None:
        """Store a clip atomically (temporary file + ``os.replace``).

        Args:
            key: From :meth:`key`.
            frames: ``(T, S, S, 3)`` uint8 array.

        Write failures are reported once with :func:`warnings.warn` and
        otherwise ignored (the cache is an optimisation, never a failure).
        """
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, np.ascontiguousarray(frames), allow_pickle=False)
                os.replace(tmp, p)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as e:
            if not self._warned:
                warnings.warn(f"frame cache {self.cache_dir} not writable: {e}", stacklevel=2)
                self._warned = True

    def __repr__(self) -> str:
        return f"FrameCache({str(self.cache_dir)!r})"
