"""Shared pieces of the early-exit family: RSEE, TLEE, FrameExit and the dynamic-inference grid.

Built once here and used by :mod:`evbench.methods.rsee`, :mod:`evbench.methods.tlee`,
:mod:`evbench.methods.frameexit` and :mod:`evbench.methods.dyngrid`:

* **Frame orders** — :func:`coarse_to_fine_order` (FrameExit, Ghodrati et al.
  CVPR 2021, Algorithm 1: the middle frame, then both ends, then recursive
  bisection, so that every prefix of the order covers the whole clip; the
  official ``[5, 0, 9, 2, 7, 4, 6, 3, 8, 1]`` for 10 frames is reproduced
  verbatim), :func:`temporal_order` (RSEE: frames in time order).
* **Confidence criteria** — :func:`max_softmax`, :func:`confident`
  (``max softmax > threshold`` or ``>=``, both exist in the official code).
* **Feature reuse** — :func:`running_max`: element-wise max of the current
  feature and the accumulated one (FrameExit/TLEE ``MaxPooling``).
* **Gates** — :class:`GateModule` (TLEE ``model/tlee.py`` ``GateModule``: a
  shared ``fc1`` D → 32 on [current, previous], concatenated, ``fc2`` 64 → 1)
  and :class:`ExitingGate` (FrameExit ``model/adaptive_models.py``
  ``ExitingGate``: 1×1 conv D → 128 → 64 with BatchNorm on each, concatenated,
  linear 128 → 1); :func:`gate_exit` turns a gate logit into an exit decision.
* **Exits inside a backbone** — :class:`MixedPoolBranch` (TLEE
  ``model/branch_model.py`` ``Branch``: mixed max/avg pooling with a learnable
  α, 1×1 channel-reduction convolutions, fc to the feature width),
  :func:`resnet_stages` (a ResNet split into separately costed stages), and
  :class:`MultiLayerPerceptron` (the shared ``mlp``: Linear + BatchNorm1d + ReLU).
* **Realised savings** — :class:`ActiveSet` keeps only the samples that have
  not exited (``index_select``), :class:`TraceRecorder` writes the per-sample
  :class:`~evbench.harness.api.TraceStep` lists, and :func:`resize_frames` derives the
  lower resolutions (pre-processing, never counted) with the method's downscaling
  setting (antialiased bilinear, or nearest for official AR-Net/RSEE weights).
* **Honest FPS** — :func:`honest_fps` separates frames *processed* per second
  from frames *covered* per second (TLEE's ``time_test.py`` reports the latter
  as the former).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from evbench.harness.api import CostEntry, TraceStep
from evbench.methods.common import downscale
from torch import nn

__all__ = [
    "FRAMEEXIT_ORDER_10",
    "coarse_to_fine_order",
    "temporal_order",
    "max_softmax",
    "confident",
    "running_max",
    "gate_exit",
    "GateModule",
    "ExitingGate",
    "MixedPoolBranch",
    "MultiLayerPerceptron",
    "resnet_stages",
    "stage_shapes",
    "ActiveSet",
    "TraceRecorder",
    "resize_frames",
    "online_shift",
    "pair_entry",
    "honest_fps",
    "check_clip",
    "check_frames",
    "select_rows",
]

#: FrameExit / TLEE processing order for 10 frames (FrameExit ``inference.py``; TLEE ``input_order10``).
FRAMEEXIT_ORDER_10: tuple[int, ...] = (5, 0, 9, 2, 7, 4, 6, 3, 8, 1)


# --------------------------------------------------------------------------- frame orders


def coarse_to_fine_order(total: int) -> list[int]:
    """Coarse-to-fine frame order: every prefix covers the whole clip.

    FrameExit (CVPR 2021) §3, Algorithm 1: start at the middle frame, then the
    two ends, then repeatedly bisect the gaps between frames already taken.
    For ``total == 10`` this returns the official order
    :data:`FRAMEEXIT_ORDER_10` verbatim (FrameExit ``inference.py``, TLEE
    ``input_order10``); other lengths use the bisection rule (breadth first,
    earlier gaps first, the midpoint rounded up).

    Args:
        total: Number of frames T (≥ 1).

    Returns:
        A permutation of ``range(total)``.

    Raises:
        ValueError: If ``total < 1``.
    """
    if total < 1:
        raise ValueError(f"coarse_to_fine_order needs total >= 1, got {total}")
    if total == 10:
        return list(FRAMEEXIT_ORDER_10)
    if total <= 2:
        return list(range(total))[::-1] if total == 2 else [0]
    mid = total // 2
    order = [mid, 0, total - 1]
    taken = set(order)
    gaps = [(0, mid), (mid, total - 1)]
    while gaps:
        nxt = []
        for lo, hi in gaps:
            if hi - lo < 2:
                continue
            m = (lo + hi + 1) // 2
            if m not in taken:
                order.append(m)
                taken.add(m)
            nxt += [(lo, m), (m, hi)]
        gaps = nxt
    order += [i for i in range(total) if i not in taken]  # never reached; keeps it a permutation
    return order


def temporal_order(total: int) -> list[int]:
    """Frames in time order ``0 … T−1`` (RSEE ``forward_irte``)."""
    return list(range(total))


# --------------------------------------------------------------------------- confidence, reuse, gates


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Largest class probability of ``(N, C)`` logits → ``(N,)`` in [0, 1]."""
    return torch.softmax(logits.float(), dim=-1).amax(dim=-1)


