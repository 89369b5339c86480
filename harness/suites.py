"""Suites (TOML, in ``bench/suites/``) and the cells they expand to.

A suite is data::

    name = "default"
    description = "..."
    dataset = "generated"            # test data; train data too unless [data].train is set
    [train]                           # omitted: evaluate untrained weights (no accuracy is reported)
    epochs = 6
    [measure]
    min_queries = 64
    [[methods]]
    name = "uniform"
    config = "lite"
    overrides = [{backbone = "resnet10"}, {backbone = "mobilenet_v2_035"}]
    knobs = "sweep"                   # the card's knob sweeps, or a list of knob dicts

Each method × override × knob setting is one :class:`Cell`: a pure,
serialisable spec whose id is a hash of its canonical JSON, so a resumed run
recognises finished cells.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Cell", "Suite", "load_suite", "list_suites", "SuiteError", "canonical_json", "stable_id"]


class SuiteError(ValueError):
    """A malformed suite file or setting (the message names the file and key)."""


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for ids."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_id(obj: Any, length: int = 12) -> str:
    """First ``length`` hex digits of the SHA-1 of ``canonical_json(obj)``."""
    return hashlib.sha1(canonical_json(obj).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Cell:
    """One measurement: a method build × knob setting × dataset × device.

    Attributes:
        suite: Suite name.
        method: Registered method name.
        config: Configuration name.
        overrides: Builder overrides on top of the configuration.
        knobs: Inference operating point.
        train_data: Dataset source for training (``None``: no training).
        train_split: Split of ``train_data`` used for training.
        test_data: Dataset source for evaluation.
        test_split: Split of ``test_data`` evaluated.
        train: Training hyper-parameters (``TrainSpec`` fields) or ``None``.
        measure: Measurement settings (latency queries etc.).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        backend: Execution backend (``"torch"`` or ``"onnxruntime"``).
    """

    suite: str
    method: str
    config: str
    overrides: dict[str, Any]
    knobs: dict[str, Any]
    train_data: str | None
    train_split: str
    test_data: str
    test_split: str
    train: dict[str, Any] | None
    measure: dict[str, Any]
    device: str = "cpu"
    backend: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return {
            "suite": self.suite, "method": self.method, "config": self.config, "overrides": self.overrides,
            "knobs": self.knobs, "train_data": self.train_data, "train_split": self.train_split,
            "test_data": self.test_data, "test_split": self.test_split, "train": self.train,
            "measure": self.measure, "device": self.device, "backend": self.backend,
        }

    @property
    def id(self) -> str:
        """Stable id: hash of the whole spec."""
        return stable_id(self.to_dict())

    @property
    def build_id(self) -> str:
        """Id of the trained model this cell needs (shared by its knob siblings)."""
        return stable_id({k: self.to_dict()[k] for k in ("method", "config", "overrides", "train_data", "train_split", "train")})

    @property
    def label(self) -> str:
        """Short display name: method, config, overrides, knobs, and the backend when not torch eager."""
        parts = [self.method, self.config]
        parts += [f"{k}={v}" for k, v in sorted(self.overrides.items())]
        parts += [f"{k}={v}" for k, v in sorted(self.knobs.items())]
        if self.backend != "torch":
            parts.append(f"[{self.backend}]")
        return " ".join(parts)


@dataclass
class Suite:
    """A parsed suite.

    Attributes:
        name: Suite name.
        description: What it measures.
        path: File it came from.
        dataset: Default dataset source.
        train_dataset: Training source when different from ``dataset``.
        train_split / test_split: Splits used.
        train: Training settings or ``None``.
        measure: Measurement settings.
        methods: ``[[methods]]`` tables.
        default_config: Configuration of methods added with ``--methods``
            (``lite``; ``features`` for the feature track).
    """

    name: str
    description: str
    path: str
    dataset: str
    train_dataset: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    train: dict[str, Any] | None = None
    measure: dict[str, Any] = field(default_factory=dict)
    methods: list[dict[str, Any]] = field(default_factory=list)
    default_config: str = "lite"

    def cells(self, *, data: str | None = None, train_data: str | None = None, device: str = "cpu",
              methods: list[str] | None = None, knob_sweeps: dict[str, list[dict[str, Any]]] | None = None,
              test_split: str | None = None, backend: str = "torch") -> list[Cell]:
        """Expand to cells.

        Args:
            data: Replace the suite's test dataset.
            train_data: Replace the training dataset.
            device: Device of every cell.
            backend: Execution backend of every cell: ``"torch"`` (eager) or
                ``"onnxruntime"`` (costed modules in ONNX Runtime, see
                :mod:`evbench.harness.onnx_backend`).
            methods: Keep only these method names (others dropped); names not in
                the suite are added with their ``lite`` configuration.
            knob_sweeps: Method name -> knob settings, for ``knobs = "sweep"``
                (from the method card).
            test_split: Replace the split evaluated.

        Raises:
            SuiteError: A method entry without ``name``.
        """
        test = data or self.dataset
        train_src = train_data or self.train_dataset or (test if self.train is not None else None)
        entries = list(self.methods)
        if methods:
            known = {m.get("name") for m in entries}
            entries = [m for m in entries if m.get("name") in methods]
            entries += [{"name": n, "config": self.default_config, "knobs": "sweep"} for n in methods if n not in known]
        out: list[Cell] = []
        for m in entries:
            if "name" not in m:
                raise SuiteError(f"{self.path}: a [[methods]] entry has no name")
            overrides = m.get("overrides") or [{}]
            knob_spec = m.get("knobs", [{}])
            if knob_spec == "sweep":
                knob_list = (knob_sweeps or {}).get(m["name"], [{}]) or [{}]
            else:
                knob_list = knob_spec or [{}]
            for ov, kn in itertools.product(overrides, knob_list):
                out.append(Cell(
                    suite=self.name, method=m["name"], config=m.get("config", self.default_config), overrides=dict(ov),
                    knobs=dict(kn), train_data=train_src if self.train is not None else None,
                    train_split=self.train_split, test_data=test, test_split=test_split or self.test_split,
                    train=dict(self.train) if self.train is not None else None, measure=dict(self.measure),
                    device=device, backend=backend,
                ))
        return out


def _suite_dir() -> Path:
    return Path(str(resources.files("bench") / "suites"))


def list_suites() -> list[str]:
    """Names of the suites shipped in ``bench/suites``."""
    return sorted(p.stem for p in _suite_dir().glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    """Load a suite by name (``bench/suites/<name>.toml``) or path.

    Raises:
        SuiteError: Unknown suite, unparsable TOML or a missing key (names the file).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = _suite_dir() / f"{name_or_path}.toml"
    if not path.exists():
        raise SuiteError(f"unknown suite {name_or_path!r} (no {path}); suites: {', '.join(list_suites())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    for key in ("name", "dataset", "methods"):
        if key not in data:
            raise SuiteError(f"{path}: missing key {key!r}")
    data_tbl = data.get("data", {})
    return Suite(
        name=data["name"], description=data.get("description", ""), path=str(path), dataset=data["dataset"],
        train_dataset=data_tbl.get("train"), train_split=data_tbl.get("train_split", "train"),
        test_split=data_tbl.get("test_split", "test"), train=data.get("train"), measure=data.get("measure", {}),
        methods=list(data["methods"]), default_config=data.get("default_config", "lite"),
    )
