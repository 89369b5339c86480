"""Frozen-backbone outputs of the test clips, kept on disk between the evaluations of one run's cells.

A method's operating points (AR-Net's biases, TLEE's and FrameExit's
thresholds, LiteEval's gate biases, k of the uniform frames) are separate
cells with the same trained weights: each evaluates the same test clips, and
its cached TSN backbones compute the same frames again — as do the uniform
baselines that share one backbone.  :class:`EvalMemoStore` serves those
repeats: around the evaluation of a cell it installs a
:class:`~evbench.harness.frozen_memo.FrozenMemo` on the method's backbone
slots (:func:`~evbench.harness.frozen_memo.slot_modules`), preloaded with
what earlier cells stored for modules of the same weights, and afterwards
writes the new outputs back.

* **Same numbers.** The memo's rules hold (eval mode, no gradients, CPU
  input, nothing counting the ops), so the counted evaluation batches
  (``FlopCounterMode``) always compute.  Outputs are keyed per module by
  :func:`~evbench.harness.frozen_memo.weights_digest` (class, layer settings,
  every parameter and buffer) and per sample by the digest of its bytes: a
  served output is what that module computes for that frame, up to the last
  float bits a different batch composition gives (oneDNN's kernels depend on
  the batch size, so evaluation batches differ in those bits anyway).
* **Not resident while timing.** Between evaluations the outputs live in
  files (``<digest>.pt`` in the run directory's ``.eval-memo``, removed when
  the run ends; a killed run's files stay valid for ``--resume``, being
  content-addressed), not in memory: the memo is freed, and the heap handed back
  (:func:`evbench.harness.memory.release_free_heap`), before the cell's
  timed phase, so ``peak_rss_mb`` does not carry it.  Latency, the breakdown
  and the upper bound never go through it.

The row's ``eval_memo`` says what it served.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from evbench.harness.frozen_memo import FrozenMemo, StoredOutputs, slot_modules, weights_digest
from torch import nn

__all__ = ["EvalMemoStore", "EVAL_MEMO_MAX_MIB", "EVAL_MEMO_DIR"]

#: Cap of the outputs one cell's evaluation holds in memory, MiB (the rest computes as usual).
EVAL_MEMO_MAX_MIB = 1024

#: The store's folder inside a run directory (removed when the run ends; a killed run's is still valid).
EVAL_MEMO_DIR = ".eval-memo"


class EvalMemoStore:
    """Serve a run's evaluations the frozen-backbone outputs earlier cells computed (module docstring).

    Picklable (it holds a folder name only): a parallel executor's workers
    read and write the same folder (writes are atomic), and the run removes
    it when it ends (:meth:`close`).

    Args:
        root: Folder of the stored outputs, the store's own (made on the first write; :meth:`close` removes it).
        max_mib: Cap of the outputs one evaluation holds in memory, MiB.
    """

    def __init__(self, root: str | os.PathLike, *, max_mib: float = EVAL_MEMO_MAX_MIB) -> None:
        self.root = Path(root)
        self.max_mib = max_mib

    @contextlib.contextmanager
    def serving(self, method: nn.Module) -> Iterator[FrozenMemo | None]:
        """Inside the block, ``method``'s backbone slots are served from (and store into) the memo.

        On exit the new outputs are written to the store's folder and the
        memory is freed.  A method without backbone slots, or one whose slots
        are not torch modules (an ONNX Runtime copy), runs as usual.

        Yields:
            The :class:`FrozenMemo` (its ``stats`` say what it served), or ``None`` when nothing is memoised.
        """
        modules = {k: m for k, m in slot_modules(method).items() if isinstance(m, nn.Module)}
        if not modules:
            yield None
            return
        digests = {name: weights_digest(m) for name, m in modules.items()}
        memo = FrozenMemo(modules, max_mib=self.max_mib)
        memo.preload({name: dump for name, d in digests.items() if (dump := self._load(d)) is not None})
        with memo:
            yield memo
            for name, dump in memo.export().items():
                if dump.added:
                    self._save(digests[name], dump)

    def _path(self, digest: str) -> Path:
        return self.root / f"{digest}.pt"

    def _load(self, digest: str) -> StoredOutputs | None:
        path = self._path(digest)
        if not path.exists():
            return None
        try:
            data = torch.load(path, weights_only=True)
            outputs = dict(zip(data["keys"], data["rows"], strict=True))
            return StoredOutputs(outputs, bool(data["channels_last"]))
        except Exception:  # noqa: BLE001 — a damaged file is a miss: the module computes, the file is rewritten
            return None

    def _save(self, digest: str, dump: StoredOutputs) -> None:
        path = self._path(digest)
        data: dict[str, Any] = {"keys": list(dump.outputs), "rows": list(dump.outputs.values()),
                                "channels_last": dump.channels_last}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            os.close(fd)
        except OSError:
            return  # read-only or full disk: the next cell computes
        try:
            torch.save(data, tmp)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
        except OSError:
            Path(tmp).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the stored outputs and the store's folder."""
        shutil.rmtree(self.root, ignore_errors=True)
