"""The embedded, generated dataset: real H.264 videos whose class evidence is
sparse in time and, for some classes, visible only at high resolution.

Nothing is downloaded; the same ``seed`` gives the same pixels.  The videos are
written in the UCF101 layout (``<root>/<Class>/v_<Class>_gXX_cYY.mp4`` plus
``ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt``), so they go
through exactly the loader, decoder and pre-processing that real UCF101 does.

What a video contains (``size`` × ``size`` px, ``num_frames`` frames):

* **Shared distractor content, every frame** — a smooth, desaturated,
  panning background texture and two soft grey blobs drifting around, plus
  per-pixel sensor noise (σ = 4 levels).  Background and blobs depend only on
  the video's group/clip number, never on its class, so they carry no label
  information.
* **Class evidence, a short window only** — ``L`` consecutive frames, ``L``
  drawn in ``[round(6/48·N), round(10/48·N)]`` (6–10 of 48 frames; 2–3 of the
  default 16), at a random start.  With TSN test sampling of ``T >= N / L_min``
  frames (``T = 8`` for the defaults) at least one sampled frame lies in the window.
* **Coarse classes** (e.g. ``RedDisc``, ``BlueSquare``): a large saturated
  coloured shape (radius 14–20 % of the frame) moving across the window —
  recognisable at 56 px.
* **Fine classes** come in pairs (``GreyStripesH`` / ``GreyStripesV``, …): a
  flat patch (30–40 % of the frame) of the same colour and mean brightness for
  both members, differing only in a 1-pixel texture (horizontal vs vertical
  stripes, checkerboard) of ±110 levels, drawn on the pixel grid of the stored
  video.  Through the standard pipeline (shorter side → 256, centre crop 224,
  anti-aliased resize to side ``r``) the texture's period scales with
  ``r / r_min``, ``r_min = 224·size/256`` (:func:`fine_texture_min_resolution`,
  the stored video's own sampling of the crop): for 128 px videos it keeps
  ≈ 71 % of its contrast (RMS) at 224 px, 48 % at 168, 35 % at 112 (= r_min),
  12 % (aliased) at 84 and none at 56 px — there the pair is two identical flat
  squares; a 3-layer CNN on 8 frames learns the pair at 224 px but not at 112
  (measured at ±48 levels, generator version 2).
  The default 64 px videos halve every side (r_min = 56): 112 / 84 / 56 px, the
  lite configurations' resolutions, play the part of 224 / 168 / 112.  At ±48
  levels a resnet10 TSN trained 10 cosine epochs on the default 156 clips did
  not learn the pair at 112 px (seeds 0, 1: 83.3 % top-1, the coarse classes
  only); at ±80 it learned it at seeds 0, 2 (100 %, 2026-12-02) but not once the
  backbones' convolutions ran channels-last (other float summation order, seed 0,
  two threads: 83.3 %, the pair again not learned); at ±110 it learned all six
  classes in every setting tried (channels-last seeds 0 and 1, contiguous seed 0,
  one thread; channels-last seed 0 in the default run, two threads) — measured
  2026-12-03.
* **Decoys** — in half of all videos (any class), a plain patch of the grey
  pair's colour without texture appears for a few frames outside the evidence
  window, so a low-resolution glimpse of a grey square is not evidence.

``manifest.json`` records the generator version, parameters, codec and, per
video, the evidence window, its bounding box, whether the class needs high
resolution, and the decoy window: an oracle policy (which frames, which
resolution) is known exactly.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

__all__ = [
    "GENERATOR_VERSION",
    "CLASS_SPECS",
    "DEFAULT_DATASET",
    "ClassSpec",
    "generate_dataset",
    "generated_root",
    "fine_texture_min_resolution",
    "read_manifest",
    "write_video",
]

GENERATOR_VERSION = 4  # 3: texture 48 -> 80 levels (the fine pair learnable in the default budget); 4: 80 -> 110 (robustly)
GENERATOR_ID = "evbench.harness.data.generate"
_QP = 16
_PRESET = "veryfast"
_NOISE_SIGMA = 4.0
_TEXTURE_AMP = 110.0  # grey 128 ± 22 ± 110 stays within 0..255 but for a few clipped pixels
_GREY = (128, 128, 128)
_TAN = (176, 146, 110)


@dataclass(frozen=True)
class ClassSpec:
    """One generated class.

    Attributes:
        name: Class name (UCF101-style CamelCase, used in file names).
        kind: ``"coarse"`` (visible at low resolution) or ``"fine"`` (needs
            high resolution).
        shape: ``disc``, ``square``, ``triangle``, ``ring``, ``cross``,
            ``diamond``, ``bar`` or ``patch`` (fine classes).
        color: Base RGB colour.
        texture: Fine classes: ``"hstripes"``, ``"vstripes"`` or ``"checker"``.
        pair: Fine classes: name of the pair whose members look identical at
            low resolution.
    """

    name: str
    kind: str
    shape: str
    color: tuple[int, int, int]
    texture: str | None = None
    pair: str | None = None

    @property
    def needs_high_res(self) -> bool:
        """Whether the class is only separable from its pair at high resolution."""
        return self.kind == "fine"


CLASS_SPECS: tuple[ClassSpec, ...] = (
    ClassSpec("RedDisc", "coarse", "disc", (220, 40, 40)),
    ClassSpec("BlueSquare", "coarse", "square", (40, 70, 225)),
    ClassSpec("GreyStripesH", "fine", "patch", _GREY, "hstripes", "grey"),
    ClassSpec("GreyStripesV", "fine", "patch", _GREY, "vstripes", "grey"),
    ClassSpec("GreenTriangle", "coarse", "triangle", (40, 190, 60)),
    ClassSpec("YellowRing", "coarse", "ring", (235, 215, 40)),
    ClassSpec("MagentaCross", "coarse", "cross", (215, 50, 205)),
    ClassSpec("CyanDiamond", "coarse", "diamond", (40, 205, 215)),
    ClassSpec("TanChecker", "fine", "patch", _TAN, "checker", "tan"),
    ClassSpec("TanStripesV", "fine", "patch", _TAN, "vstripes", "tan"),
    ClassSpec("OrangeBar", "coarse", "bar", (245, 135, 30)),
    ClassSpec("PurpleTriangle", "coarse", "triangle", (125, 50, 195)),
)
"""Classes in generation order; ``num_classes = k`` uses the first ``k``
(the default 6: four coarse classes and the grey fine pair)."""


#: Parameters of the default generated dataset (source ``"generated"``; :func:`generated_root`): 6 classes ×
#: 52 clips of 16 frames at 64 px, groups 1–2 of 4 as the test split — 156 test and 156 train clips, so
#: accuracy on the test split has a 95 % interval of about ±6 points at 80 % top-1.
DEFAULT_DATASET: dict = {"num_classes": 6, "videos_per_class": 52, "num_frames": 16, "size": 64, "fps": 25,
                         "test_groups": 2}


def fine_texture_min_resolution(size: int, scale_size: int = 256, crop_size: int = 224) -> int:
    """Smallest output side (px) at which the fine classes' 1-pixel texture is resolvable.

    The stored ``size``-px frame is scaled to ``scale_size`` and centre-cropped
    to ``crop_size``; the 2-pixel texture period survives a further resize to
    side ``r`` only while it stays >= 2 output pixels, i.e.
    ``r >= crop_size * size / scale_size`` (56 px for the default 64 px videos, 112 for 128 px).

    Args:
        size: Side of the stored video, px.
        scale_size: Shorter side before the crop, px.
        crop_size: Centre crop side, px.

    Returns:
        The threshold side in pixels (rounded up).
    """
    return math.ceil(crop_size * size / scale_size)


def generated_root(cache_root: str | os.PathLike, seed: int = 0) -> Path:
    """Folder of the generated dataset under a cache root.

    Args:
        cache_root: evbench cache root (see :func:`~evbench.harness.data.cache.default_cache_root`).
        seed: Generation seed.

    Returns:
        ``<cache_root>/generated-v<GENERATOR_VERSION>-seed<seed>``.
    """
    return Path(cache_root) / f"generated-v{GENERATOR_VERSION}-seed{seed}"


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The generator manifest of a folder.

    Args:
        root: Dataset folder.

    Returns:
        The parsed ``manifest.json``, or ``None`` if ``root`` is not a
        generated dataset (missing, unreadable or non-JSON manifest, or one
        written by something else).
    """
    p = Path(root) / "manifest.json"
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("generator") == GENERATOR_ID else None


