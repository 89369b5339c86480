"""Random-normal clips held in memory: the dataset of ``evbench profile`` without ``--data``.

Costs, decisions and latency need inputs of the right shape, not real
videos; this dataset gives seeded random-normal clips of a method's input
shape so the profile is a one-cell run through the same
:func:`evbench.harness.measure.measure_cell` as every other cell.  It is
labelled synthetic and its labels are placeholders, so accuracy is never
reported on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .datasets import ClipDataset
from .records import Entry, Sample

__all__ = ["RandomClips"]


class RandomClips(ClipDataset):
    """``n`` seeded random-normal clips of shape ``(T, ...)``, in memory.

    The clips are drawn in order from one ``torch.Generator`` seeded with
    ``seed`` (the same draws ``evbench profile`` has always used), so a clip's
    content does not depend on how many are asked for after it.

    Args:
        shape: Shape of one clip without the batch axis: ``(T, 3, S, S)``
            pixels or ``(T, D)`` features.
        n: Number of clips (>= 1).
        seed: Generator seed.
        num_classes: Width of the placeholder label space (labels are
            ``i % num_classes``; they carry no information).

    Attributes:
        name: ``"random"``.  ``synthetic`` is True and ``note`` says what the
            inputs are; ``input_kind`` follows the shape (``"features"`` for
            2-D clips).

    Raises:
        ValueError: ``n < 1``, ``num_classes < 1`` or an empty shape.
    """

    def __init__(self, shape: Sequence[int], n: int, *, seed: int = 0, num_classes: int = 2) -> None:
        shape = tuple(int(s) for s in shape)
        if n < 1 or num_classes < 1 or not shape:
            raise ValueError(f"RandomClips needs n >= 1, num_classes >= 1 and a clip shape; got {n}, "
                             f"{num_classes}, {shape}")
        g = torch.Generator().manual_seed(seed)
        self._clips = [torch.randn((1, *shape), generator=g)[0] for _ in range(n)]
        entries = [Entry(id=f"random-{i:04d}", path=f"<random clip {i}>", label=i % num_classes,
                         num_frames=shape[0]) for i in range(n)]
        super().__init__(
            name="random", class_names=[f"placeholder-{c}" for c in range(num_classes)], entries=entries,
            synthetic=True,
            note=(f"SYNTHETIC: {n} random-normal clips {[1, *shape]} (torch generator seed {seed}); "
                  "decisions of adaptive methods are input-dependent; labels are placeholders, accuracy not measured"),
        )
        self.input_kind = "features" if len(shape) == 2 else "pixels"
        self.shape = shape
        self.seed = seed

    def _load(self, i: int, entry: Entry) -> Sample:
        return Sample(id=entry.id, label=entry.label, x=self._clips[i], path=entry.path,
                      frame_indices=list(range(self.shape[0])))
