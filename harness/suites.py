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

Every table is validated when the suite is loaded: an unknown key, a missing
``name`` or a bad value (``[measure]`` against
:class:`~evbench.harness.settings.MeasureSettings`, ``[train]`` against
:class:`~evbench.harness.training.TrainSpec`, ``[[methods]]`` against the
registry) is a :class:`SuiteError` naming the file, the table, the key and what
is allowed.

Each method × override × knob setting is one :class:`Cell`: a pure,
serialisable spec.  Its id hashes the fully resolved measurement settings
(defaults merged in), the method build (name, configuration, overrides), the
knobs, the device and backend, and the *content* fingerprint of its data
(:func:`evbench.harness.data.data_fingerprint`) — not the path string — so a
resumed run recognises finished cells whichever path names the data, and
changed data at the same path is measured (and trained) anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from evbench.harness.settings import MeasureSettings, SettingsError

__all__ = ["Cell", "Suite", "load_suite", "list_suites", "validate_suite", "SuiteError", "canonical_json",
           "stable_id"]


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
        measure: Resolved measurement settings (a mapping given here is
            validated and resolved with the defaults).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        backend: Execution backend (``"torch"`` or ``"onnxruntime"``).
        train_fingerprint: Content fingerprint of ``train_data``
            (:func:`evbench.harness.data.data_fingerprint`); computed here when
            not given.
        test_fingerprint: Content fingerprint of ``test_data``; likewise.

    Raises:
        SuiteError: Bad measurement settings.
        evbench.harness.data.DataError: A data source that does not exist
            (when a fingerprint has to be computed).
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
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    device: str = "cpu"
    backend: str = "torch"
    train_fingerprint: dict[str, Any] | None = None
    test_fingerprint: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Resolve ``measure`` and compute missing data fingerprints."""
        from evbench.harness.data import data_fingerprint

        if not isinstance(self.measure, MeasureSettings):
            try:
                settings = MeasureSettings.from_mapping(self.measure, source=f"suite {self.suite} [measure]")
            except SettingsError as exc:
                raise SuiteError(str(exc)) from None
            object.__setattr__(self, "measure", settings)
        if self.train_fingerprint is None and self.train_data is not None:
            object.__setattr__(self, "train_fingerprint", data_fingerprint(self.train_data))
        if self.test_fingerprint is None and self.test_data is not None:
            object.__setattr__(self, "test_fingerprint", data_fingerprint(self.test_data))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict of every field (``Cell(**cell.to_dict())`` rebuilds the cell)."""
        return {
            "suite": self.suite, "method": self.method, "config": self.config, "overrides": self.overrides,
            "knobs": self.knobs, "train_data": self.train_data, "train_split": self.train_split,
            "test_data": self.test_data, "test_split": self.test_split, "train": self.train,
            "measure": self.measure.to_dict(), "device": self.device, "backend": self.backend,
            "train_fingerprint": self.train_fingerprint, "test_fingerprint": self.test_fingerprint,
        }

    def identity(self) -> dict[str, Any]:
        """What the cell id hashes: the spec with each data path replaced by its content fingerprint."""
        d = self.to_dict()
        d.pop("train_data")
        d.pop("test_data")
        return d

    @property
    def id(self) -> str:
        """Stable id: hash of :meth:`identity` (resolved settings, build, knobs, data content, device, backend)."""
        return stable_id(self.identity())

    @property
    def build_id(self) -> str:
        """Id of the trained model this cell needs (shared by its knob siblings and backends/devices).

        Hashes the method build, the training settings, the train split and the
        train data's content fingerprint, so a changed train file never reuses
        a checkpoint trained on the old one.
        """
        d = self.to_dict()
        return stable_id({k: d[k] for k in ("method", "config", "overrides", "train_fingerprint", "train_split",
                                            "train")})

    @property
    def label(self) -> str:
        """Short display name: method, config, overrides, knobs, the backend when not torch eager, the precision when not fp32."""
        parts = [self.method, self.config]
        parts += [f"{k}={v}" for k, v in sorted(self.overrides.items())]
        parts += [f"{k}={v}" for k, v in sorted(self.knobs.items())]
        if self.backend != "torch":
            parts.append(f"[{self.backend}]")
        if self.measure.precision != "fp32":
            parts.append(f"[{self.measure.precision}]")
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

    def settings(self, overrides: Mapping[str, Any] | None = None) -> MeasureSettings:
        """The suite's resolved :class:`~evbench.harness.settings.MeasureSettings`, then ``overrides`` on top.

        Args:
            overrides: Settings given on the command line (``evbench run
                --measure KEY=VALUE``), validated the same way.

        Raises:
            SuiteError: A bad ``[measure]`` key/value (names the file) or a bad override (names ``--measure``).
        """
        try:
            settings = MeasureSettings.from_mapping(self.measure, source=f"{self.path} [measure]")
            if overrides:
                settings = settings.replace(source="--measure", **dict(overrides))
        except SettingsError as exc:
            raise SuiteError(str(exc)) from None
        return settings

    def cells(self, *, data: str | None = None, train_data: str | None = None, device: str = "cpu",
              methods: list[str] | None = None, knob_sweeps: dict[str, list[dict[str, Any]]] | None = None,
              test_split: str | None = None, backend: str = "torch",
              measure: Mapping[str, Any] | None = None) -> list[Cell]:
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
            measure: Measurement settings overriding the suite's ``[measure]``
                (see :meth:`settings`).

        Raises:
            SuiteError: A method entry without ``name``; bad measurement settings; a
                data source that does not exist or is no dataset (names it).
        """
        from evbench.harness.data import DataError, data_fingerprint

        settings = self.settings(measure)
        test = data or self.dataset
        train_src = train_data or self.train_dataset or (test if self.train is not None else None)
        train_src = train_src if self.train is not None else None
        try:
            test_fp = data_fingerprint(test)
            train_fp = (test_fp if train_src == test else data_fingerprint(train_src)) if train_src is not None else None
        except DataError as exc:  # a missing dataset is bad input: one line, before any cell runs
            raise SuiteError(f"dataset {exc}") from None
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
            if isinstance(overrides, Mapping):
                overrides = [overrides]
            knob_spec = m.get("knobs", [{}])
            if knob_spec == "sweep":
                knob_list = (knob_sweeps or {}).get(m["name"], [{}]) or [{}]
            elif isinstance(knob_spec, Mapping):
                knob_list = [knob_spec]
            else:
                knob_list = knob_spec or [{}]
            for ov, kn in itertools.product(overrides, knob_list):
                out.append(Cell(
                    suite=self.name, method=m["name"], config=m.get("config", self.default_config), overrides=dict(ov),
                    knobs=dict(kn), train_data=train_src, train_split=self.train_split, test_data=test,
                    test_split=test_split or self.test_split,
                    train=dict(self.train) if self.train is not None else None, measure=settings,
                    device=device, backend=backend, train_fingerprint=train_fp, test_fingerprint=test_fp,
                ))
        return out


def _suite_dir() -> Path:
    return Path(str(resources.files("evbench.bench") / "suites"))


def list_suites() -> list[str]:
    """Names of the suites shipped in ``bench/suites``."""
    return sorted(p.stem for p in _suite_dir().glob("*.toml"))


_TOP_KEYS = {"name": "str", "description": "str", "dataset": "str", "default_config": "str", "data": "table",
             "train": "table", "measure": "table", "methods": "tables"}
_DATA_KEYS = {"train": "str", "train_split": "split", "test_split": "split"}
_METHOD_KEYS = ("name", "config", "overrides", "knobs")
_SPLITS = ("train", "test", "all")


def _unknown(where: str, key: str, allowed: Any) -> SuiteError:
    import difflib

    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SuiteError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _check_train(path: Path, table: Any) -> None:
    """``[train]`` against :class:`~evbench.harness.training.TrainSpec`'s fields (types from their defaults)."""
    from evbench.harness.training import TrainSpec

    where = f"{path} [train]"
    specs = {f.name: f for f in dataclasses.fields(TrainSpec)}
    for key, value in table.items():
        if key not in specs:
            raise _unknown(where, key, specs)
        default = specs[key].default
        if isinstance(default, bool):
            ok, what = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "seed" else 1)
            what = "an integer >= " + ("0" if key == "seed" else "1")
        elif isinstance(default, float):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and value >= 0 and (value > 0 or key != "lr"))
            what = "a finite number > 0" if key == "lr" else "a finite number >= 0"
        elif key.endswith("lr_schedule"):
            from evbench.harness.training import LR_SCHEDULES

            ok, what = value in LR_SCHEDULES, "one of " + ", ".join(repr(s) for s in LR_SCHEDULES)
        else:
            ok, what = True, ""
        if not ok:
            raise SuiteError(f"{where}: {key} = {value!r}: expected {what}")