# ----------------------------------------------------------------------------- rendering


def _smooth_noise(rng: np.random.Generator, grid: int, out: int, channels: int) -> np.ndarray:
    """(out, out, channels) float32 in [0, 1]: bilinear upsampling of a random grid."""
    g = rng.random((grid + 1, grid + 1, channels), dtype=np.float32)
    t = np.linspace(0.0, grid, out, dtype=np.float32)
    i0 = np.minimum(t.astype(np.int64), grid - 1)
    f = (t - i0)[:, None]
    rows = g[i0] * (1 - f)[..., None] + g[i0 + 1] * f[..., None]  # (out, grid+1, C)
    cols = rows[:, i0] * (1 - f.T)[..., None] + rows[:, i0 + 1] * f.T[..., None]
    return cols


def _bounce(p0: float, v: float, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.full_like(t, lo, dtype=np.float64)
    x = (p0 - lo + v * t) % (2 * span)
    return lo + np.where(x > span, 2 * span - x, x)


class _Scene:
    """Class-independent content of one (group, clip): background, blobs."""

    def __init__(self, rng: np.random.Generator, size: int, n: int) -> None:
        s = self.size = size
        big = 2 * s
        lum = 0.65 * _smooth_noise(rng, 5, big, 1) + 0.35 * _smooth_noise(rng, 14, big, 1)
        chroma = _smooth_noise(rng, 4, big, 3) - 0.5
        base = rng.uniform(80, 140)
        self.bg = (base + (lum - 0.5) * 90.0 + chroma * 24.0).astype(np.float32)  # (2s, 2s, 3)
        ang = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.4, 1.2)
        t = np.arange(n, dtype=np.float64)
        self.ox = np.round(_bounce(rng.uniform(0, s), speed * math.cos(ang), t, 0, s)).astype(int)
        self.oy = np.round(_bounce(rng.uniform(0, s), speed * math.sin(ang), t, 0, s)).astype(int)
        self.blobs = []
        for _ in range(2):
            r = rng.uniform(0.06, 0.12) * s
            level = rng.uniform(60, 200)
            tint = rng.uniform(-10, 10, 3)
            a = rng.uniform(0, 2 * math.pi)
            v = rng.uniform(0.5, 2.0)
            cx = _bounce(rng.uniform(r, s - r), v * math.cos(a), t, r, s - r)
            cy = _bounce(rng.uniform(r, s - r), v * math.sin(a), t, r, s - r)
            color = (level + tint).astype(np.float32)
            self.blobs.append((r, rng.uniform(0.6, 1.0), color, cx, cy))

    def frame(self, t: int) -> np.ndarray:
        """(s, s, 3) float32 background + blobs at frame t."""
        s = self.size
        img = self.bg[self.oy[t] : self.oy[t] + s, self.ox[t] : self.ox[t] + s].copy()
        for r, aspect, color, cx, cy in self.blobs:
            x0, y0, x1, y1 = _box(cx[t], cy[t], r + 1, r * aspect + 1, s)
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            d = np.sqrt(((xx - cx[t]) / r) ** 2 + ((yy - cy[t]) / (r * aspect)) ** 2)
            alpha = np.clip((1.0 - d) * r + 0.5, 0.0, 1.0)[..., None]
            img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + color * alpha
        return img


