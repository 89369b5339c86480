"""Measurement settings: every parameter of a measurement, with its one default.

After MLPerf LoadGen's ``TestSettings``: one frozen value object says *how* a
cell is measured (how many latency queries, for how long, which offline batch
sizes, whether executed MACs are counted, ...), separately from *what* is
measured (the method build, its knobs, the dataset, the device).  Every
measuring entry point — the runner's cells, ``evbench profile``, the claims
measurer — takes a :class:`MeasureSettings`; a suite's ``[measure]`` table is
validated against it by :meth:`MeasureSettings.from_mapping`, so a misspelled
key or a bad value is an error naming the file, the key and what is allowed
instead of being silently ignored.

The resolved settings (defaults merged in) are part of a cell's id
(:attr:`evbench.harness.suites.Cell.id`): changing a default re-measures.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MeasureSettings", "SettingsError", "DEFAULT_SETTINGS", "PRECISIONS"]

#: Numeric precisions of a measurement (:mod:`evbench.harness.precision`).
PRECISIONS = ("fp32", "fp16", "bf16")


class SettingsError(ValueError):
    """A bad measurement setting; the one-line message names the source, the key and what is allowed."""


def _spec(kind: str, doc: str, *, minimum: float | None = None, optional: bool = False,
          choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"kind": kind, "doc": doc, "min": minimum, "optional": optional, "choices": choices}


@dataclass(frozen=True)
class MeasureSettings:
    """How one cell is measured (every field has exactly one default, here).

    Attributes:
        latency: Measure single-stream latency, offline FPS, peak memory and
            energy (or, on a modeled device, model the latency).  ``False``:
            accuracy and GMACs only.
        min_queries: Latency queries at least (MLPerf SingleStream uses ≥ 1024
            on real systems; 64 is the floor here).
        min_duration_s: The timed phase lasts at least this long, s.
        max_duration_s: ...and at most this long, s (``≥ min_duration_s``).
        warmup_runs: Un-timed calls of every warm-up path before timing.
        latency_clips: Distinct test clips the latency queries cycle through
            (adaptive methods' cost depends on content), evenly spaced over
            the test split's order (so a class-ordered split gives every class).
        offline: Also measure offline throughput (MLPerf Offline).
        offline_batches: Batch sizes tried for offline FPS (the best is kept).
        eval_batch_size: Clips per forward during evaluation (traces are per
            sample, so it changes neither costs nor decisions).
        max_clips: Evaluate at most this many clips of the split, in listing
            order (``None``: all).  ``evbench profile --data`` sets it to
            ``--clips``.
        count_executed: Count the MACs while the forward executes
            (``FlopCounterMode``) as a cross-check of the trace sum.
        count_clips: Count them on about this many test clips only: whole
            evaluation batches evenly spaced over the split (``None``: every
            clip).  ``FlopCounterMode`` sends every op through Python (measured:
            a per-frame early-exit forward runs ~2x slower under it), so a
            suite with many operating points counts a sample; the row's
            ``executed_gmacs_clips`` says how many clips were counted and the
            note gives the trace GMACs of the same clips.
        per_file: Also time decoding of every file once (``per_file`` column).
        energy: Read the platform's energy counter (NVML, RAPL, Jetson rails)
            around the latency queries, when one is readable.
        crosscheck: Cross-check every static module's fvcore GMACs with
            ptflops (both backends) — ``ptflops_crosscheck`` column.
        breakdown: After the latency window, time a separate set of hooked
            queries split by costed module role (``latency_breakdown_ms``,
            :mod:`evbench.harness.breakdown`) and the harness's own cost per
            query (``harness_overhead_ms``).
        breakdown_queries: Hooked queries of the breakdown, at most (fewer
            when the budget forces it).
        max_seconds: Wall-time budget of the whole measurement, s, from the
            start of :func:`~evbench.harness.measure.measure_cell` (``None``:
            unlimited).  The default keeps a ``paper`` profile under 3 minutes
            on a 2-core CPU: warm-up runs, the latency window, the breakdown
            and the offline batch list shrink to fit (:mod:`evbench.harness.budget`),
            and the row says what was cut.
        precision: ``fp32``, or ``fp16`` / ``bf16`` through ``torch.autocast``
            around every forward of the measurement, evaluation included
            (:mod:`evbench.harness.precision`: fp16 needs CUDA, bf16 runs on a
            CPU too); recorded in the row's ``precision`` and fingerprint.
    """

    latency: bool = field(default=True, metadata=_spec("bool", "measure latency, offline FPS, memory, energy"))
    min_queries: int = field(default=64, metadata=_spec("int", "latency queries at least", minimum=1))
    min_duration_s: float = field(default=1.0, metadata=_spec("float", "s, timed phase at least", minimum=0.0))
    max_duration_s: float = field(default=120.0, metadata=_spec("float", "s, timed phase at most", minimum=0.0))
    warmup_runs: int = field(default=3, metadata=_spec("int", "un-timed calls per warm-up path", minimum=0))
    latency_clips: int = field(default=8, metadata=_spec("int", "clips cycled by the latency queries", minimum=1))
    offline: bool = field(default=True, metadata=_spec("bool", "measure offline FPS"))
    offline_batches: tuple[int, ...] = field(default=(1, 4, 16),
                                             metadata=_spec("ints", "batch sizes tried for offline FPS", minimum=1))
    eval_batch_size: int = field(default=8, metadata=_spec("int", "clips per evaluation forward", minimum=1))
    max_clips: int | None = field(default=None, metadata=_spec("int", "clips evaluated at most (none: all)",
                                                              minimum=1, optional=True))
    count_executed: bool = field(default=True, metadata=_spec("bool", "count executed MACs (FlopCounterMode)"))
    count_clips: int | None = field(default=None, metadata=_spec(
        "int", "count executed MACs on about this many clips (evenly spaced eval batches; none: all)", minimum=1,
        optional=True))
    per_file: bool = field(default=False, metadata=_spec("bool", "time the decoding of every file"))
    energy: bool = field(default=True, metadata=_spec("bool", "read the platform energy counter"))
    crosscheck: bool = field(default=False, metadata=_spec("bool", "ptflops cross-check of static modules"))
    breakdown: bool = field(default=True, metadata=_spec("bool", "latency breakdown by costed module role (hooks)"))
    breakdown_queries: int = field(default=32, metadata=_spec("int", "hooked queries of the breakdown at most",
                                                              minimum=1))
    max_seconds: float | None = field(default=150.0, metadata=_spec(
        "float", "s, wall-time budget of the cell's measurement (none: unlimited)", minimum=0.0, optional=True))
    precision: str = field(default="fp32", metadata=_spec(
        "choice", "fp32, or fp16/bf16 autocast of every forward (fp16 needs CUDA)", choices=PRECISIONS))

    def __post_init__(self) -> None:
        """Validate (the constructor is as strict as :meth:`from_mapping`).

        Raises:
            SettingsError: A bad value.
        """
        checked = _validate(dataclasses.asdict(self), "MeasureSettings", None)
        for k, v in checked.items():
            object.__setattr__(self, k, v)

    @classmethod
    def keys(cls) -> list[str]:
        """The setting names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, source: str = "[measure]",
                     key_names: Mapping[str, str] | None = None) -> MeasureSettings:
        """Settings from a (partial) mapping, defaults for the rest, every key and value checked.

        Args:
            mapping: E.g. a suite's ``[measure]`` table; ``None`` or ``{}``
                gives the defaults.
            source: Where the mapping came from, first in every error message
                (``"bench/suites/default.toml [measure]"``, ``"evbench profile"``).
            key_names: How to name a key in messages (``{"min_queries":
                "--min-queries"}`` for command-line flags).

        Returns:
            The validated, frozen settings.

        Raises:
            SettingsError: An unknown key (with the allowed keys and the
                closest match) or a bad value (with what is allowed), one line.
        """
        mapping = dict(mapping or {})
        allowed = cls.keys()
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SettingsError(f"{source}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")
        values = {**dataclasses.asdict(cls()), **mapping}
        return cls(**_validate(values, source, key_names))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every setting (lists for tuples), as hashed into cell ids."""
        d = dataclasses.asdict(self)
        d["offline_batches"] = list(self.offline_batches)
        if d["count_clips"] is None:  # added later: unset, it leaves older cell ids unchanged
            del d["count_clips"]
        return d

    def replace(self, *, source: str = "MeasureSettings", key_names: Mapping[str, str] | None = None,
                **changes: Any) -> MeasureSettings:
        """A copy with ``changes`` applied, validated like :meth:`from_mapping`.

        Raises:
            SettingsError: An unknown key or a bad value.
        """
        return type(self).from_mapping({**self.to_dict(), **changes}, source=source, key_names=key_names)

    @classmethod
    def describe(cls) -> dict[str, str]:
        """``{key: "type, default D: what it sets"}`` for help texts and docs."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f"{_WHAT[f.metadata['kind']]}, default {_default_text(f)}: {f.metadata['doc']}"
        return out


