"""Decoding videos and frame folders; bad files give DataError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evbench.harness.data import (
    DataError,
    decode_frames,
    open_dataset,
    probe_num_frames,
    probe_video,
)
from evbench.harness.data.decode import list_frame_files
from evbench.harness.data.generate import write_video
from PIL import Image


def _frames(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Frames whose mean brightness encodes the frame number (for order checks)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(20, 235, n)[:, None, None, None]
    f = base + rng.normal(0, 2, (n, size, size, 3))
    return np.clip(f, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    fr = _frames(30)
    out = {
        "mp4": d / "ok.mp4",
        "faststart": d / "fs.mp4",
        "avi": d / "ok.avi",
        "mkv": d / "ok.mkv",
        "short": d / "short.mp4",
    }
    write_video(out["mp4"], fr)
    write_video(out["faststart"], fr, container_options={"movflags": "faststart"})
    write_video(out["avi"], fr, codec="mpeg4")
    write_video(out["mkv"], fr)
    write_video(out["short"], fr[:3])
    return out


@pytest.mark.parametrize("kind", ["mp4", "faststart", "avi", "mkv"])
def test_decode_returns_requested_frames_in_order(videos, kind):
    out = decode_frames(str(videos[kind]), [29, 0, 15, 15])
    assert out.shape == (4, 64, 64, 3) and out.dtype == np.uint8
    means = out.reshape(4, -1).mean(1)
    assert means[1] < means[2] < means[0]
    assert np.array_equal(out[2], out[3])
    assert probe_num_frames(str(videos[kind])) == 30  # mkv: counted by decoding


def test_probe_video_reports_codec(videos):
    assert probe_video(str(videos["mp4"]))["codec"] == "h264"
    assert probe_video(str(videos["avi"]))["codec"] == "mpeg4"


def _bad(tmp_path: Path, videos, name: str) -> Path:
    src = videos["faststart"].read_bytes()
    p = tmp_path / name
    if name == "empty.mp4":
        p.write_bytes(b"")
    elif name == "text.avi":
        p.write_text("not a video\n" * 20)
    elif name == "random.mp4":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif name == "truncated_moov_end.mp4":
        p.write_bytes(videos["mp4"].read_bytes()[: len(src) // 2])
    elif name == "truncated.mp4":
        p.write_bytes(src[: len(src) // 2])
    elif name == "truncated.avi":
        p.write_bytes(videos["avi"].read_bytes()[: len(videos["avi"].read_bytes()) // 2])
    return p


@pytest.mark.parametrize(
    "name",
    [
        "empty.mp4",
        "text.avi",
        "random.mp4",
        "truncated_moov_end.mp4",
        "truncated.mp4",
        "truncated.avi",
    ],
)
def test_bad_videos_raise_data_error_naming_the_file(tmp_path, videos, name):
    p = _bad(tmp_path, videos, name)
    with pytest.raises(DataError) as ei:
        decode_frames(str(p), [0, 14, 29])
    assert ei.value.path == str(p)
    assert str(p) in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        decode_frames(str(tmp_path / "nope.mp4"), [0])
    with pytest.raises(DataError):
        probe_num_frames(str(tmp_path / "nope.mp4"))


def test_corrupt_middle_is_data_error_or_frames_never_other(tmp_path, videos):
    b = bytearray(videos["mp4"].read_bytes())
    b[len(b) // 3 : len(b) // 3 + 1500] = bytes(1500)
    p = tmp_path / "mid.mp4"
    p.write_bytes(bytes(b))
    try:
        out = decode_frames(str(p), [0, 29])
        assert out.shape == (2, 64, 64, 3)
    except DataError as e:
        assert e.path == str(p)


def test_dataset_keeps_listing_when_one_file_is_bad(tmp_path, videos):
    root = tmp_path / "ds"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    (root / "A" / "good.mp4").write_bytes(videos["mp4"].read_bytes())
    (root / "A" / "notes.txt").write_text("ignored")
    (root / "B" / "bad.mp4").write_bytes(b"")
    (root / "B" / "short.mp4").write_bytes(videos["short"].read_bytes())
    ds = open_dataset(str(root), frames=8, size=32, cache_dir=str(tmp_path / "cache"))
    assert [e.id for e in ds.entries] == ["A/good.mp4", "B/bad.mp4", "B/short.mp4"]
    assert ds[0].x.shape == (8, 3, 32, 32)
    with pytest.raises(DataError) as ei:
        ds[1]
    assert ei.value.path.endswith("bad.mp4")
    short = ds[2]  # 3 frames, T = 8: indices repeat, no error
    assert short.frame_indices == [0, 0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(IndexError):
        ds[3]


def _write_jpegs(folder: Path, n: int, name="i_{:04d}.jpg") -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((24, 32, 3), 10 * i, dtype=np.uint8)).save(
            folder / name.format(i + 1), quality=95
        )


def test_frame_folder_decoding_and_natural_order(tmp_path):
    _write_jpegs(tmp_path / "v", 12, name="i_{}.jpg")  # i_2 must come before i_10
    (tmp_path / "v" / "flow_x_1.jpg").write_bytes((tmp_path / "v" / "i_1.jpg").read_bytes())
    files = list_frame_files(tmp_path / "v")
    assert [f.name for f in files][:3] == ["i_1.jpg", "i_2.jpg", "i_3.jpg"] and len(files) == 12
    out = decode_frames(str(tmp_path / "v"), [11, 1])
    assert out.shape == (2, 24, 32, 3)
    assert abs(int(out[0].mean()) - 110) <= 2 and abs(int(out[1].mean()) - 10) <= 2
    assert probe_num_frames(str(tmp_path / "v")) == 12


def test_frame_folder_errors(tmp_path):
    _write_jpegs(tmp_path / "v", 5)
    with pytest.raises(DataError, match="truncated"):
        decode_frames(str(tmp_path / "v"), [0, 7])
    (tmp_path / "v" / "i_0003.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError) as ei:
        decode_frames(str(tmp_path / "v"), [2])
    assert ei.value.path.endswith("i_0003.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no frame images"):
        decode_frames(str(tmp_path / "empty"), [0])


def test_data_error_str_and_pickle():
    import pickle

    e = DataError("/x/y.avi", "truncated")
    assert str(e) == "/x/y.avi: truncated"
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.reason) == ("/x/y.avi", "truncated")
    assert str(DataError("only a message")) == "only a message"