def _check_methods(path: Path, methods: list[Any], default_config: str) -> None:
    """Every ``[[methods]]`` table: known keys, a registered name and configuration, tables where tables go."""
    from evbench.harness.registry import list_methods, method_configs

    registered = list_methods()
    for i, m in enumerate(methods, 1):
        where = f"{path} [[methods]] #{i}"
        if not isinstance(m, Mapping):
            raise SuiteError(f"{where}: expected a table, got {m!r}")
        for key in m:
            if key not in _METHOD_KEYS:
                raise _unknown(where, key, _METHOD_KEYS)
        name = m.get("name")
        if not isinstance(name, str):
            raise SuiteError(f"{where}: name = {name!r}: expected a registered method name "
                             f"({', '.join(registered)})")
        if name not in registered:
            raise SuiteError(f"{where}: name = {name!r}: unknown method; registered: {', '.join(registered)}")
        config = m.get("config", default_config)
        configs = list(method_configs(name))
        if config not in configs:
            raise SuiteError(f"{where} ({name}): config = {config!r}: unknown configuration; "
                             f"{name} has {', '.join(configs)}")
        ov = m.get("overrides", [{}])
        if not (isinstance(ov, Mapping) or (isinstance(ov, list) and all(isinstance(o, Mapping) for o in ov))):
            raise SuiteError(f"{where} ({name}): overrides = {ov!r}: expected a table or a list of tables "
                             "of builder arguments")
        kn = m.get("knobs", [{}])
        if not (kn == "sweep" or isinstance(kn, Mapping)
                or (isinstance(kn, list) and all(isinstance(k, Mapping) for k in kn))):
            raise SuiteError(f"{where} ({name}): knobs = {kn!r}: expected \"sweep\", a table or a list of tables "
                             "of knob values")