def confident(logits: torch.Tensor, threshold: float, *, strict: bool) -> torch.Tensor:
    """Exit criterion on the maximum softmax probability.

    Args:
        logits: ``(N, C)``.
        threshold: Probability threshold; a value above 1 never fires.
        strict: ``True`` for ``max softmax > threshold`` (FrameExit/TLEE
            ``threshold_selection``), ``False`` for ``>=`` (RSEE ``--TE``).

    Returns:
        ``(N,)`` bool.
    """
    conf = max_softmax(logits)
    return conf > threshold if strict else conf >= threshold


def running_max(prev: torch.Tensor | None, cur: torch.Tensor) -> torch.Tensor:
    """Feature reuse: element-wise max of ``cur`` and the accumulated ``prev`` (both ``(N, D)``).

    FrameExit/TLEE ``MaxPooling``; ``prev is None`` (first step) returns ``cur``.
    Not counted in GMACs (a comparison, no multiply-accumulate).
    """
    return cur if prev is None else torch.maximum(cur, prev)


def gate_exit(logit: torch.Tensor, threshold: float, *, invert: bool = False, strict: bool = False) -> torch.Tensor:
    """Exit decision of a gate.

    Args:
        logit: ``(N, 1)`` or ``(N,)`` gate logit.
        threshold: Exit when the exit probability passes it; ≥ 1.01 never exits.
        invert: The logit scores *continuing* (FrameExit's released gates exit
            when their sigmoid is below 0.5, ``gate_selection``); the exit
            probability is then ``sigmoid(−logit)``.
        strict: ``>`` instead of ``>=`` (FrameExit: ``sigmoid(−l) > 0.5`` is
            exactly its ``sigmoid(l) < 0.5``; TLEE: ``sigmoid(l) >= 0.5``).

    Returns:
        ``(N,)`` bool.
    """
    logit = logit.reshape(logit.shape[0])
    p = torch.sigmoid(-logit if invert else logit)
    return p > threshold if strict else p >= threshold


