"""Decoding video files (PyAV) and JPEG frame folders into uint8 RGB arrays.

Videos are decoded sequentially from the start up to the largest requested
index (frame-exact; no keyframe seeking, whose frame positions are unreliable
across containers).  Frame folders (TSN / AR-Net layout: ``img_00001.jpg``,
``i_0001.jpg``, ...) are read with Pillow, frames ordered by the number in the
file name.  Every failure is a :class:`~evbench.harness.data.errors.DataError` naming
the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .errors import DataError

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "is_video_file",
    "list_frame_files",
    "decode_frames",
    "probe_num_frames",
    "probe_video",
]

VIDEO_EXTENSIONS = frozenset(
    {
        ".avi",
        ".mp4",
        ".mkv",
        ".webm",
        ".mov",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".flv",
        ".wmv",
        ".ogv",
        ".3gp",
    }
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_FLOW_PREFIXES = ("flow", "x_", "y_")
_NUM = re.compile(r"(\d+)(?!.*\d)")


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video file extension (case-insensitive).

    Args:
        path: File name or path.

    Returns:
        ``True`` for the extensions in :data:`VIDEO_EXTENSIONS`.
    """
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _frame_key(name: str) -> tuple[str, int, str]:
    m = _NUM.search(name)
    if m is None:
        return (name, -1, name)
    return (name[: m.start()], int(m.group(1)), name)


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The RGB frame images of a frame folder, in frame order.

    Image files (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``) are ordered by their
    prefix and the last number in the name (``i_2.jpg`` before ``i_10.jpg``).
    Optical-flow images (names starting with ``flow``, ``x_``, ``y_``) are
    ignored.

    Args:
        folder: Directory of frame images.

    Returns:
        Paths of the frames, frame 0 first.

    Raises:
        DataError: The folder cannot be listed or holds no frame images.
    """
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise DataError(str(folder), f"cannot list frame folder: {e.strerror or e}") from e
    frames = [
        n
        for n in names
        if Path(n).suffix.lower() in IMAGE_EXTENSIONS and not n.lower().startswith(_FLOW_PREFIXES)
    ]
    if not frames:
        raise DataError(str(folder), "frame folder holds no frame images (.jpg/.png)")
    frames.sort(key=_frame_key)
    return [Path(folder) / n for n in frames]


def _check_indices(path: str, indices: list[int]) -> None:
    if len(indices) == 0:
        raise ValueError(f"{path}: no frame indices requested")
    if min(indices) < 0:
        raise ValueError(f"{path}: negative frame index {min(indices)}")


def _decode_folder(path: str, indices: list[int]) -> np.ndarray:
    files = list_frame_files(path)
    if max(indices) >= len(files):
        raise DataError(
            path, f"truncated: frame folder has {len(files)} frames, index {max(indices)} requested"
        )
    cache: dict[int, np.ndarray] = {}
    for i in sorted(set(indices)):
        try:
            with Image.open(files[i]) as im:
                cache[i] = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # PIL raises many types for bad images
            raise DataError(str(files[i]), f"unreadable frame image: {e}") from e
    shapes = {a.shape for a in cache.values()}
    if len(shapes) > 1:
        raise DataError(path, f"frames of different sizes in one folder: {sorted(shapes)}")
    return np.stack([cache[i] for i in indices])


def _open(path: str):
    if not os.path.exists(path):
        raise DataError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(path, f"cannot open video (corrupt or unsupported): {e}") from e
    if not container.streams.video:
        container.close()
        raise DataError(path, "no video stream (not a video file, or corrupt)")
    return container


def _decode_video(path: str, indices: list[int]) -> np.ndarray:
    wanted = set(indices)
    last = max(indices)
    got: dict[int, np.ndarray] = {}
    n = 0
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if n in wanted:
                    got[n] = frame.to_ndarray(format="rgb24")
                n += 1
                if n > last:
                    break
        except (av.FFmpegError, OSError, ValueError) as e:
            raise DataError(path, f"corrupt video: decoding failed after {n} frames: {e}") from e
    finally:
        container.close()
    if n == 0:
        raise DataError(path, "no decodable frames (empty or corrupt video)")
    if last >= n:
        raise DataError(path, f"truncated: only {n} decodable frames, frame index {last} requested")
    return np.stack([got[i] for i in indices])


def decode_frames(path: str, indices: list[int]) -> np.ndarray:
    """Decode the given frames of a video file or frame folder.

    Args:
        path: A video file (any container/codec FFmpeg reads) or a folder of
            frame images (see :func:`list_frame_files`).
        indices: 0-based frame indices, any order, repeats allowed.

    Returns:
        ``(len(indices), H, W, 3)`` uint8 RGB array, rows in the order of
        ``indices``.

    Raises:
        DataError: File missing, empty (0 bytes), not a video, corrupt,
            without a video stream, with no decodable frame, or truncated
            (an index at or beyond the number of decodable frames); a frame
            image unreadable; frame images of different sizes.
        ValueError: ``indices`` empty or negative (a programming error).
    """
    path = str(path)
    _check_indices(path, indices)
    if os.path.isdir(path):
        return _decode_folder(path, list(indices))
    return _decode_video(path, list(indices))


def probe_num_frames(path: str) -> int:
    """Number of frames of a video file or frame folder.

    Uses the container's frame count (``stream.frames``) when it is known and
    positive; otherwise (e.g. Matroska/WebM, some AVIs) decodes the whole
    stream and counts frames.  For a frame folder, counts the frame images.

    Args:
        path: Video file or frame folder.

    Returns:
        Frame count, ``>= 1``.

    Raises:
        DataError: Unreadable or corrupt file, or zero frames.
    """
    path = str(path)
    if os.path.isdir(path):
        return len(list_frame_files(path))
    container = _open(path)
    try:
        stream = container.streams.video[0]
        n = int(stream.frames or 0)
        if n <= 0:
            stream.thread_type = "AUTO"
            try:
                for _ in container.decode(stream):
                    n += 1
            except (av.FFmpegError, OSError, ValueError) as e:
                raise DataError(
                    path, f"corrupt video: decoding failed after {n} frames: {e}"
                ) from e
    finally:
        container.close()
    if n <= 0:
        raise DataError(path, "video has 0 frames")
    return n


def probe_video(path: str) -> dict:
    """Container facts of a video file, for reports and tests.

    Args:
        path: Video file.

    Returns:
        ``{"codec": str, "width": int, "height": int, "fps": float,
        "frames": int, "pix_fmt": str | None}``; ``frames`` is the container's
        count (0 when unknown).

    Raises:
        DataError: Unreadable file or no video stream.
    """
    path = str(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or 0
        return {
            "codec": s.codec_context.name,
            "width": int(s.codec_context.width),
            "height": int(s.codec_context.height),
            "fps": float(rate),
            "frames": int(s.frames or 0),
            "pix_fmt": s.codec_context.pix_fmt,
        }
    finally:
        container.close()