_WHAT = {"bool": "true/false", "int": "integer", "float": "number", "ints": "list of integers", "choice": "text"}


def _default_text(f: dataclasses.Field) -> str:
    d = f.default
    if isinstance(d, bool):
        return str(d).lower()
    if isinstance(d, tuple):
        return "[" + ", ".join(str(v) for v in d) + "]"
    return "none" if d is None else str(d)


def _allowed_text(f: dataclasses.Field) -> str:
    kind, lo = f.metadata["kind"], f.metadata["min"]
    bound = "" if lo is None else (f" >= {lo:g}" if kind != "ints" else f" each >= {lo:g}")
    text = {"bool": "true or false", "int": f"an integer{bound}", "float": f"a finite number{bound}",
            "ints": f"a non-empty list of integers{bound}",
            "choice": "one of " + ", ".join(repr(c) for c in f.metadata["choices"] or ())}[kind]
    return text + (" (or omit it for none)" if f.metadata["optional"] else "")


def _validate(values: Mapping[str, Any], source: str, key_names: Mapping[str, str] | None) -> dict[str, Any]:
    """Type- and range-check ``values`` (every field present); returns normalised values.

    Raises:
        SettingsError: The first bad value, naming ``source`` and the key.
    """
    out: dict[str, Any] = {}
    names = key_names or {}
    for f in dataclasses.fields(MeasureSettings):
        v = values[f.name]
        kind, lo = f.metadata["kind"], f.metadata["min"]

        def bad(_v: Any = v, _f: dataclasses.Field = f) -> SettingsError:
            return SettingsError(f"{source}: {names.get(_f.name, _f.name)} = {_v!r}: expected {_allowed_text(_f)}")

        if v is None and f.metadata["optional"]:
            out[f.name] = None
            continue
        if kind == "bool":
            if not isinstance(v, bool):
                raise bad()
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
                raise bad()
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                    lo is not None and v < lo):
                raise bad()
            v = float(v)
        elif kind == "ints":
            if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or not v or any(
                    isinstance(e, bool) or not isinstance(e, int) or (lo is not None and e < lo) for e in v):
                raise bad()
            v = tuple(int(e) for e in v)
        elif kind == "choice":
            if not isinstance(v, str) or v not in (f.metadata["choices"] or ()):
                raise bad()
        out[f.name] = v
    if out["max_duration_s"] < out["min_duration_s"]:
        raise SettingsError(f"{source}: {names.get('max_duration_s', 'max_duration_s')} = {out['max_duration_s']:g}"
                            f": expected a number >= {names.get('min_duration_s', 'min_duration_s')} "
                            f"({out['min_duration_s']:g})")
    return out


#: The defaults (``MeasureSettings()``), for callers that only read them.
DEFAULT_SETTINGS = MeasureSettings()