class GateModule(nn.Module):
    """TLEE temporal gate (official ``model/tlee.py`` ``GateModule``, config ``useGateFunc: gm``).

    ``fc1`` (D → hidden, shared) on the current and on the previous accumulated
    feature, concatenated, ``fc2`` (2·hidden → 1).

    Args:
        dim: Feature width D (4096 in the paper).
        hidden: Width of ``fc1`` (32 in the paper).

    Shapes:
        ``forward(cur, prev)``: ``(N, D)``, ``(N, D)`` → logit ``(N, 1)``;
        exit when ``sigmoid(logit) >= 0.5`` (:func:`gate_exit`).
    """

    def __init__(self, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(2 * hidden, 1)
        self.dim = dim

    def forward(self, cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Gate logit ``(N, 1)`` of ``cur`` and ``prev`` (``(N, D)`` each)."""
        return self.fc2(torch.cat([self.fc1(cur.flatten(1)), self.fc1(prev.flatten(1))], dim=1))


class ExitingGate(nn.Module):
    """FrameExit gate (official ``model/adaptive_models.py`` ``ExitingGate``), also TLEE's ``eg`` option.

    1×1 conv D → 128 → 64, each followed by BatchNorm and ReLU, applied to the
    current and to the previous accumulated feature (viewed as ``(N, D, 1, 1)``),
    flattened, concatenated and mapped by ``linear`` (128 → 1).  The released
    FrameExit checkpoints exit when ``sigmoid(logit) < 0.5`` (the gate scores
    *continuing*): use :func:`gate_exit` with ``invert=True``.

    Args:
        dim: Feature width D (4096).

    Shapes:
        ``forward(cur, prev)``: ``(N, D)``, ``(N, D)`` → logit ``(N, 1)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, 128, kernel_size=1, bias=True)
        self.conv2 = nn.Conv2d(128, 64, kernel_size=1, bias=True)
        self.bn1 = nn.BatchNorm2d(128)
        self.bn2 = nn.BatchNorm2d(64)
        self.linear = nn.Linear(128, 1)
        self.dim = dim

    def _branch(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1, 1, 1)
        z = torch.relu(self.bn1(self.conv1(z)))
        z = torch.relu(self.bn2(self.conv2(z)))
        return z.flatten(1)

    def forward(self, cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Gate logit ``(N, 1)`` of ``cur`` and ``prev`` (``(N, D)`` each)."""
        return self.linear(torch.cat([self._branch(cur), self._branch(prev)], dim=1))


def pair_entry(module: str, dim: int, role: str = "policy") -> CostEntry:
    """Counted cost entry of a two-input gate ``module(cur, prev)`` on ``(1, dim)`` inputs."""

    def inputs() -> tuple[Any, ...]:
        return (torch.zeros(1, dim), torch.zeros(1, dim))

    return CostEntry(module, (dim,), role=role, make_inputs=inputs)


# --------------------------------------------------------------------------- exits inside a backbone


class MultiLayerPerceptron(nn.Module):
    """``Linear → BatchNorm1d → ReLU`` (FrameExit/TLEE ``MultiLayerPerceptron``; keys ``layers.0/1``).

    Args:
        in_dim: Input width.
        out_dim: Output width (4096 in both papers).

    Shapes:
        ``(N, in_dim)`` → ``(N, out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU())
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_dim)`` → ``(N, out_dim)``."""
        return self.layers(x)


class MixedPoolBranch(nn.Module):
    """TLEE exit branch (official ``model/branch_model.py`` ``Branch``).

    ``α·maxpool(x) + (1 − α)·avgpool(x)`` with a learnable scalar α (pooling
    kernel = stride = ``map_size // (map_size // 4)``), then ``crm_num`` 1×1
    channel-reduction convolutions with ReLU (C → C/2^s → C/2^(s+1) → …, s =
    ``branch_scale``), flattened, then ``fc1`` to ``out_dim``.  For ResNet-50
    at 224 px (paper): layer2 (512, 28, 28) → 7×7 pool → 512→64→32→16 → fc
    784 → 2048; layer3 (1024, 14, 14) → 3×3 → 1024→128→64→32 → fc 288 → 2048.

    Args:
        channels: C of the stage output.
        map_size: Spatial side of the stage output at the method's resolution.
        out_dim: Width of the branch feature (the backbone's pooled width).
        crm_num: Number of channel-reduction convolutions (3 in the paper).
        branch_scale: s, the first reduction is 2^s (3 in the paper).

    Shapes:
        ``(N, C, S, S)`` → ``(N, out_dim)``.

    Raises:
        ValueError: If the channel reduction leaves no channel.
    """

    def __init__(self, channels: int, map_size: int, out_dim: int, *, crm_num: int = 3, branch_scale: int = 3) -> None:
        super().__init__()
        kernel = max(1, map_size // 4) if map_size >= 4 else 1
        pool = max(1, map_size // kernel)
        side = map_size // pool
        self.max_pool = nn.MaxPool2d(kernel_size=pool)
        self.avg_pool = nn.AvgPool2d(kernel_size=pool)
        self.alpha = nn.Parameter(torch.rand(1))
        self.crm = nn.Sequential()
        c_in, scale = channels, 2 ** branch_scale
        for i in range(crm_num):
            c_out = channels // scale
            if c_out < 1:
                raise ValueError(f"branch on {channels} channels: reduction 2^{int(math.log2(scale))} leaves no channel")
            self.crm.add_module(f"conv{i}", nn.Conv2d(c_in, c_out, kernel_size=1))
            self.crm.add_module(f"relu{i}", nn.ReLU(inplace=True))
            c_in, scale = c_out, scale * 2
        self.fc1 = nn.Linear(side * side * c_in, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` stage output → ``(N, out_dim)`` branch feature."""
        mixed = self.alpha * self.max_pool(x) + (1 - self.alpha) * self.avg_pool(x)
        return self.fc1(self.crm(mixed).flatten(1))


def resnet_stages(net: nn.Module, cuts: Sequence[str] = ("layer2", "layer3"), *, pool_last: bool = True) -> nn.ModuleList:
    """Split a torchvision-style ResNet into separately costed stages.

    Stage 0 is ``conv1, bn1, relu, maxpool, layer1 … cuts[0]``; each further
    stage runs up to the next cut; the last runs to ``layer4`` and, with
    ``pool_last``, ``avgpool`` and flatten.  The stage modules *own* the
    layers (no duplicate parameters): stage 0's children are indexed like
    torchvision's ``children()`` (``0`` = conv1, ``1`` = bn1, ``4`` = layer1,
    ``5`` = layer2), which is what TLEE's ``baseModel.{i}`` keys map onto.

    Args:
        net: A ResNet with ``conv1, bn1, relu, maxpool, layer1..4, avgpool``.
        cuts: Layer names after which a stage ends (ascending).
        pool_last: Append ``avgpool`` and ``Flatten`` to the last stage.

    Returns:
        ``nn.ModuleList`` of ``nn.Sequential`` stages.

    Raises:
        ValueError: Unknown or unordered cut.
    """
    names = ["layer1", "layer2", "layer3", "layer4"]
    idx = [names.index(c) for c in cuts]
    if idx != sorted(idx) or (idx and idx[-1] == 3):
        raise ValueError(f"cuts must be ascending layer names before layer4, got {list(cuts)}")
    stages = nn.ModuleList()
    first = [net.conv1, net.bn1, net.relu, net.maxpool] + [getattr(net, n) for n in names[: (idx[0] + 1 if idx else 4)]]
    stages.append(nn.Sequential(*first))
    bounds = [i + 1 for i in idx] + [4]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        mods = [getattr(net, n) for n in names[lo:hi]]
        stages.append(nn.Sequential(*mods))
    if pool_last:
        if not idx:
            stages[0].append(net.avgpool)
            stages[0].append(nn.Flatten(1))
        else:
            stages[-1].append(net.avgpool)
            stages[-1].append(nn.Flatten(1))
    return stages


@torch.no_grad()
def stage_shapes(stages: Iterable[nn.Module], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per-sample input shape of every stage when the first gets ``input_shape`` (then the last output)."""
    shapes = [tuple(input_shape)]
    x = torch.zeros(1, *input_shape)
    modes = []
    for s in stages:
        modes.append(s.training)
        s.eval()
        x = s(x)
        shapes.append(tuple(x.shape[1:]))
    for s, m in zip(stages, modes, strict=True):
        s.train(m)
    return shapes


# --------------------------------------------------------------------------- realised savings


class ActiveSet:
    """The samples of a batch that have not exited yet (original batch indices).

    Every step runs only on the active samples; per-sample states are kept
    compact (row ``i`` belongs to ``ids[i]``) and shrunk with the ``keep``
    positions :meth:`retire` returns.

    Args:
        batch: B.
        device: Device of the index tensor.
    """

    def __init__(self, batch: int, device: torch.device | str = "cpu") -> None:
        self.ids = torch.arange(batch, device=device)
        self._list: list[int] | None = None

    @property
    def n(self) -> int:
        """Number of active samples."""
        return int(self.ids.numel())

    def __bool__(self) -> bool:
        return self.n > 0

    def tolist(self) -> list[int]:
        """Active original indices as Python ints (cached)."""
        if self._list is None:
            self._list = self.ids.tolist()
        return self._list

    def take(self, full: torch.Tensor) -> torch.Tensor:
        """Rows of a full-batch tensor ``(B, ...)`` belonging to the active samples → ``(n, ...)``."""
        if self.n == full.shape[0]:
            return full
        return full.index_select(0, self.ids)

    def retire(self, exit_mask: torch.Tensor) -> tuple[list[int], torch.Tensor | None]:
        """Remove the samples where ``exit_mask`` (``(n,)`` bool) is set.

        Returns:
            ``(exited, keep)``: exited original indices, and the positions
            (``(n_left,)`` long) to ``index_select`` compact states with —
            ``None`` when nobody exited.
        """
        if not bool(exit_mask.any()):
            return [], None
        exited = self.ids[exit_mask].tolist()
        keep = (~exit_mask).nonzero().reshape(-1)
        self.ids = self.ids.index_select(0, keep)
        self._list = None
        return exited, keep

    def retire_at(self, positions: Sequence[int]) -> torch.Tensor | None:
        """Remove the samples at ``positions`` (Python ints, positions in the active set; no host sync).

        The host-side form of :meth:`retire` for methods that already hold their
        exit decisions as Python values.

        Returns:
            The positions ``(n_left,)`` long to ``index_select`` compact states
            with, or ``None`` when nobody exited.
        """
        if not positions:
            return None
        gone = set(positions)
        ids = self.tolist()
        left = [j for j in range(len(ids)) if j not in gone]
        keep = torch.tensor(left, dtype=torch.long, device=self.ids.device)
        self.ids = self.ids.index_select(0, keep)
        self._list = [ids[j] for j in left]
        return keep


def select_rows(keep: torch.Tensor | None, *tensors: Any) -> tuple[Any, ...]:
    """``index_select(0, keep)`` on each tensor (``None`` and non-tensors passed through)."""
    if keep is None:
        return tensors
    return tuple(t.index_select(0, keep) if isinstance(t, torch.Tensor) else t for t in tensors)


class TraceRecorder:
    """Per-sample :class:`~evbench.harness.api.TraceStep` lists, in execution order.

    Args:
        batch: B.
    """

    def __init__(self, batch: int) -> None:
        self.steps: list[list[TraceStep]] = [[] for _ in range(batch)]

    def add(self, ids: Iterable[int], frame: int, module: str, input_shape: Sequence[int], role: str) -> None:
        """Append one step for every sample in ``ids`` (one frozen :class:`TraceStep` shared by them)."""
        step = TraceStep(frame, module, tuple(int(s) for s in input_shape), role=role)
        for i in ids:
            self.steps[i].append(step)

    def add_steps(self, ids: Iterable[int], steps: Sequence[TraceStep]) -> None:
        """Append ready-made steps (e.g. :meth:`RecurrentPolicy.steps`) for every sample in ``ids``."""
        for i in ids:
            self.steps[i].extend(steps)

    def mark_exit(self, ids: Iterable[int], name: str) -> None:
        """Mark the last step of every sample in ``ids`` as the exit point ``name``."""
        for i in ids:
            if self.steps[i]:
                self.steps[i][-1] = dataclasses.replace(self.steps[i][-1], exit=name)


def resize_frames(frames: torch.Tensor, size: int, mode: str = "antialias") -> torch.Tensor:
    """``(N, 3, H, W)`` → ``(N, 3, size, size)`` (pre-processing, not counted).

    ``mode`` is the method's per-configuration downscaling setting
    (:data:`evbench.methods.common.DOWNSCALE_MODES`): ``"antialias"`` (bilinear,
    antialiased; evbench-trained weights) or ``"nearest"`` (the official AR-Net/RSEE
    pipelines, ``ops/dataset.py`` ``rescale_proc``).

    Raises:
        ValueError: Unknown ``mode``.
    """
    return downscale(frames, size, mode)


def online_shift(x: torch.Tensor, cache: torch.Tensor | None, fold_div: int = 8) -> torch.Tensor:
    """Online (one-directional) temporal shift (Lin et al., TSM, ICCV 2019, online variant).

    The first ``C // fold_div`` channels of ``x`` are replaced by those of
    ``cache`` — the same tensor of the frame processed *before* this one — so
    information only flows from frames already processed; zeros when there is
    none (TSM's zero padding).  A copy: no multiply-accumulate.

    Args:
        x: ``(N, C, ...)`` input of a stage for the current frame.
        cache: ``(N, C, ...)`` the previous processed frame's input, or ``None``.
        fold_div: 1/fraction of channels shifted (8 in TSM).

    Returns:
        The shifted tensor (a new tensor; ``x`` is unchanged).
    """
    fold = x.shape[1] // fold_div
    if fold == 0:
        return x
    out = x.clone()
    if cache is None:
        out[:, :fold] = 0
    else:
        out[:, :fold] = cache[:, :fold]
    return out


# --------------------------------------------------------------------------- honest FPS


def honest_fps(latency_s: float, frames_processed: float, frames_total: float) -> dict[str, float]:
    """Frames processed per second and frames covered per second, separately.

    TLEE's official ``time_test.py`` prints ``FPS = 10 / mean video time``: every
    one of the clip's 10 frames counts as processed even when the video exited
    after the first, and the CUDA timing has no synchronisation.  Here:

    * ``fps_processed`` = frames a backbone actually ran on / second;
    * ``fps_covered`` = frames of the clip (processed or skipped by the exit) / second.

    Args:
        latency_s: Mean wall time per clip, s (synchronised).
        frames_processed: Mean frames processed per clip.
        frames_total: Frames per clip T.

    Returns:
        ``{"fps_processed", "fps_covered", "inflation"}`` (inflation =
        covered / processed ≥ 1).

    Raises:
        ValueError: If ``latency_s <= 0``.
    """
    if latency_s <= 0:
        raise ValueError(f"latency must be positive, got {latency_s}")
    processed = frames_processed / latency_s
    covered = frames_total / latency_s
    return {"fps_processed": processed, "fps_covered": covered,
            "inflation": covered / processed if processed else float("inf")}


def check_clip(x: torch.Tensor, name: str, input_kind: str, feature_dim: int = 0,
               frames: int | None = None) -> tuple[int, int]:
    """Validate a ``forward`` input's layout (and T when the method is built for one) and return ``(B, T)``.

    Raises:
        ValueError: A layout :func:`check_frames` refuses, or T ≠ ``frames``
            (the message names the method ``name``).
    """
    check_frames(x, input_kind, feature_dim if input_kind == "features" else 0)
    b, t_total = int(x.shape[0]), int(x.shape[1])
    if frames is not None and t_total != frames:
        raise ValueError(f"{name} was built for {frames} frames, got {t_total}")
    return b, t_total


def check_frames(x: torch.Tensor, input_kind: str, feature_dim: int = 0) -> None:
    """Validate the input layout of ``forward``.

    Raises:
        ValueError: ``(B, T, 3, H, W)`` expected for pixels, ``(B, T, D)`` for features.
    """
    if input_kind == "features":
        if x.dim() != 3 or (feature_dim and x.shape[-1] != feature_dim):
            raise ValueError(f"expected features (B, T, {feature_dim or 'D'}), got {tuple(x.shape)}")
    elif x.dim() != 5 or x.shape[2] != 3:
        raise ValueError(f"expected frames (B, T, 3, H, W), got {tuple(x.shape)}")

