"""UCF101 / HMDB51 / TSN-list / folder-per-class listing, incl. malformed split files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evbench.harness.data import DataError, open_dataset
from evbench.harness.data.layouts import detect_layout, list_hmdb51, list_tsn_file, list_ucf101
from PIL import Image

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "HandstandPushups"]


def _ucf(
    root: Path, train: str | None = None, test: str | None = None, class_ind: str | None = None
) -> Path:
    sd = root / "ucfTrainTestlist"
    sd.mkdir(parents=True)
    (sd / "classInd.txt").write_text(
        class_ind
        if class_ind is not None
        else "".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES))
    )
    (sd / "trainlist01.txt").write_text(
        train
        if train is not None
        else "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "Archery/v_Archery_g08_c01.avi 2\n\n"
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 3\n"
    )
    (sd / "testlist01.txt").write_text(
        test
        if test is not None
        else "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nArchery/v_Archery_g01_c01.avi\r\n"
    )
    return root


def test_ucf101_official_split(tmp_path):
    root = _ucf(tmp_path)
    assert detect_layout(root) == "ucf101"
    tr = list_ucf101(root, "train", 1)
    te = list_ucf101(root, "test", 1)
    al = list_ucf101(root, "all", 1)
    assert tr.class_names == UCF_CLASSES
    assert [e.label for e in tr.entries] == [0, 1, 2]
    assert [e.id for e in te.entries] == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "Archery/v_Archery_g01_c01.avi",
    ]
    assert te.entries[1].path == str(root / "Archery/v_Archery_g01_c01.avi")
    assert len(al.entries) == 5
    ds = open_dataset(str(root), split="test", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 2 and ds.synthetic is False and "split 1" in ds.note
    with pytest.raises(DataError) as ei:  # videos absent: the item fails, not the listing
        ds[0]
    assert ei.value.path.endswith("v_ApplyEyeMakeup_g01_c01.avi")


def test_ucf101_videos_under_ucf_101_subfolder(tmp_path):
    root = _ucf(tmp_path)
    (root / "UCF-101" / "Archery").mkdir(parents=True)
    (root / "UCF-101" / "ApplyEyeMakeup").mkdir(parents=True)
    (root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi").write_bytes(b"x")
    te = list_ucf101(root, "test", 1)
    assert te.entries[0].path == str(
        root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi"
    )


@pytest.mark.parametrize(
    ("which", "text", "line", "match"),
    [
        ("train", "ApplyEyeMakeup/a.avi 1\nArchery/b.avi 2 extra\n", 2, "expected"),
        ("train", "ApplyEyeMakeup/a.avi one\n", 1, "not an integer"),
        ("train", "ApplyEyeMakeup/a.avi 9\n", 1, "out of range"),
        ("train", "ApplyEyeMakeup/a.avi 2\n", 1, "disagrees"),
        ("test", "a.avi\n", 1, "no class folder"),
        (
            "test",
            "ApplyEyeMakeup/a.avi\nJuggling/v_Juggling_g01_c01.avi\n",
            2,
            "unknown class 'Juggling'",
        ),
    ],
)
def test_ucf101_malformed_split_files_name_file_and_line(tmp_path, which, text, line, match):
    root = _ucf(tmp_path, **{which: text})
    with pytest.raises(DataError, match=match) as ei:
        list_ucf101(root, which, 1)
    fname = "trainlist01.txt" if which == "train" else "testlist01.txt"
    assert ei.value.path.endswith(f"{fname}:{line}")


def test_ucf101_unknown_class_message_names_the_class(tmp_path):
    root = _ucf(tmp_path, test="Juggling/v_Juggling_g01_c01.avi\n")
    with pytest.raises(DataError) as ei:
        open_dataset(str(root), split="test")
    assert "testlist01.txt:1" in str(ei.value) and "Juggling" in str(ei.value)


def test_ucf101_class_folder_case_mismatch_is_tolerated(tmp_path):
    root = _ucf(tmp_path, test="Handstandpushups/v_HandStandPushups_g01_c01.avi\n")
    assert list_ucf101(root, "test", 1).entries[0].label == 2


@pytest.mark.parametrize("class_ind", ["1 A\n1 B\n", "1 A\n2 A\n", "A 1\n", "1 A\n3 B\n", ""])
def test_ucf101_bad_class_index(tmp_path, class_ind):
    root = _ucf(tmp_path, class_ind=class_ind)
    with pytest.raises(DataError, match="classInd.txt"):
        list_ucf101(root, "test", 1)


def test_ucf101_missing_or_empty_split_file(tmp_path):
    root = _ucf(tmp_path, test="")
    with pytest.raises(DataError, match="no videos"):
        list_ucf101(root, "test", 1)
    with pytest.raises(DataError, match="not found"):
        list_ucf101(root, "train", 2)
    with pytest.raises(ValueError):
        list_ucf101(root, "validation", 1)


def _hmdb(root: Path, extra: dict[str, str] | None = None) -> Path:
    sd = root / "testTrainMulti_7030_splits"
    sd.mkdir(parents=True)
    files = {
        "brush_hair_test_split1.txt": "a.avi 1\nb.avi 2\nc.avi 0\n",
        "cartwheel_test_split1.txt": "d.avi 2 \ne.avi 1\n",
        "cartwheel_test_split2.txt": "d.avi 1\ne.avi 2\n",
    }
    files.update(extra or {})
    for name, text in files.items():
        (sd / name).write_text(text)
    return root


def test_hmdb51_split_tags(tmp_path):
    root = _hmdb(tmp_path)
    assert detect_layout(root) == "hmdb51"
    tr = list_hmdb51(root, "train", 1)
    te = list_hmdb51(root, "test", 1)
    al = list_hmdb51(root, "all", 1)
    assert tr.class_names == ["brush_hair", "cartwheel"]
    assert [(e.id, e.label) for e in tr.entries] == [
        ("brush_hair/a.avi", 0),
        ("cartwheel/e.avi", 1),
    ]
    assert [e.id for e in te.entries] == ["brush_hair/b.avi", "cartwheel/d.avi"]
    assert len(al.entries) == 4  # tag 0 never used
    assert te.entries[0].path == str(root / "brush_hair" / "b.avi")
    assert [e.id for e in list_hmdb51(root, "test", 2).entries] == ["cartwheel/e.avi"]


@pytest.mark.parametrize(
    ("text", "match"),
    [("a.avi 3\n", "expected"), ("a.avi\n", "expected"), ("cartwheel/a.avi 1\n", "unknown class")],
)
def test_hmdb51_malformed_lines(tmp_path, text, match):
    root = _hmdb(tmp_path, {"brush_hair_test_split1.txt": text})
    with pytest.raises(DataError, match=match) as ei:
        list_hmdb51(root, "train", 1)
    assert ei.value.path.endswith("brush_hair_test_split1.txt:1")


def test_hmdb51_no_split_files(tmp_path):
    root = _hmdb(tmp_path)
    with pytest.raises(DataError, match="split3"):
        list_hmdb51(root, "test", 3)


def _jpeg_folder(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(folder / f"img_{i + 1:05d}.jpg")


def test_tsn_list_file(tmp_path):
    _jpeg_folder(tmp_path / "frames" / "Archery" / "v1", 6)
    _jpeg_folder(tmp_path / "abs" / "Bowling" / "v2", 3)
    lst = tmp_path / "val.txt"
    lst.write_text(
        f"frames/Archery/v1 6 0\n{tmp_path / 'abs' / 'Bowling' / 'v2'} 3 1\nframes/Archery/gone 0 0\n"
    )
    listing = list_tsn_file(lst)
    assert listing.class_names == ["Archery", "Bowling"]
    assert [e.num_frames for e in listing.entries] == [6, 3, 0]
    ds = open_dataset(str(lst), frames=4, size=32, cache_dir=str(tmp_path / "c"))
    assert ds[0].x.shape == (4, 3, 32, 32) and ds[0].frame_indices == [0, 2, 3, 5]
    assert ds[1].frame_indices == [0, 1, 1, 2]
    with pytest.raises(DataError, match="0 frames") as ei:
        ds[2]
    assert ei.value.path.endswith("gone")


@pytest.mark.parametrize("line", ["frames/v1 6\n", "frames/v1 six 0\n", "frames/v1 6 -1\n"])
def test_tsn_list_malformed(tmp_path, line):
    lst = tmp_path / "l.txt"
    lst.write_text("frames/v0 3 0\n" + line)
    with pytest.raises(DataError) as ei:
        list_tsn_file(lst)
    assert ei.value.path == f"{lst}:2"


def test_folder_per_class_train_is_flagged(tmp_path):
    _jpeg_folder(tmp_path / "A" / "clip1", 4)
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "x.mp4").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    assert detect_layout(tmp_path) == "folders"
    te = open_dataset(str(tmp_path), split="test", cache_dir=str(tmp_path / ".c"))
    tr = open_dataset(str(tmp_path), split="train", cache_dir=str(tmp_path / ".c"))
    assert te.class_names == ["A", "B"] and [e.id for e in te.entries] == ["A/clip1", "B/x.mp4"]
    assert [e.id for e in tr.entries] == [e.id for e in te.entries]
    assert "SAME" in tr.note


def test_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_dataset(str(tmp_path / "missing"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="not a dataset"):
        open_dataset(str(tmp_path / "x.csv"))
    with pytest.raises(ValueError):
        open_dataset(str(tmp_path), split="bogus")


def test_dataset_collection_expands_a_folder_of_datasets(tmp_path):
    from evbench.harness.data.layouts import dataset_collection

    for ds in ("a", "b"):
        (tmp_path / "coll" / ds / "Run").mkdir(parents=True)
        (tmp_path / "coll" / ds / "Run" / "x.mp4").write_bytes(b"")
    assert [p.split("/")[-1] for p in dataset_collection(tmp_path / "coll")] == ["a", "b"]
    assert dataset_collection(tmp_path / "coll" / "a") == []  # a dataset itself, not a collection