def _box(cx: float, cy: float, rx: float, ry: float, s: int) -> tuple[int, int, int, int]:
    """Integer bounding box [x0, x1) × [y0, y1) of a centred extent, clipped to the frame."""
    x0, x1 = max(0, int(math.floor(cx - rx))), min(s, int(math.ceil(cx + rx)) + 1)
    y0, y1 = max(0, int(math.floor(cy - ry))), min(s, int(math.ceil(cy + ry)) + 1)
    return x0, y0, x1, y1


def _shape_sd(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) of a shape of radius r."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "disc":
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "ring":
        return np.abs(np.sqrt(dx * dx + dy * dy) - 0.7 * r) - 0.3 * r
    if shape == "square":
        return np.maximum(ax, ay) - 0.85 * r
    if shape == "diamond":
        return (ax + ay) / math.sqrt(2) - 0.8 * r
    if shape == "cross":
        arm = np.minimum(np.maximum(ax - r, ay - 0.3 * r), np.maximum(ax - 0.3 * r, ay - r))
        return arm
    if shape == "bar":
        return np.maximum(ax - 1.2 * r, ay - 0.35 * r)
    if shape == "triangle":
        k = math.sqrt(3) / 2
        e1 = dy - 0.5 * r
        e2 = k * dx - 0.5 * dy - 0.5 * r
        e3 = -k * dx - 0.5 * dy - 0.5 * r
        return np.maximum(e1, np.maximum(e2, e3))
    raise ValueError(f"unknown shape {shape!r}")


