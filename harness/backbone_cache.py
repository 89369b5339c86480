"""Content-addressed cache of TSN-trained frame backbones, shared by every method that starts from one.

Every adaptive method in the papers starts from a *trained* backbone and then
learns only its own parts on top:

* AR-Net (Meng et al., ECCV 2020, §4.1; official ``scripts_train.sh``) and RSEE
  (Wang et al., BDMA 2025; official ``train_ucf101.sh``) from backbones trained
  as TSN classifiers (ImageNet-initialised, fine-tuned on the dataset), before
  the policy is learned;
* LiteEval (Wu et al., NeurIPS 2019, §4; official ``main.py``) from CNN
  features extracted once by trained networks;
* TLEE (Wang et al., IEEE IoT-J 2023; official ``main.py`` ``train_mode`` 1.1)
  and FrameExit (Ghodrati et al., CVPR 2021, §4.1) from a trained ResNet.

Here no ImageNet weights are downloaded, so each *distinct* lite backbone —
architecture × resolution set × dataset — is trained once as a TSN classifier
(Wang et al., ECCV 2016: shared backbone on ``frames`` segments, average of
frame logits, cross-entropy) and stored under a content key; every method's
:meth:`backbone_slots` names the entries it starts from, the runner loads them
(:func:`pretrain_backbones`) and the method then trains only the stages the
TSN training does not replace (``BackboneSlot.covers``).

**Key** (:meth:`BackboneCache.key`): SHA-1 of the train data's content
fingerprint (:func:`evbench.harness.data.data_fingerprint`), the train split,
the class names, the architecture and resolution set (:class:`BackboneSpec`,
including the entry it is initialised from, recursively), the recipe
(:class:`BackboneRecipe`: epochs, batch, learning rate, weight decay, frames,
input crop, seed) and :data:`CACHE_FORMAT`.  A changed recipe, dataset or
architecture is a new key; an entry is never overwritten in place.

**Where** (:func:`default_backbone_dir`): ``<cache root>/backbones`` — the
user cache (``$EVBENCH_CACHE`` or ``~/.cache/evbench``, or ``--cache-dir``)
next to the decoded-frame cache and the generated dataset, *not* the run
folder: every ``evbench run`` writes a new run folder, so a per-run cache would
never be reused by the next run, while the content key makes sharing across
runs safe.

**Concurrency**: training an entry holds ``fcntl.flock`` on
``<key>.lock`` (blocking: a second process wanting the same entry waits and
then loads it instead of training it again — the same flock mechanism as
:class:`evbench.harness.rundir.RunLock`, which does not wait); the weights are
written to a temporary file and ``os.replace``-d into ``<key>.pt``, then the
metadata ``<key>.json`` the same way, so a reader never sees half an entry.  An
unreadable entry is a miss (trained again, with a warning).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

__all__ = ["CACHE_FORMAT", "BackboneSpec", "BackboneRecipe", "BackboneSlot", "positional_slot", "BackboneCache", "TSNBackbone",
           "default_backbone_dir", "pretrain_backbones", "copy_backbone"]

#: Bumped when the stored payload or what the key hashes changes (old entries then stop matching).
CACHE_FORMAT = 1
_KINDS = ("tsn", "tsn_multibn")


@dataclass(frozen=True)
class BackboneSpec:
    """Which backbone: architecture, resolution set and how it is initialised.

    Attributes:
        arch: ``kind="tsn"``: a name in :data:`evbench.methods.backbones.BACKBONES`;
            ``"tsn_multibn"``: a key of :data:`evbench.methods.resnet_multibn.ARCHS`.
        resolutions: Sides in px it is trained at (one for ``tsn``; the BatchNorm
            banks, highest first, for ``tsn_multibn``).
        kind: ``"tsn"`` (torchvision backbone + linear TSN head) or
            ``"tsn_multibn"`` (RSEE's shared-convolution, per-resolution-BatchNorm
            ResNet with its D → D fc, loss summed over resolutions as RSEE's
            ``train_irte``).
        init_from: Entry whose weights initialise this one (then trained for
            the recipe's ``finetune_epochs`` instead of ``epochs``), or ``None``
            (random initialisation).  A ``tsn_multibn`` entry initialised from a
            ``tsn`` one copies its convolutions, copies its BatchNorms into every
            bank and starts the D → D fc at the identity — the official RSEE
            starts from one ImageNet ResNet-50 the same way.
    """

    arch: str
    resolutions: tuple[int, ...]
    kind: str = "tsn"
    init_from: BackboneSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"backbone kind must be one of {', '.join(_KINDS)}; got {self.kind!r}")
        object.__setattr__(self, "resolutions", tuple(int(r) for r in self.resolutions))
        if not self.resolutions or (self.kind == "tsn" and len(self.resolutions) != 1):
            raise ValueError(f"{self.kind} backbone needs {'one resolution' if self.kind == 'tsn' else 'resolutions'}"
                             f", got {self.resolutions}")

    @property
    def name(self) -> str:
        """Short name, e.g. ``resnet10@112`` or ``multibn-resnet10@112,84,56``."""
        res = ",".join(str(r) for r in self.resolutions)
        return f"{'multibn-' if self.kind == 'tsn_multibn' else ''}{self.arch}@{res}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON), the parent nested."""
        return {"arch": self.arch, "resolutions": list(self.resolutions), "kind": self.kind,
                "init_from": self.init_from.to_dict() if self.init_from is not None else None}


@dataclass(frozen=True)
class BackboneRecipe:
    """How a cached backbone is trained (part of its key).

    Attributes:
        epochs: Epochs from random initialisation.
        finetune_epochs: Epochs of an entry initialised from another (``init_from``).
        batch_size: Clips per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        frames: TSN segments per training clip (one random frame each).
        input_size: Side in px of the crops the trainer reads; lower
            resolutions are derived from them with antialiased bilinear
            resizing, as the methods' own encoders do.
        seed: Seed of initialisation, order and TSN offsets.
        dropout: Dropout before the TSN head (TSN uses 0.8 on ImageNet-size data).
        lr_schedule: ``"constant"`` or ``"cos"`` (:func:`evbench.harness.training.epoch_lr`).
        finetune_lr: Adam learning rate of an entry initialised from another (0: ``lr``).
    """

    epochs: int = 4
    finetune_epochs: int = 1
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    frames: int = 8
    input_size: int = 112
    seed: int = 0
    dropout: float = 0.5
    lr_schedule: str = "constant"
    finetune_lr: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON); ``lr_schedule`` and ``finetune_lr`` only when set (older keys unchanged)."""
        out = asdict(self)
        if out["lr_schedule"] == "constant":
            del out["lr_schedule"]
        if not out["finetune_lr"]:
            del out["finetune_lr"]
        return out


@dataclass
class BackboneSlot:
    """Where a method takes a cached backbone.

    Attributes:
        name: The method's module path it fills (e.g. ``"branches.1.backbone"``).
        spec: The entry.
        load: ``load(backbone, head)`` copies the trained backbone module
            (torchvision model with its classifier replaced by ``nn.Identity``, or
            a :class:`~evbench.methods.resnet_multibn.MultiBNResNet`) and its TSN
            head ``nn.Linear(D, C)`` into the method.
        covers: Method stages the TSN training replaces (skipped by the training loop).
    """

    name: str
    spec: BackboneSpec
    load: Callable[[nn.Module, nn.Module], None]
    covers: tuple[str, ...] = ()


def positional_slot(name: str, arch: str, resolution: int, dst: nn.Module) -> BackboneSlot:
    """A slot whose load copies the cached backbone into ``dst`` by position (:func:`copy_backbone`).

    For methods that hold a single-resolution backbone under their own module
    names (TLEE's and DynGrid's ``stages``, FrameExit's ``backbone``); the TSN
    head is not used.

    Args:
        name: The method's module path ``dst`` sits at.
        arch: Backbone architecture (the method's ``backbone_arch``).
        resolution: Input side, px.
        dst: The method's module receiving the weights.
    """

    def load(net: nn.Module, head: nn.Module) -> None:
        copy_backbone(net, dst)

    return BackboneSlot(name, BackboneSpec(arch, (resolution,)), load)


def copy_backbone(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst`` by position (same architecture, other wrapping).

    For methods that hold the backbone's modules under other names (TLEE's and
    DynGrid's ``resnet_stages`` split, FrameExit's ``nn.Sequential`` of the
    children): tensors are matched in module-registration order and must agree
    in shape.

    Raises:
        ValueError: Different tensor counts or shapes (names both sides).
    """
    a = list(src.state_dict().items())
    b = list(dst.state_dict().items())
    a = [(k, v) for k, v in a if not k.endswith("num_batches_tracked")]
    b = [(k, v) for k, v in b if not k.endswith("num_batches_tracked")]
    if len(a) != len(b):
        raise ValueError(f"backbone has {len(a)} tensors, destination {len(b)}")
    new = {}
    for (ka, va), (kb, vb) in zip(a, b, strict=True):
        if va.shape != vb.shape:
            raise ValueError(f"backbone tensor {ka} {tuple(va.shape)} does not fit {kb} {tuple(vb.shape)}")
        new[kb] = va.detach().clone()
    missing = dst.load_state_dict(new, strict=False)
    if missing.unexpected_keys or [k for k in missing.missing_keys if not k.endswith("num_batches_tracked")]:
        raise ValueError(f"copy_backbone: {missing}")


def default_backbone_dir(cache_root: str | os.PathLike[str] | None = None) -> Path:
    """``<cache root>/backbones`` (``cache_root`` or :func:`evbench.harness.data.cache.default_cache_root`)."""
    from evbench.harness.data.cache import default_cache_root

    root = Path(cache_root).expanduser() if cache_root else default_cache_root()
    return root / "backbones"


class TSNBackbone(nn.Module):
    """The network a cache entry trains: backbone + dropout + linear head, TSN average consensus.

    Duck-types what :func:`evbench.harness.training.train_method` needs (a
    ``card`` with one stage ``"tsn"``, ``stage_parameters``, ``stage_epochs``,
    ``training_loss``), so the entry trains through the repository's one
    training loop (seeded, deterministic, bad clips skipped).

    Args:
        spec: The entry.
        num_classes: C.
        recipe: Frames per clip, dropout, epochs.

    Shapes:
        ``training_loss(x, y)``: ``x`` ``(B, T, 3, S, S)`` normalised crops, ``y`` ``(B,)``.
    """

    def __init__(self, spec: BackboneSpec, num_classes: int, recipe: BackboneRecipe) -> None:
        super().__init__()
        from evbench.methods.backbones import build_backbone, feature_dim
        from evbench.methods.resnet_multibn import MultiBNResNet

        self.spec, self.recipe = spec, recipe
        if spec.kind == "tsn":
            self.backbone = build_backbone(spec.arch)
            dim = feature_dim(spec.arch)
        else:
            self.backbone = MultiBNResNet(spec.arch, spec.resolutions, fc_dim=None)
            dim = self.backbone.out_dim
        self.dropout = nn.Dropout(recipe.dropout)
        self.head = nn.Linear(dim, num_classes)
        self.card = SimpleNamespace(name=f"backbone {spec.name}", stages=("tsn",))

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """Every parameter (one stage)."""
        return list(self.parameters())

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """The whole budget."""
        return epochs

    def _video_logits(self, x: torch.Tensor, r: int, bank: int | None) -> torch.Tensor:
        from evbench.methods.common import downscale, evenly_spaced

        b, t = x.shape[:2]
        idx = evenly_spaced(t, self.recipe.frames)
        frames = downscale(x[:, idx].flatten(0, 1), r, "antialias")
        feats = self.backbone(frames) if bank is None else self.backbone(frames, bank, downsample_bank=None)
        return self.head(self.dropout(feats)).view(b, len(idx), -1).mean(1)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """TSN cross-entropy (``tsn``) or its sum over resolutions (``tsn_multibn``, RSEE ``train_irte``)."""
        loss = x.new_zeros(())
        logs: dict[str, float] = {}
        for bank, r in enumerate(self.spec.resolutions):
            logits = self._video_logits(x, r, bank if self.spec.kind == "tsn_multibn" else None)
            ce = nn.functional.cross_entropy(logits, y)
            loss = loss + ce
            logs[f"ce_{r}"] = ce.item()
            logs[f"train_top1_{r}"] = (logits.argmax(1) == y).float().mean().item()
        return loss, logs

    def init_from(self, parent: TSNBackbone) -> None:
        """Initialise from a trained parent entry (see :attr:`BackboneSpec.init_from`).

        Raises:
            ValueError: Architectures that do not match.
        """
        if self.spec.kind == parent.spec.kind:
            self.backbone.load_state_dict(parent.backbone.state_dict())
        elif self.spec.kind == "tsn_multibn" and parent.spec.kind == "tsn":
            src = parent.backbone.state_dict()
            own = self.backbone.state_dict()
            new = {}
            for k, v in own.items():
                if k.startswith("fc."):
                    continue
                parts = k.split(".")  # "<module>.bn<i>.<tensor>" -> "<module>.<tensor>"
                bank = parts[-2] if len(parts) >= 2 else ""
                if bank.startswith("bn") and bank[2:].isdigit():
                    parts = parts[:-2] + parts[-1:]
                plain = ".".join(parts)
                if plain not in src or src[plain].shape != v.shape:
                    raise ValueError(f"cannot initialise {self.spec.name} from {parent.spec.name}: no {plain}")
                new[k] = src[plain].clone()
            with torch.no_grad():
                nn.init.eye_(self.backbone.fc.weight)
                nn.init.zeros_(self.backbone.fc.bias)
            self.backbone.load_state_dict(new, strict=False)
        else:
            raise ValueError(f"cannot initialise {self.spec.name} from {parent.spec.name}")
        self.head.load_state_dict(parent.head.state_dict())


@dataclass
class _Entry:
    """A loaded cache entry."""

    key: str
    net: TSNBackbone
    meta: dict[str, Any]
    reused: bool
    train_s: float = 0.0


class BackboneCache:
    """The folder of cached backbones (see the module docstring).

    Args:
        root: Folder (created on first write); ``None``: :func:`default_backbone_dir`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_backbone_dir()

    # -- identity ---------------------------------------------------------------------------------------
    @staticmethod
    def key(spec: BackboneSpec, recipe: BackboneRecipe, *, data: dict[str, Any] | None, split: str,
            class_names: Sequence[str]) -> str:
        """The entry's content key (16 hex digits; see the module docstring for what it hashes)."""
        from evbench.harness.suites import stable_id

        return stable_id({"format": CACHE_FORMAT, "spec": spec.to_dict(), "recipe": recipe.to_dict(),
                          "data": data, "split": split, "classes": list(class_names)}, length=16)

    def path(self, key: str) -> Path:
        """``<root>/<key>.pt``."""
        return self.root / f"{key}.pt"

    # -- inspection -----------------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """Metadata of every complete entry, oldest first: ``key, name, arch, kind, resolutions, dataset,
        recipe, size_bytes, created, train_seconds, ...`` (from the ``.json`` sidecars; no tensor is read)."""
        out = []
        if not self.root.is_dir():
            return out
        for meta_path in sorted(self.root.glob("*.json")):
            pt = meta_path.with_suffix(".pt")
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                size = pt.stat().st_size
            except (OSError, ValueError):
                continue
            out.append({**meta, "size_bytes": size})
        return sorted(out, key=lambda m: str(m.get("created", "")))

    def clear(self) -> int:
        """Delete every entry (and stale temporary/lock files); returns the number of entries removed."""
        n = len(self.entries())
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.suffix in (".pt", ".json", ".lock", ".tmp") or p.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        p.unlink()
            with contextlib.suppress(OSError):
                self.root.rmdir()
        return n

    # -- use ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # no flock (Windows): atomic renames still keep entries whole
            yield
            return
        fd = os.open(self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self, key: str, spec: BackboneSpec, num_classes: int, recipe: BackboneRecipe) -> _Entry | None:
        pt, meta_path = self.path(key), self.root / f"{key}.json"
        if not (pt.is_file() and meta_path.is_file()):
            return None
        try:
            payload = torch.load(pt, map_location="cpu", weights_only=True)
            net = TSNBackbone(spec, num_classes, recipe)
            net.backbone.load_state_dict(payload["backbone"])
            net.head.load_state_dict(payload["head"])
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 — any unreadable entry is a miss, trained again
            warnings.warn(f"backbone cache entry {pt} unreadable ({type(exc).__name__}: {exc}); training it again",
                          stacklevel=2)
            return None
        net.eval()
        return _Entry(key, net, meta, reused=True)

    def get_or_train(self, spec: BackboneSpec, recipe: BackboneRecipe, *, open_train: Callable[[], Any],
                     data: dict[str, Any] | None, data_source: str, split: str, class_names: Sequence[str],
                     device: str = "cpu", progress: bool = False) -> _Entry:
        """The trained entry for ``spec`` on this data: loaded if cached, else trained now and stored.

        Args:
            spec: The backbone.
            recipe: Its training recipe.
            open_train: Returns the train split sampled at ``recipe.frames`` ×
                ``recipe.input_size`` (called only when something must be trained).
            data: Content fingerprint of the train data.
            data_source: The source string (recorded, not hashed).
            split: Train split name.
            class_names: Class order of the head.
            device: Where to train.
            progress: Progress bars.

        Returns:
            The entry (``reused`` False when this call trained it; ``train_s``
            the seconds spent training it and any parent it needed).

        Raises:
            RuntimeError: No training clip could be loaded.
        """
        key = self.key(spec, recipe, data=data, split=split, class_names=class_names)
        hit = self._load(key, spec, len(class_names), recipe)
        if hit is not None:
            return hit
        with self._locked(key):
            hit = self._load(key, spec, len(class_names), recipe)  # trained meanwhile by another process
            if hit is not None:
                return hit
            return self._train(key, spec, recipe, open_train=open_train, data=data, data_source=data_source,
                               split=split, class_names=class_names, device=device, progress=progress)

    def _train(self, key: str, spec: BackboneSpec, recipe: BackboneRecipe, *, open_train: Callable[[], Any],
               data: dict[str, Any] | None, data_source: str, split: str, class_names: Sequence[str],
               device: str, progress: bool) -> _Entry:
        from evbench.harness.training import TrainSpec, seed_everything, train_method

        parent_s = 0.0
        parent = None
        if spec.init_from is not None:
            parent = self.get_or_train(spec.init_from, recipe, open_train=open_train, data=data,
                                       data_source=data_source, split=split, class_names=class_names,
                                       device=device, progress=progress)
            parent_s = parent.train_s
        seed_everything(recipe.seed)
        net = TSNBackbone(spec, len(class_names), recipe)
        if parent is not None:
            net.init_from(parent.net)
        epochs = recipe.finetune_epochs if parent is not None else recipe.epochs
        ds = open_train()
        lr = recipe.finetune_lr if parent is not None and recipe.finetune_lr else recipe.lr
        tspec = TrainSpec(epochs=epochs, batch_size=recipe.batch_size, lr=lr,
                          weight_decay=recipe.weight_decay, seed=recipe.seed, lr_schedule=recipe.lr_schedule)
        report = train_method(net, ds, tspec, device=device, progress=progress)
        net.to("cpu").eval()
        meta = {
            "format": CACHE_FORMAT, "key": key, "name": spec.name, "arch": spec.arch, "kind": spec.kind,
            "resolutions": list(spec.resolutions), "spec": spec.to_dict(), "recipe": recipe.to_dict(),
            "epochs_trained": epochs, "parent": (self.key(spec.init_from, recipe, data=data, split=split,
                                                          class_names=class_names) if spec.init_from else None),
            "dataset": data_source, "dataset_fingerprint": data, "split": split, "class_names": list(class_names),
            "train_clips": len(ds), "train_seconds": report.seconds, "train_threads": report.threads,
            "last_epoch": report.logs[-1] if report.logs else None, "skipped_clips": len(report.skipped),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._write(key, net, meta)
        return _Entry(key, net, meta, reused=False, train_s=report.seconds + parent_s)

    def _write(self, key: str, net: TSNBackbone, meta: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tag = f".{os.getpid()}.tmp"
        pt, meta_path = self.path(key), self.root / f"{key}.json"
        tmp_pt, tmp_meta = pt.with_name(pt.name + tag), meta_path.with_name(meta_path.name + tag)
        torch.save({"format": f"evbench-backbone-{CACHE_FORMAT}",
                    "backbone": {k: v.detach().cpu() for k, v in net.backbone.state_dict().items()},
                    "head": {k: v.detach().cpu() for k, v in net.head.state_dict().items()}}, tmp_pt)
        os.replace(tmp_pt, pt)
        tmp_meta.write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp_meta, meta_path)  # the sidecar last: an entry is listed only when complete


@dataclass
class PretrainInfo:
    """What :func:`pretrain_backbones` did for one method (stored in the row and the method checkpoint).

    Attributes:
        keys: Slot name → cache key.
        names: Slot name → entry name (``resnet10@112``).
        reused: Every entry came from the cache (none trained for this call).
        train_s: Seconds spent training entries in this call.
        covers: Method stages replaced by the TSN training.
    """

    keys: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    reused: bool = True
    train_s: float = 0.0
    covers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {"keys": self.keys, "names": self.names, "reused": self.reused, "train_s": self.train_s,
                "covers": list(self.covers)}


def pretrain_backbones(method: nn.Module, cache: BackboneCache, recipe: BackboneRecipe, *,
                       open_train: Callable[[], Any], data: dict[str, Any] | None, data_source: str, split: str,
                       class_names: Sequence[str], device: str = "cpu", progress: bool = False) -> PretrainInfo | None:
    """Load (training where missing) every cached backbone ``method`` starts from.

    The harness knows no method by name: a method opts in by defining
    ``backbone_slots() -> list[BackboneSlot]`` (pixel configurations of the
    registered methods do; feature configurations return ``[]``).  After
    loading, ``method.backbone_pretrained`` is set to the slot names, which the
    methods' own stages read (e.g. to keep a loaded backbone frozen).

    Returns:
        :class:`PretrainInfo`, or ``None`` when the method has no slot.
    """
    slots_fn = getattr(method, "backbone_slots", None)
    slots = list(slots_fn()) if callable(slots_fn) else []
    if not slots:
        return None
    info = PretrainInfo()
    covers: list[str] = []
    for slot in slots:
        entry = cache.get_or_train(slot.spec, recipe, open_train=open_train, data=data, data_source=data_source,
                                   split=split, class_names=class_names, device=device, progress=progress)
        slot.load(entry.net.backbone, entry.net.head)
        info.keys[slot.name] = entry.key
        info.names[slot.name] = slot.spec.name
        info.reused = info.reused and entry.reused
        info.train_s += entry.train_s
        covers += [c for c in slot.covers if c not in covers]
    info.covers = tuple(covers)
    method.backbone_pretrained = tuple(s.name for s in slots)
    return info


def format_entries(entries: Sequence[dict[str, Any]]) -> str:
    """The ``evbench cache list`` table: key, name, dataset, recipe, size, created."""
    if not entries:
        return "no cached backbones"
    lines = [f"{'key':16}  {'backbone':28} {'dataset':10} {'recipe':34} {'size':>8}  created"]
    for m in entries:
        r = m.get("recipe", {})
        sched = f"-{r['lr_schedule']}" if r.get("lr_schedule") else ""
        recipe = (f"{m.get('epochs_trained')}ep b{r.get('batch_size')} lr{r.get('lr')}{sched} T{r.get('frames')} "
                  f"@{r.get('input_size')} s{r.get('seed')}")
        data = m.get("dataset_fingerprint") or {}
        ds = str(m.get("dataset", ""))[:10] if data.get("kind") != "generated" else "generated"
        size = f"{m.get('size_bytes', 0) / 2**20:.1f} MiB"
        lines.append(f"{m.get('key', ''):16}  {m.get('name', ''):28} {ds:10} {recipe:34} {size:>8}  "
                     f"{m.get('created', '')}")
    return "\n".join(lines)
