"""Dataset layouts on disk → class names and :class:`~evbench.harness.data.records.Entry` lists.

Listing never opens a video: it reads split/list files and directory names
only, so one bad video cannot break the listing (it fails later, alone, in
``__getitem__``).  Split and list files *are* validated here: a malformed line
raises :class:`~evbench.harness.data.errors.DataError` with ``path = "<file>:<line>"``.

Supported layouts:

* **UCF101** — ``<root>/<Class>/v_<Class>_gXX_cYY.avi`` plus
  ``<root>/ucfTrainTestlist/{classInd.txt, trainlist0N.txt, testlist0N.txt}``
  (``classInd`` is 1-based; train lines carry an optional 1-based label that
  must agree with the class folder).  Videos may also sit under
  ``<root>/UCF-101/`` as in the official archive.
* **HMDB51** — ``<root>/<class>/*.avi`` plus
  ``<root>/testTrainMulti_7030_splits/<class>_test_splitN.txt`` whose lines
  are ``<video> <tag>`` with tag 1 = train, 2 = test, 0 = unused.
* **TSN list file** — lines ``<frame folder> <num_frames> <label>`` (AR-Net /
  TSN style); folders relative to the list file's folder or absolute.
* **Folder per class** — ``<root>/<Class>/<item>`` where an item is a video
  file or a folder of frame images.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .decode import is_video_file
from .errors import DataError
from .records import Entry

__all__ = [
    "Listing",
    "UCF_SPLIT_DIR",
    "HMDB_SPLIT_DIR",
    "detect_layout",
    "list_ucf101",
    "list_hmdb51",
    "list_tsn_file",
    "list_class_folders",
]

UCF_SPLIT_DIR = "ucfTrainTestlist"
HMDB_SPLIT_DIR = "testTrainMulti_7030_splits"
SPLITS = ("train", "test", "all")
_HMDB_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$")


@dataclass
class Listing:
    """Result of listing a dataset.

    Attributes:
        layout: ``"ucf101"``, ``"hmdb51"``, ``"tsn_list"`` or ``"folders"``.
        class_names: Class names, index = label.
        entries: The split's items, in split-file (or sorted) order.
        note: Human-readable remark on how the split was formed.
    """

    layout: str
    class_names: list[str]
    entries: list[Entry]
    note: str


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines as (1-based line number, stripped text)."""
    if not path.is_file():
        raise DataError(str(path), "split/list file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise DataError(str(path), f"not a UTF-8 text file: {e}") from e
    except OSError as e:
        raise DataError(str(path), f"cannot read: {e.strerror or e}") from e
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((n, s))
    return out


def detect_layout(path: str | os.PathLike) -> str:
    """Which layout ``path`` is.

    Args:
        path: A dataset folder, list file or feature file.

    Returns:
        ``"features"`` (``.npz``), ``"tsn_list"`` (``.txt`` file),
        ``"ucf101"`` (folder with ``ucfTrainTestlist/``), ``"hmdb51"`` (folder
        with ``testTrainMulti_7030_splits/``) or ``"folders"`` (any other
        folder).

    Raises:
        DataError: ``path`` does not exist or is a file of another kind.
    """
    p = Path(path)
    if p.is_dir():
        if (p / UCF_SPLIT_DIR).is_dir():
            return "ucf101"
        if (p / HMDB_SPLIT_DIR).is_dir():
            return "hmdb51"
        return "folders"
    if p.is_file():
        if p.suffix.lower() == ".npz":
            return "features"
        if p.suffix.lower() in (".txt", ".lst", ".list"):
            return "tsn_list"
        raise DataError(str(p), "not a dataset: expected a folder, a .txt list file or a .npz file")
    raise DataError(str(p), "dataset path not found")


# ----------------------------------------------------------------------------- UCF101


def _read_class_ind(path: Path) -> list[str]:
    lines = _read_lines(path)
    if not lines:
        raise DataError(str(path), "empty class index file")
    by_index: dict[int, str] = {}
    for n, s in lines:
        parts = s.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{n}", f"expected '<index> <ClassName>', got {s!r}")
        idx, name = int(parts[0]), parts[1]
        if idx in by_index:
            raise DataError(f"{path}:{n}", f"duplicate class index {idx}")
        if name in by_index.values():
            raise DataError(f"{path}:{n}", f"duplicate class name {name!r}")
        by_index[idx] = name
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise DataError(
            str(path), f"class indices must be 1..{len(by_index)}, got {sorted(by_index)}"
        )
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _resolve_class(name: str, lookup: dict[str, int], lower: dict[str, list[int]]) -> int | None:
    if name in lookup:
        return lookup[name]
    cand = lower.get(name.lower(), [])
    return cand[0] if len(cand) == 1 else None


def _read_ucf_list(path: Path, class_names: list[str]) -> list[tuple[str, int]]:
    lookup = {c: i for i, c in enumerate(class_names)}
    lower: dict[str, list[int]] = {}
    for i, c in enumerate(class_names):
        lower.setdefault(c.lower(), []).append(i)
    out = []
    for n, s in _read_lines(path):
        parts = s.split()
        where = f"{path}:{n}"
        if len(parts) not in (1, 2):
            raise DataError(where, f"expected '<Class>/<video> [label]', got {s!r}")
        rel = parts[0].replace("\\", "/")
        if "/" not in rel:
            raise DataError(where, f"video path {rel!r} has no class folder ('<Class>/<video>')")
        cls = rel.split("/", 1)[0]
        label = _resolve_class(cls, lookup, lower)
        if label is None:
            raise DataError(where, f"unknown class {cls!r} (not in classInd.txt)")
        if len(parts) == 2:
            if not parts[1].lstrip("-").isdigit():
                raise DataError(where, f"label {parts[1]!r} is not an integer")
            given = int(parts[1])
            if not 1 <= given <= len(class_names):
                raise DataError(where, f"label {given} out of range 1..{len(class_names)}")
            if given - 1 != label:
                raise DataError(
                    where,
                    f"label {given} ({class_names[given - 1]}) disagrees with class folder {cls!r}",
                )
        out.append((rel, label))
    if not out:
        raise DataError(str(path), "split file lists no videos")
    return out


def list_ucf101(root: str | os.PathLike, split: str = "test", split_id: int = 1) -> Listing:
    """List a UCF101-layout dataset.

    Args:
        root: Folder holding ``ucfTrainTestlist/`` and the class folders.
        split: ``"train"`` (``trainlist0N``), ``"test"`` (``testlist0N``) or
            ``"all"`` (both, train first, de-duplicated).
        split_id: ``N`` in the split file names (1–3 for UCF101).

    Returns:
        A :class:`Listing`; entries have ``id = "<Class>/<file>"``.

    Raises:
        DataError: Missing/malformed ``classInd.txt`` or split file (naming
            ``file:line``), unknown class in a split file.
        ValueError: Unknown ``split``.
    """
    _check_split(split)
    root = Path(root)
    sd = root / UCF_SPLIT_DIR
    class_names = _read_class_ind(sd / "classInd.txt")
    files = {"train": [f"trainlist{split_id:02d}.txt"], "test": [f"testlist{split_id:02d}.txt"]}
    files["all"] = files["train"] + files["test"]
    items: dict[str, int] = {}
    for name in files[split]:
        for rel, label in _read_ucf_list(sd / name, class_names):
            items.setdefault(rel, label)
    base = root
    first = next(iter(items))
    if not (root / first).exists() and (root / "UCF-101" / first).exists():
        base = root / "UCF-101"
    entries = [Entry(id=rel, path=str(base / rel), label=lab) for rel, lab in items.items()]
    note = f"UCF101 layout, official split {split_id} ({', '.join(files[split])})"
    return Listing("ucf101", class_names, entries, note)


# ----------------------------------------------------------------------------- HMDB51


def list_hmdb51(root: str | os.PathLike, split: str = "test", split_id: int = 1) -> Listing:
    """List an HMDB51-layout dataset.

    Args:
        root: Folder holding ``testTrainMulti_7030_splits/`` and class folders.
        split: ``"train"`` (tag 1), ``"test"`` (tag 2) or ``"all"`` (1 and 2);
            tag 0 (unused) is always left out.
        split_id: ``N`` of ``<class>_test_splitN.txt``.

    Returns:
        A :class:`Listing`; classes are the split files' class names, sorted;
        entries have ``id = "<class>/<video>"``.

    Raises:
        DataError: No split files for ``split_id``, malformed line (naming
            ``file:line``), a line naming a video of another class.
        ValueError: Unknown ``split``.
    """
    _check_split(split)
    root = Path(root)
    sd = root / HMDB_SPLIT_DIR
    per_class: dict[str, Path] = {}
    for p in sorted(sd.iterdir()):
        m = _HMDB_FILE.match(p.name)
        if m and int(m.group("n")) == split_id:
            per_class[m.group("cls")] = p
    if not per_class:
        raise DataError(str(sd), f"no '<class>_test_split{split_id}.txt' files")
    class_names = sorted(per_class)
    want = {"train": {1}, "test": {2}, "all": {1, 2}}[split]
    entries: list[Entry] = []
    for label, cls in enumerate(class_names):
        path = per_class[cls]
        for n, s in _read_lines(path):
            where = f"{path}:{n}"
            parts = s.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(where, f"expected '<video> <0|1|2>', got {s!r}")
            video = parts[0].replace("\\", "/")
            if "/" in video:
                vcls, video = video.rsplit("/", 1)
                if vcls != cls:
                    raise DataError(
                        where, f"unknown class {vcls!r} in the split file of class {cls!r}"
                    )
            if int(parts[1]) in want:
                entries.append(
                    Entry(id=f"{cls}/{video}", path=str(root / cls / video), label=label)
                )
    note = f"HMDB51 layout, official split {split_id} (tag {'/'.join(map(str, sorted(want)))})"
    return Listing("hmdb51", class_names, entries, note)


# ----------------------------------------------------------------------------- TSN list


def list_tsn_file(list_file: str | os.PathLike) -> Listing:
    """List a TSN / AR-Net list file of frame folders.

    Each line is ``<folder> <num_frames> <label>`` (0-based label); the folder
    is absolute or relative to the list file's folder and may contain spaces.
    Class names are the folders' parent-folder names when every label maps to
    exactly one distinct parent name, otherwise ``class_<k>``.

    Args:
        list_file: The ``.txt`` list.

    Returns:
        A :class:`Listing` with ``num_frames`` set on every entry.

    Raises:
        DataError: Missing/empty file or malformed line (naming ``file:line``:
            wrong field count, non-integer or negative frame count or label).
    """
    list_file = Path(list_file)
    base = list_file.parent
    entries: list[Entry] = []
    parents: dict[int, set[str]] = {}
    for n, s in _read_lines(list_file):
        where = f"{list_file}:{n}"
        parts = s.rsplit(maxsplit=2)
        if len(parts) != 3:
            raise DataError(where, f"expected '<folder> <num_frames> <label>', got {s!r}")
        rel, nf, lab = parts
        if not nf.isdigit():
            raise DataError(where, f"num_frames {nf!r} is not a non-negative integer")
        if not lab.isdigit():
            raise DataError(where, f"label {lab!r} is not a non-negative integer")
        p = Path(rel) if os.path.isabs(rel) else base / rel
        entries.append(Entry(id=rel, path=str(p), label=int(lab), num_frames=int(nf)))
        parents.setdefault(int(lab), set()).add(Path(rel).parent.name)
    if not entries:
        raise DataError(str(list_file), "list file lists no frame folders")
    k = max(e.label for e in entries) + 1
    names = [f"class_{i}" for i in range(k)]
    cand = {lab: next(iter(ps)) for lab, ps in parents.items() if len(ps) == 1 and next(iter(ps))}
    if len(cand) == len(parents) and len(set(cand.values())) == len(cand):
        for lab, name in cand.items():
            names[lab] = name
    return Listing("tsn_list", names, entries, f"TSN list file {list_file.name}")


# ----------------------------------------------------------------------------- folders


def list_class_folders(root: str | os.PathLike, split: str = "test") -> Listing:
    """List a folder-per-class dataset.

    Every sub-folder of ``root`` (hidden ones and split-list folders excepted)
    is a class, in sorted order; its items are its video files (by extension)
    and its sub-folders (taken as frame folders).  There is no official split:
    every item is in ``"test"`` and ``"all"``; ``"train"`` returns the same
    items, and the note says so (never report accuracy on it).

    Args:
        root: Dataset folder.
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        A :class:`Listing`; entries have ``id = "<Class>/<item>"``.

    Raises:
        DataError: ``root`` unreadable or without class folders.
        ValueError: Unknown ``split``.
    """
    _check_split(split)
    root = Path(root)
    try:
        classes = sorted(
            d.name
            for d in root.iterdir()
            if d.is_dir()
            and not d.name.startswith(".")
            and d.name not in (UCF_SPLIT_DIR, HMDB_SPLIT_DIR)
        )
    except OSError as e:
        raise DataError(str(root), f"cannot list dataset folder: {e.strerror or e}") from e
    if not classes:
        raise DataError(str(root), "no class folders found")
    entries = []
    for label, cls in enumerate(classes):
        for item in sorted((root / cls).iterdir()):
            if item.name.startswith("."):
                continue
            if item.is_dir() or (item.is_file() and is_video_file(item)):
                entries.append(Entry(id=f"{cls}/{item.name}", path=str(item), label=label))
    note = "folder-per-class layout, no official split: every item is a test item"
    if split == "train":
        note = "folder-per-class layout, no official split: 'train' is the SAME items as 'test'"
    return Listing("folders", classes, entries, note)


def dataset_collection(path: str | os.PathLike) -> list[str]:
    """Sub-datasets of a folder of folder-per-class trees (e.g. ``clips/{arid,kth,...}``).

    A folder is a collection when it has no split files and every child folder
    is itself a class-per-folder tree whose class folders hold video files
    (``<root>/<dataset>/<class>/<clip>.mp4``).

    Returns:
        Sorted child paths, or ``[]`` when ``path`` is not such a collection
        (then it is opened as a dataset itself).
    """
    root = Path(path)
    if not root.is_dir() or detect_layout(root) != "folders":
        return []
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not children:
        return []
    for child in children:
        class_dirs = [c for c in child.iterdir() if c.is_dir()]
        if not class_dirs or any(is_video_file(f) for f in child.iterdir() if f.is_file()):
            return []
        if not any(is_video_file(f) for c in class_dirs for f in c.iterdir() if f.is_file()):
            return []
    return [str(c) for c in children]