def validate_suite(path: str | Path, data: Mapping[str, Any]) -> None:
    """Check a parsed suite file (every table and key); see the module docstring.

    Raises:
        SuiteError: The first problem, one line naming the file, the table and the key.
    """
    path = Path(path)
    for key, value in data.items():
        if key not in _TOP_KEYS:
            raise _unknown(str(path), key, _TOP_KEYS)
        kind = _TOP_KEYS[key]
        ok = {"str": isinstance(value, str), "table": isinstance(value, Mapping),
              "tables": isinstance(value, list)}[kind]
        if not ok:
            what = {"str": "a string", "table": "a table", "tables": "an array of tables ([[methods]])"}[kind]
            raise SuiteError(f"{path}: {key} = {value!r}: expected {what}")
    for key in ("name", "dataset", "methods"):
        if key not in data:
            raise SuiteError(f"{path}: missing key {key!r}")
    for key, value in data.get("data", {}).items():
        if key not in _DATA_KEYS:
            raise _unknown(f"{path} [data]", key, _DATA_KEYS)
        if _DATA_KEYS[key] == "split" and value not in _SPLITS:
            raise SuiteError(f"{path} [data]: {key} = {value!r}: expected one of {', '.join(_SPLITS)}")
        if _DATA_KEYS[key] == "str" and not isinstance(value, str):
            raise SuiteError(f"{path} [data]: {key} = {value!r}: expected a dataset source string")
    if "train" in data:
        _check_train(path, data["train"])
    try:
        MeasureSettings.from_mapping(data.get("measure", {}), source=f"{path} [measure]")
    except SettingsError as exc:
        raise SuiteError(str(exc)) from None
    _check_methods(path, data["methods"], data.get("default_config", "lite"))


def load_suite(name_or_path: str) -> Suite:
    """Load a suite by name (``bench/suites/<name>.toml``) or path, validating every table.

    Raises:
        SuiteError: Unknown suite, unparsable TOML, a missing key, an unknown
            key or a bad value in any table (names the file, table and key).
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
    validate_suite(path, data)
    data_tbl = data.get("data", {})
    return Suite(
        name=data["name"], description=data.get("description", ""), path=str(path), dataset=data["dataset"],
        train_dataset=data_tbl.get("train"), train_split=data_tbl.get("train_split", "train"),
        test_split=data_tbl.get("test_split", "test"), train=data.get("train"), measure=data.get("measure", {}),
        methods=list(data["methods"]), default_config=data.get("default_config", "lite"),
    )
