"""The minimal device agent: replays an ONNX bundle's schedules on a board.

``evbench_agent.py`` (this package) is a standalone script — Python 3.6
syntax, needing only numpy, onnxruntime and the standard library plus
:mod:`evbench.harness.devices.jetson` — for devices whose Python cannot run evbench
itself (a Jetson Nano on JetPack 4.x has Python 3.6). :func:`write_agent`
copies both files into an exported bundle; on the board::

    python3 evbench_agent.py BUNDLE_DIR --out RESULTS_DIR

appends result rows to ``RESULTS_DIR/results.jsonl`` that
:func:`evbench.harness.results.load` and ``evbench report`` read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["AGENT_FILES", "AGENT_SCRIPT", "write_agent"]

_HERE = Path(__file__).resolve().parent

#: The agent script's file name inside a bundle.
AGENT_SCRIPT = "evbench_agent.py"

#: Files copied into a bundle: name in the bundle -> source path in this tree.
AGENT_FILES: dict[str, Path] = {
    AGENT_SCRIPT: _HERE / "evbench_agent.py",
    "jetson.py": _HERE.parent / "devices" / "jetson.py",
}


def write_agent(bundle_dir: str | os.PathLike[str]) -> Path:
    """Copy the device agent (``evbench_agent.py`` and ``jetson.py``) into ``bundle_dir``.

    Args:
        bundle_dir: An exported bundle directory (holds ``manifest.json``).

    Returns:
        Path of the copied ``evbench_agent.py``.

    Raises:
        FileNotFoundError: ``bundle_dir`` is not a directory.
    """
    dest = Path(bundle_dir)
    if not dest.is_dir():
        raise FileNotFoundError(f"bundle directory {dest} does not exist")
    for name, src in AGENT_FILES.items():
        shutil.copyfile(src, dest / name)
    script = dest / AGENT_SCRIPT
    script.chmod(0o755)
    return script
