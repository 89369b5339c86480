"""ResNet with shared convolutions and one BatchNorm per input resolution (RSEE's backbone).

RSEE (Wang et al., BDMA 2025; official ``ops/parallel_resnet.py`` and
``ops/parallel.py``) runs one ResNet-50 at 224/168/112/84 px: every
convolution and the fc are shared, every BatchNorm is private to a resolution
(``BatchNorm2dParallel`` with children ``bn0 … bn{K−1}``, selected at inference
by the chosen resolution, ``spec=chosen_reso``).  The official network also
keeps its torchvision ``fc`` as a 2048 → 2048 feature projection
(``parallel_resnet50(num_classes=2048)``); the classifier ``new_fc`` lives in
the method.

Here the torchvision :class:`~torchvision.models.resnet.ResNet` is reused with
``norm_layer`` = :class:`MultiBatchNorm2d`, so the state_dict keys are the
official ones minus ``ModuleParallel``'s ``.module`` (``conv1.weight``,
``bn1.bn0.weight``, ``layer1.0.downsample.1.bn2.running_mean``, ``fc.weight``).
The bank is picked from the input's side (``resolutions.index(x.shape[-1])``),
so one counted module serves every resolution: its cost-table keys are
``("backbone", (3, r, r))``.

**The downsample BatchNorms.**  Officially, training feeds every resolution at
once (a list through ``ModuleParallel``), so each BatchNorm — the four in the
``downsample`` shortcuts of ``layer1 … layer4`` included — normalises resolution
``i`` with bank ``i``.  At test (``forward_irte`` with ``spec=chosen_reso``)
``Bottleneck.forward`` passes ``spec`` to ``bn1/bn2/bn3`` but calls
``self.downsample(x)`` without it, and ``BatchNorm2dParallel`` without ``spec``
enumerates its input list — a list of one tensor — so the four downsample
BatchNorms always use bank 0, the 224 px bank.  :attr:`MultiBNResNet.downsample_bank`
reproduces that (``0``) or, when ``None`` (default), the same bank is used
everywhere, as the official training does; ``forward(..., downsample_bank=)``
overrides it per call.  Being an attribute, the mode is baked into an exported
graph (ONNX backend) like the bank itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from evbench.methods.backbones import to_channels_last
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["MultiBatchNorm2d", "MultiBNResNet", "ARCHS"]

#: Architectures: name -> (block, layers, pooled width).
ARCHS: dict[str, tuple[type[nn.Module], list[int], int]] = {
    "resnet50": (Bottleneck, [3, 4, 6, 3], 2048),
    "resnet18": (BasicBlock, [2, 2, 2, 2], 512),
    "resnet10": (BasicBlock, [1, 1, 1, 1], 512),
}


class MultiBatchNorm2d(nn.Module):
    """``num_banks`` private BatchNorm2d layers ``bn0 … bn{K−1}`` (official ``BatchNorm2dParallel``).

    Args:
        num_features: Channels C.
        num_banks: K, one per resolution.

    Shapes:
        ``(N, C, H, W)`` → same; normalised by bank :attr:`bank`.
    """

    def __init__(self, num_features: int, num_banks: int) -> None:
        super().__init__()
        for i in range(num_banks):
            setattr(self, f"bn{i}", nn.BatchNorm2d(num_features))
        self.num_banks = num_banks
        self.bank = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise with bank :attr:`bank`."""
        return self._modules[f"bn{self.bank}"](x)  # type: ignore[misc]


class MultiBNResNet(ResNet):
    """torchvision ResNet with shared convolutions and per-resolution BatchNorm banks.

    Args:
        arch: Key of :data:`ARCHS` (``resnet50`` in the paper, ``resnet10`` lite).
        resolutions: Input sides in px, bank ``i`` ↔ ``resolutions[i]``
            (RSEE: 224, 168, 112, 84).
        fc_dim: Width of the trailing fc (RSEE keeps a D → D fc; 0 = identity).

    Shapes:
        ``forward(x)``: ``(N, 3, r, r)`` with ``r`` in ``resolutions`` →
        ``(N, fc_dim or D)``.

    Raises:
        KeyError: Unknown ``arch``.
    """

    def __init__(self, arch: str, resolutions: Sequence[int], fc_dim: int | None = None) -> None:
        if arch not in ARCHS:
            raise KeyError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
        block, layers, dim = ARCHS[arch]
        super().__init__(block, layers, num_classes=fc_dim or dim,
                         norm_layer=partial(MultiBatchNorm2d, num_banks=len(resolutions)))
        if fc_dim == 0:
            self.fc = nn.Identity()
        self.resolutions = tuple(int(r) for r in resolutions)
        self.dim = dim
        self.out_dim = fc_dim or dim
        self._banks = [m for m in self.modules() if isinstance(m, MultiBatchNorm2d)]
        #: Bank of the downsample BatchNorms at inference (None: the chosen bank; 0: the official test path).
        self.downsample_bank: int | None = None
        #: The BatchNorms of the ``downsample`` shortcuts (``layer{1..4}.0.downsample.1``).
        self._downsample_banks = [m for name, m in self.named_modules()
                                  if isinstance(m, MultiBatchNorm2d) and ".downsample." in f".{name}."]
        #: ``(bank, downsample_bank)`` last applied by :meth:`set_bank` (every bank starts at 0).
        self._selected: tuple[int, int | None] = (0, None)
        to_channels_last(self)  # as every evbench backbone (methods/backbones.py)

    def set_bank(self, bank: int, downsample_bank: int | None = None) -> None:
        """Select BatchNorm bank ``bank`` in every layer (``downsample_bank`` in the downsample shortcuts).

        Args:
            bank: Bank of every BatchNorm.
            downsample_bank: Bank of the four downsample BatchNorms instead
                (``0`` reproduces the official test path); ``None`` = ``bank``.

        Raises:
            IndexError: Bank out of range.
        """
        for b in (bank, downsample_bank):
            if b is not None and not 0 <= b < len(self.resolutions):
                raise IndexError(f"bank {b} out of range for resolutions {self.resolutions}")
        if self._selected == (bank, downsample_bank):
            return  # already selected: switch once per resolution change, not per module per call
        for m in self._banks:
            m.bank = bank
        if downsample_bank is not None:
            for m in self._downsample_banks:
                m.bank = downsample_bank
        self._selected = (bank, downsample_bank)

    def bank_of(self, side: int) -> int:
        """Bank index of an input side in px.

        Raises:
            ValueError: ``side`` is not one of :attr:`resolutions`.
        """
        try:
            return self.resolutions.index(int(side))
        except ValueError:
            raise ValueError(f"input side {side} px is not one of the resolutions {self.resolutions}") from None

    def forward(self, x: torch.Tensor, bank: int | None = None, *,  # type: ignore[override]
                downsample_bank: int | None | str = "default") -> torch.Tensor:
        """``(N, 3, r, r)`` → ``(N, out_dim)`` using bank ``bank`` (default: the bank of ``r``).

        ``downsample_bank`` selects the bank of the downsample BatchNorms (see the
        module docstring): ``"default"`` = :attr:`downsample_bank`, ``None`` = the
        same bank as the rest (training), an int = that bank.
        """
        ds = self.downsample_bank if downsample_bank == "default" else downsample_bank
        self.set_bank(self.bank_of(x.shape[-1]) if bank is None else bank, ds)
        return super().forward(x)
