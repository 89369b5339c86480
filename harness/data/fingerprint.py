"""Content identity of a dataset source, independent of the path used to name it.

A cell's id and its trained model's id (:mod:`evbench.harness.suites`) hash
:func:`data_fingerprint` of the train and test sources instead of the path
strings, so

* the same data named by another path (``--train /abs/x.npz`` vs
  ``--train x.npz``, a symlink, a copied tree) gives the same ids — a resumed
  run recognises its finished cells and reuses its checkpoints;
* a changed file at the same path gives new ids — nothing measured or trained
  on the old data is reused.

What is hashed, per source kind:

========================  ==================================================
``generated[:root]``      the generator's version, parameters and codec (the
                          generator is deterministic: same parameters, same
                          pixels); from ``root``'s manifest when present,
                          else the defaults it would be generated with
``.npz`` feature file     size and every member's name, size and CRC-32 from
                          the zip directory (a content hash of every array,
                          read without loading them)
dataset folder            every file's path relative to the root, size and
                          mtime (``os.stat``; videos are not read), the full
                          content of split / class-index / list files and of
                          a generator manifest; a frame folder counts as its
                          name, number of entries and mtime (its frames are
                          not stat'ed one by one)
TSN list file (``.txt``)  the list's content and, per listed frame folder,
                          its number of entries and mtime
========================  ==================================================

Size + mtime is the cheap stand-in for content on video trees (re-hashing
every video of UCF101 at each run would cost minutes); rewriting a file
in place changes its mtime.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

from .errors import DataError

__all__ = ["data_fingerprint", "FINGERPRINT_VERSION"]

#: Bumped when what is hashed changes (old ids then stop matching, deliberately).
FINGERPRINT_VERSION = 1

_TEXT_SUFFIXES = {".txt", ".lst", ".list", ".csv", ".json"}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _sha1_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _generated(source: str) -> dict[str, Any]:
    from .generate import DEFAULT_DATASET, GENERATOR_VERSION, _codec, _params, read_manifest

    root_arg = source.split(":", 1)[1] if ":" in source else ""
    manifest = read_manifest(Path(root_arg).expanduser()) if root_arg else None
    if manifest is not None:
        return {"kind": "generated", "version": manifest.get("version"), "params": manifest.get("params"),
                "codec": manifest.get("codec")}
    d = DEFAULT_DATASET
    params = _params(0, d["num_classes"], d["videos_per_class"], d["num_frames"], d["size"], d["fps"],
                     d["test_groups"])
    return {"kind": "generated", "version": GENERATOR_VERSION, "params": params, "codec": _codec()[0]}


def _npz(path: Path) -> dict[str, Any]:
    h = hashlib.sha1()
    try:
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\0{info.file_size}\0{info.CRC:08x}\n".encode())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(str(path), f"not a readable .npz feature file ({exc})") from None
    return {"kind": "npz", "size": path.stat().st_size, "members_sha1": h.hexdigest()}


def _is_frame_folder(names: list[str]) -> bool:
    return bool(names) and any(Path(n).suffix.lower() in _IMAGE_SUFFIXES for n in names)


def _folder(root: Path) -> dict[str, Any]:
    h = hashlib.sha1()
    files = folders = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        if here != root and _is_frame_folder(filenames) and not dirnames:
            st = here.stat()
            h.update(f"D {rel_dir}\0{len(filenames)}\0{st.st_mtime_ns}\n".encode())
            folders += 1
            continue
        for name in sorted(filenames):
            p = here / name
            rel = (p.relative_to(root)).as_posix()
            try:
                st = p.stat()
            except OSError as exc:
                h.update(f"F {rel}\0unreadable {exc.errno}\n".encode())
                continue
            if p.suffix.lower() in _TEXT_SUFFIXES and st.st_size <= 64 << 20:
                h.update(f"T {rel}\0{_sha1_file(p)}\n".encode())
            else:
                h.update(f"F {rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            files += 1
    return {"kind": "folder", "files": files, "frame_folders": folders, "sha1": h.hexdigest()}


def _tsn_list(path: Path) -> dict[str, Any]:
    h = hashlib.sha1(_sha1_file(path).encode())
    base = path.parent
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        rel = s.rsplit(maxsplit=2)[0]
        p = Path(rel) if os.path.isabs(rel) else base / rel
        try:
            st = p.stat()
            count = len(os.listdir(p)) if p.is_dir() else st.st_size
            h.update(f"{rel}\0{count}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{rel}\0missing\n".encode())
    return {"kind": "tsn_list", "sha1": h.hexdigest()}


def data_fingerprint(source: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Content fingerprint of a dataset source (see the module docstring for what is hashed).

    Args:
        source: A source string as :func:`evbench.harness.data.open_dataset`
            takes it (``"generated"``, ``"generated:<root>"``, a ``.npz``, a
            dataset folder, a TSN list file), or ``None`` (no data).

    Returns:
        A small JSON-able dict with ``"kind"``, ``"fingerprint_version"`` and
        the hashed identity; ``None`` for ``None``.  It never contains the
        path, so two paths to the same data give the same fingerprint.

    Raises:
        DataError: The source does not exist, or is a file of no dataset kind
            (names the path).
    """
    if source is None:
        return None
    text = str(source)
    if text == "generated" or text.startswith("generated:"):
        fp = _generated(text)
    else:
        path = Path(os.path.expanduser(text))
        if path.is_dir():
            fp = _folder(path)
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix == ".npz":
                fp = _npz(path)
            elif suffix in (".txt", ".lst", ".list"):
                fp = _tsn_list(path)
            else:
                raise DataError(str(path), "not a dataset: expected a folder, a .txt list file or a .npz file")
        else:
            raise DataError(str(path), "dataset path not found")
    return {**fp, "fingerprint_version": FINGERPRINT_VERSION}