def _texture(kind: str, h: int, w: int) -> np.ndarray:
    """(h, w) array of ±1: the 1-pixel fine texture anchored at the patch corner."""
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "hstripes":
        bits = yy % 2
    elif kind == "vstripes":
        bits = xx % 2
    elif kind == "checker":
        bits = (xx + yy) % 2
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return (2 * bits - 1).astype(np.float32)


def _window(rng: np.random.Generator, n: int) -> tuple[int, int]:
    lo = max(1, round(n * 6 / 48))
    hi = max(lo, round(n * 10 / 48))
    length = int(rng.integers(lo, hi + 1))
    length = min(length, n)
    start = int(rng.integers(0, n - length + 1))
    return start, start + length


def _path(
    rng: np.random.Generator, n_frames: int, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear motion of a centre inside [lo, hi]^2 over n_frames, at most 2 px/frame."""
    p0 = rng.uniform(lo, hi, 2)
    p1 = rng.uniform(lo, hi, 2)
    d = p1 - p0
    max_d = 2.0 * max(n_frames - 1, 1)
    if np.linalg.norm(d) > max_d:
        p1 = p0 + d * (max_d / np.linalg.norm(d))
    f = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    return p0[0] + (p1[0] - p0[0]) * f, p0[1] + (p1[1] - p0[1]) * f


def _render_video(
    spec: ClassSpec, scene: _Scene, rng: np.random.Generator, size: int, n: int
) -> tuple[list[np.ndarray], dict]:
    s = size
    # The centre crop keeps the middle 224/256 of the shorter side; stay inside it.
    margin = math.ceil(s * (1 - 224 / 256) / 2) + 2
    ev0, ev1 = _window(rng, n)
    length = ev1 - ev0
    info: dict = {
        "start": ev0,
        "end": ev1,
        "kind": spec.kind,
        "needs_high_res": spec.needs_high_res,
    }
    if spec.kind == "coarse":
        r = rng.uniform(0.14, 0.20) * s
        cxs, cys = _path(rng, length, margin + r, s - margin - r)
        rot = rng.uniform(-0.4, 0.4)
        color = np.clip(np.array(spec.color) + rng.uniform(-15, 15, 3), 0, 255).astype(np.float32)
        shade = rng.uniform(0.85, 1.1)
    else:
        side = int(round(rng.uniform(0.30, 0.40) * s))
        cxs, cys = _path(rng, length, margin, s - margin - side)
        cxs, cys = np.round(cxs).astype(int), np.round(cys).astype(int)
        level = rng.uniform(-22, 22)
        tex = _texture(spec.texture, side, side) * _TEXTURE_AMP
        patch = np.array(spec.color, dtype=np.float32) + level + tex[..., None]
    # Decoy: a plain grey patch outside the evidence window, in half of all videos.
    decoy = None
    if rng.random() < 0.5:
        d_len = int(rng.integers(max(1, length // 2), length + 1))
        free = [t for t in range(n - d_len + 1) if t + d_len <= ev0 or t >= ev1]
        if free:
            d0 = int(free[int(rng.integers(len(free)))])
            d_side = int(round(rng.uniform(0.30, 0.40) * s))
            dxs, dys = _path(rng, d_len, margin, s - margin - d_side)
            d_color = np.array(_GREY, dtype=np.float32) + rng.uniform(-22, 22)
            decoy = (
                d0,
                d0 + d_len,
                d_side,
                np.round(dxs).astype(int),
                np.round(dys).astype(int),
                d_color,
            )
    noise_rng = np.random.default_rng(rng.integers(2**63))
    frames = []
    x_min = y_min = s
    x_max = y_max = 0
    for t in range(n):
        img = scene.frame(t)
        if decoy is not None and decoy[0] <= t < decoy[1]:
            d0, _, d_side, dxs, dys, d_color = decoy
            x0, y0 = dxs[t - d0], dys[t - d0]
            img[y0 : y0 + d_side, x0 : x0 + d_side] = d_color
        if ev0 <= t < ev1:
            k = t - ev0
            if spec.kind == "coarse":
                c, sn = math.cos(rot), math.sin(rot)
                x0, y0, x1, y1 = _box(cxs[k], cys[k], 1.3 * r + 1, 1.3 * r + 1, s)
                yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
                dx, dy = xx - cxs[k], yy - cys[k]
                sd = _shape_sd(spec.shape, c * dx + sn * dy, -sn * dx + c * dy, r)
                alpha = np.clip(0.5 - sd, 0.0, 1.0)[..., None]
                shading = shade * (1.0 - 0.15 * (dy / r).clip(-1, 1))
                obj = color[None, None, :] * shading[..., None]
                img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + obj * alpha
                box = (cxs[k] - r, cys[k] - r, cxs[k] + r, cys[k] + r)
            else:
                x0, y0 = cxs[k], cys[k]
                img[y0 : y0 + side, x0 : x0 + side] = patch
                box = (x0, y0, x0 + side, y0 + side)
            x_min, y_min = min(x_min, box[0]), min(y_min, box[1])
            x_max, y_max = max(x_max, box[2]), max(y_max, box[3])
        img = img + noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(
            _NOISE_SIGMA
        )
        frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    info["bbox"] = [
        int(math.floor(x_min)),
        int(math.floor(y_min)),
        int(math.ceil(x_max)),
        int(math.ceil(y_max)),
    ]
    info["decoy"] = None if decoy is None else {"start": decoy[0], "end": decoy[1]}
    return frames, info


# ----------------------------------------------------------------------------- writing


def _codec() -> tuple[str, str, dict[str, str]]:
    """(codec, file extension, encoder options): libx264/.mp4, else mpeg4/.avi.

    Constant QP, not CRF: with PyAV 18 / FFmpeg 8 libx264 in CRF mode gave
    different bitstreams for identical input from run to run (even with
    ``threads=1``; bit-exact only with ``asm=0``), while constant QP was
    bit-exact in every trial — and "same seed → same pixels" needs that.
    """
    if "libx264" in av.codecs_available:
        return "libx264", ".mp4", {"qp": str(_QP), "preset": _PRESET}
    return "mpeg4", ".avi", {}


def write_video(
    path: str | os.PathLike,
    frames: list[np.ndarray] | np.ndarray,
    *,
    fps: int = 25,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> None:
    """Encode RGB frames into a video file with PyAV (yuv420p).

    Args:
        path: Output file; the container follows the extension.
        frames: ``(N, H, W, 3)`` uint8 RGB (array or list of arrays), ``H`` and
            ``W`` even.
        fps: Frame rate.
        codec: FFmpeg encoder name (``"libx264"``, ``"mpeg4"``, ...).
        options: Encoder options (e.g. ``{"crf": "16"}``); for codecs other
            than libx264 a 4 Mb/s bit rate is set.
        container_options: Muxer options (e.g. ``{"movflags": "faststart"}``).

    Raises:
        av.FFmpegError: The encoder or muxer fails.
    """
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 4_000_000
        to_yuv = VideoReformatter()
        for arr in frames:
            frame = to_yuv.reformat(
                av.VideoFrame.from_ndarray(arr, format="rgb24"), format="yuv420p"
            )
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _params(seed, num_classes, videos_per_class, num_frames, size, fps, test_groups=1) -> dict:
    return {
        "seed": seed,
        "num_classes": num_classes,
        "videos_per_class": videos_per_class,
        "num_frames": num_frames,
        "size": size,
        "fps": fps,
        "test_groups": test_groups,
    }


def generate_dataset(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    num_classes: int = 6,
    videos_per_class: int = 52,
    num_frames: int = 16,
    size: int = 64,
    fps: int = 25,
    test_groups: int = 1,
) -> str:
    """Write the generated dataset into ``root`` (atomically) unless it is already there.

    The dataset is first written into a hidden temporary sibling folder and
    then renamed to ``root``, so a crash or a concurrent generator never
    leaves a half-written dataset.  If ``root`` already holds a manifest with
    the same parameters it is returned unchanged.

    Videos: ``num_classes × videos_per_class`` H.264 (libx264, constant
    QP 16, preset veryfast, yuv420p) ``.mp4`` files of ``num_frames`` frames, ``size × size`` px at
    ``fps``; MPEG-4 part 2 ``.avi`` only if this PyAV lacks libx264 (the codec
    is recorded in the manifest).  Split: clips are grouped into 4 groups per
    class (``gXX``; ``cYY`` within a group) and groups ``1 … test_groups`` are
    the test split (≈ 25 % per group), as UCF101's split 1 tests on its first
    groups (7 of 25).

    Args:
        root: Target folder (must not exist, or be empty, or already hold
            this dataset).
        seed: Seed of every random choice; same seed → same pixels.
        num_classes: ``2 .. len(CLASS_SPECS)``; the first classes of
            :data:`CLASS_SPECS`.
        videos_per_class: ``>= 2``.
        num_frames: Frames per video, ``>= 4``.
        size: Frame side, pixels, ``>= 32`` (even, for yuv420p).
        fps: Frame rate.
        test_groups: Groups (of 4) in the test split, ``1 … 3``.

    Returns:
        ``str(root)``.

    Raises:
        ValueError: Parameters out of range, or ``root`` holds a generated
            dataset with other parameters.
        FileExistsError: ``root`` is a non-empty folder that is not this
            generated dataset.
    """
    if not 2 <= num_classes <= len(CLASS_SPECS):
        raise ValueError(f"num_classes must be in 2..{len(CLASS_SPECS)}, got {num_classes}")
    if videos_per_class < 2:
        raise ValueError(f"videos_per_class must be >= 2, got {videos_per_class}")
    if num_frames < 4:
        raise ValueError(f"num_frames must be >= 4, got {num_frames}")
    if size < 32 or size % 2:
        raise ValueError(f"size must be an even number >= 32, got {size}")
    if not 1 <= test_groups <= 3:
        raise ValueError(f"test_groups must be in 1..3, got {test_groups}")
    root = Path(root)
    params = _params(seed, num_classes, videos_per_class, num_frames, size, fps, test_groups)
    existing = read_manifest(root)
    if existing is not None:
        if existing.get("params") != params or existing.get("version") != GENERATOR_VERSION:
            raise ValueError(
                f"{root} holds a generated dataset with other parameters "
                f"({existing.get('params')}, v{existing.get('version')}); want {params}"
            )
        return str(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not a generated evbench dataset")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_all(tmp, params)
        try:
            if root.is_dir():
                root.rmdir()  # an empty placeholder
            os.rename(tmp, root)
        except OSError:
            if read_manifest(root) is None:  # not a concurrent generator's result
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(root)


def _write_all(tmp: Path, params: dict) -> None:
    seed = params["seed"]
    n, size, fps = params["num_frames"], params["size"], params["fps"]
    vpc = params["videos_per_class"]
    specs = CLASS_SPECS[: params["num_classes"]]
    codec, ext, options = _codec()
    per_group = math.ceil(vpc / 4)
    split_dir = tmp / "ucfTrainTestlist"
    split_dir.mkdir(parents=True)
    scenes: dict[tuple[int, int], _Scene] = {}
    videos, train_lines, test_lines = [], [], []
    for label, spec in enumerate(specs):
        (tmp / spec.name).mkdir()
        for v in range(vpc):
            group, clip = v // per_group + 1, v % per_group + 1
            if (group, clip) not in scenes:
                scenes[(group, clip)] = _Scene(
                    np.random.default_rng([seed, 2, group, clip]), size, n
                )
            rng = np.random.default_rng([seed, 1, label, v])
            frames, info = _render_video(spec, scenes[(group, clip)], rng, size, n)
            rel = f"{spec.name}/v_{spec.name}_g{group:02d}_c{clip:02d}{ext}"
            write_video(tmp / rel, frames, fps=fps, codec=codec, options=options)
            split = "test" if group <= params.get("test_groups", 1) else "train"
            (test_lines if split == "test" else train_lines).append(
                rel if split == "test" else f"{rel} {label + 1}"
            )
            videos.append(
                {
                    "id": rel,
                    "class": spec.name,
                    "label": label,
                    "group": group,
                    "clip": clip,
                    "split": split,
                    "num_frames": n,
                    "evidence": {
                        k: info[k] for k in ("start", "end", "kind", "needs_high_res", "bbox")
                    },
                    "decoy": info["decoy"],
                }
            )
    (split_dir / "classInd.txt").write_text(
        "".join(f"{i + 1} {s.name}\n" for i, s in enumerate(specs)), encoding="utf-8"
    )
    (split_dir / "trainlist01.txt").write_text(
        "".join(x + "\n" for x in train_lines), encoding="utf-8"
    )
    (split_dir / "testlist01.txt").write_text(
        "".join(x + "\n" for x in test_lines), encoding="utf-8"
    )
    manifest = {
        "generator": GENERATOR_ID,
        "version": GENERATOR_VERSION,
        "synthetic": True,
        "note": (
            "SYNTHETIC generated dataset: class evidence appears only in a short window of "
            "frames ('evidence.start'..'evidence.end', end exclusive, 0-based); fine classes "
            "('needs_high_res') differ from their pair only by a 1-pixel texture that the "
            f"anti-aliased resize removes below ~{fine_texture_min_resolution(size)} px. Coordinates are in "
            "stored-video pixels."
        ),
        "params": params,
        "codec": codec,
        "container": ext.lstrip("."),
        "pix_fmt": "yuv420p",
        "encoder_options": options,
        "noise_sigma": _NOISE_SIGMA,
        "texture_amplitude": _TEXTURE_AMP,
        "fine_texture": {
            "period_px": 2,
            "min_resolution": fine_texture_min_resolution(size),
            "rule": "period at output side r (scale 256, crop 224) = 2*(256/size)*(r/224) px; "
            "resolvable when >= 2 px, i.e. r >= 224*size/256. RMS contrast kept, for size 128: "
            "224 px 71 %, 168 px 48 %, 112 px 35 %, 84 px 12 % (aliased), 56 px 0 %",
        },
        "split": {"scheme": f"UCF101-style groups; groups 1-{params.get('test_groups', 1)} of 4 = test",
                  "split_id": 1},
        "classes": [
            dict(asdict(s), label=i, needs_high_res=s.needs_high_res) for i, s in enumerate(specs)
        ],
        "videos": videos,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
