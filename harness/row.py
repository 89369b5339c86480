"""The typed result row: :class:`CellResult`, one per measured cell.

Every stored row — the runner's measured and modeled cells, ``evbench
profile --json``, the device agent's rows — has the keys of
:class:`CellResult`.  Each field carries, as ``dataclasses.field(metadata=...)``:

* ``type`` — ``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"dict"``,
  ``"list"`` or ``"any"`` (how :meth:`CellResult.from_row` coerces a stored value);
* ``kind`` — what the field is:

  - ``"identity"``: what was measured (method, build, knobs, dataset, device,
    backend, settings) — equal for the same cell wherever it is measured;
  - ``"measured"``: counted, not timed (GMACs, frames, decisions, cost table)
    — deterministic for a given build, weights and data;
  - ``"accuracy"``: top-1 / top-5 / mAP and their intervals;
  - ``"timing"``: wall-clock quantities (latency, FPS, memory, energy,
    decode times) — vary from run to run;
  - ``"modeled"``: the modeled-device roofline's inputs and validation;
  - ``"agent"``: written only by the standalone device agent;
  - ``"run"``: about the run rather than the measurement (cell id, suite,
    training, timestamps, failure, environment);

* ``unit`` — the stored unit and convention (numeric columns), from which
  :data:`evbench.harness.results.UNITS` is generated;
* ``short`` — the unit shown in a report header and ``fmt`` — how the report
  formats the number (``reports/format.py`` reads both).

``schema_version`` is in every row.  Version 1 rows (written before this
module existed; no ``schema_version`` key) are read by :meth:`CellResult.from_row`
with their keys renamed (:data:`V1_RENAMES`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "CellResult",
    "RowError",
    "DERIVED_UNITS",
    "V1_RENAMES",
    "column_meta",
    "field_names",
    "fields_of_kind",
    "units",
]

#: Version of the row layout written by this code.
SCHEMA_VERSION = 2

#: Keys of version-1 rows that version 2 renamed: ``{old: new}``.
V1_RENAMES: dict[str, str] = {
    "seed": "bootstrap_seed",  # metrics.accuracy_report's bootstrap seed, ambiguous next to training seeds
    "convention": "accuracy_convention",
    "clips": "logit_diff_clips",  # onnx_backend.max_abs_logit_diff's clip count
}

_KINDS = {"identity", "measured", "accuracy", "timing", "modeled", "agent", "run", "internal"}


class RowError(ValueError):
    """A stored row that cannot be read as a :class:`CellResult` (the message names the key)."""


def col(type_: str, kind: str, unit: str | None = None, *, short: str | None = None, fmt: str | None = None,
        default: Any = None) -> Any:
    """A :class:`CellResult` field with its metadata (see the module docstring)."""
    assert kind in _KINDS, kind
    meta = {"type": type_, "kind": kind, "unit": unit, "short": short, "fmt": fmt}
    return field(default=default, metadata=meta)


_FRAC = {"short": "%", "fmt": "fraction"}
_GMACS = {"short": "GMACs", "fmt": "gmacs"}
_MS = {"short": "ms", "fmt": "ms"}
_LAT = "ms, single-stream batch 1"


@dataclass
class CellResult:
    """One cell's result: every stored column, typed, with unit and convention as field metadata.

    Every field but ``schema_version`` and ``status`` defaults to ``None``,
    which means *not measured* (never a guessed value).  Build one with
    :func:`evbench.harness.measure.measure_cell`; read a stored one with
    :meth:`from_row`; store it with :meth:`to_row`.
    """

    # ------------------------------------------------------------------ identity
    schema_version: int = col("int", "identity", default=SCHEMA_VERSION)
    cell_id: str | None = col("str", "run")
    suite: str | None = col("str", "run")
    status: str | None = col("str", "run", default="ok")
    method: str | None = col("str", "identity")
    title: str | None = col("str", "identity")
    config: str | None = col("str", "identity")
    overrides: dict | None = col("dict", "identity")
    applied_overrides: dict | None = col("dict", "identity")
    # method.inference_settings: how the inputs and decisions are made, e.g. RSEE {bn_mode, downscale}, AR-Net
    # {downscale, rollout}, TLEE {input_norm}; which official test path (if any) a cell reproduces
    inference_settings: dict | None = col("dict", "identity")
    knobs: dict | None = col("dict", "identity")
    label: str | None = col("str", "run")
    paper: str | None = col("str", "identity")
    doi: str | None = col("str", "identity")
    input_kind: str | None = col("str", "identity")
    action_space: str | None = col("str", "identity")
    dataset: str | None = col("str", "identity")
    dataset_source: str | None = col("str", "identity")
    dataset_split: str | None = col("str", "identity")
    dataset_synthetic: bool | None = col("bool", "identity")
    dataset_note: str | None = col("str", "identity")
    device: str | None = col("str", "identity")
    backend: str | None = col("str", "identity")
    backend_detail: dict | None = col("dict", "identity")
    precision: str | None = col("str", "identity")
    modeled: bool | None = col("bool", "identity")
    resolution: int | None = col("int", "identity")
    measure_settings: dict | None = col("dict", "identity")

    # ------------------------------------------------------------------ accuracy
    top1: float | None = col("float", "accuracy", "fraction 0-1 (top-1 accuracy over test videos)", **_FRAC)
    top1_ci_low: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    top1_ci_high: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    top5: float | None = col("float", "accuracy", "fraction 0-1 (top-k accuracy, k = top5_k = min(5, classes))",
                             **_FRAC)
    top5_ci_low: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    top5_ci_high: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    map: float | None = col("float", "accuracy", "fraction 0-1 (mean per-class AP over softmax scores)", **_FRAC)
    map_ci_low: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    map_ci_high: float | None = col("float", "accuracy", "fraction 0-1 (95 % bootstrap, percentile)", **_FRAC)
    num_videos: int | None = col("int", "measured", "videos evaluated", short="videos", fmt="count")
    top5_k: int | None = col("int", "accuracy", "k of the top-k column top5 (min(5, classes))", short="k",
                             fmt="count")
    map_num_classes: int | None = col("int", "accuracy", "classes with a positive test video (averaged in map)",
                                      short="classes", fmt="count")
    num_classes: int | None = col("int", "accuracy", "classes of the test data", short="classes", fmt="count")
    per_class_top1: dict | None = col("dict", "accuracy")
    n_boot: int | None = col("int", "accuracy", "bootstrap resamples of the intervals", short="resamples",
                             fmt="count")
    ci_level: float | None = col("float", "accuracy", "confidence level of the intervals (0.95)", short="",
                                 fmt="other")
    bootstrap_seed: int | None = col("int", "accuracy")
    accuracy_convention: str | None = col("str", "accuracy")
    accuracy_note: str | None = col("str", "accuracy")

    # ------------------------------------------------------------------ counted (not timed)
    gmacs_per_video: float | None = col(
        "float", "measured", "GMACs (1e9 multiply-accumulates) per video, mean over videos, sum over trace", **_GMACS)
    gmacs_per_video_p5: float | None = col("float", "measured", "GMACs per video, 5th percentile", **_GMACS)
    gmacs_per_video_p95: float | None = col("float", "measured", "GMACs per video, 95th percentile", **_GMACS)
    gmacs_static_upper: float | None = col(
        "float", "measured", "GMACs per video if every step that can run ran (static upper bound)", **_GMACS)
    gmacs_policy_per_video: float | None = col("float", "measured", "GMACs per video spent in policy / gate modules",
                                               **_GMACS)
    gmacs_backbone_per_video: float | None = col("float", "measured", "GMACs per video spent in backbones and heads",
                                                 **_GMACS)
    gmacs_input_per_video: float | None = col(
        "float", "measured", "GMACs per video declared for producing the input (e.g. feature extractor)", **_GMACS)
    gmacs_per_frame: float | None = col(
        "float", "measured", "GMACs per frame actually processed (gmacs_per_video / frames_used)", **_GMACS)
    executed_gmacs_per_video: float | None = col(
        "float", "measured",
        "GMACs counted while the forward ran (FlopCounterMode/2 + LSTM formulas), mean per video", **_GMACS)
    executed_gmacs_note: str | None = col("str", "measured")
    executed_gmacs_clips: int | None = col(
        "int", "measured", "test clips the executed MACs were counted on (MeasureSettings.count_clips; all by default)",
        short="counted clips", fmt="count")
    frames_used: float | None = col("float", "measured", "frames actually processed per video, mean",
                                    short="frames", fmt="frames")
    frames_total: int | None = col("int", "identity", "frames available per video", short="frames", fmt="count")
    exit_hist: dict | None = col("dict", "measured")
    frames_used_hist: dict | None = col("dict", "measured")
    gmacs_per_slot: list | None = col("list", "measured")
    resolution_hist: dict | None = col("dict", "measured")
    action_hist: dict | None = col("dict", "measured")
    cost_table: list | None = col("list", "measured")
    ptflops_crosscheck: list | None = col("list", "measured")
    max_abs_logit_diff: float | None = col(
        "float", "measured", "max |logit - logit of torch eager| over the latency clips (non-torch backends)",
        short="", fmt="other")
    decisions_match: bool | None = col("bool", "measured")
    logit_diff_clips: int | None = col("int", "measured", "clips compared for max_abs_logit_diff", short="clips",
                                       fmt="count")
    mismatched_clips: list | None = col("list", "measured")
    # the oracle bound on the generated dataset (harness/oracle.py; None elsewhere, the reason in oracle_note)
    oracle_gmacs_per_video: float | None = col(
        "float", "measured", "GMACs per video of the oracle schedule (cheapest in the family's action space that "
                             "sees the evidence at a sufficient resolution; generator manifest), mean over videos",
        **_GMACS)
    oracle_gap: float | None = col("float", "measured", "ratio gmacs_per_video / oracle_gmacs_per_video",
                                   short="×", fmt="other")
    oracle_evidence_fraction: float | None = col(
        "float", "measured", "fraction 0-1 of test videos whose evidence some schedule of the family sees", **_FRAC)
    evidence_seen_fraction: float | None = col(
        "float", "measured", "fraction 0-1 of test videos whose evidence the executed schedule saw", **_FRAC)
    oracle_note: str | None = col("str", "measured")

    # ------------------------------------------------------------------ timed
    latency_ms_p50: float | None = col("float", "timing", f"{_LAT} wall clock, 50th percentile", **_MS)
    latency_ms_p90: float | None = col("float", "timing", f"{_LAT}, 90th percentile", **_MS)
    latency_ms_p99: float | None = col("float", "timing", f"{_LAT}, 99th percentile", **_MS)
    latency_ms_mean: float | None = col("float", "timing", f"{_LAT}, mean", **_MS)
    latency_ms_std: float | None = col("float", "timing",
                                       "ms, sample standard deviation (ddof=1) of single-stream latency", **_MS)
    latency_queries: int | None = col("int", "timing", "queries timed", short="queries", fmt="count")
    latency_samples_ms: list | None = col("list", "timing")
    latency_convention: str | None = col("str", "timing")
    latency_stopped_by: str | None = col("str", "timing")
    latency_clips: int | None = col("int", "timing", "distinct clips cycled through by the latency queries",
                                    short="clips", fmt="count")
    fps_offline: float | None = col("float", "timing", "frames/s processed, offline (best batch)", short="frames/s",
                                    fmt="fps")
    fps_offline_batch: int | None = col("int", "timing", "batch size giving fps_offline", short="clips / batch",
                                        fmt="count")
    fps_stream_processed: float | None = col(
        "float", "timing", "frames/s actually processed, single-stream (frames_used / mean latency)",
        short="frames/s", fmt="fps")
    fps_stream_covered: float | None = col(
        "float", "timing", "frames/s of video covered, single-stream (frames_total / mean latency); exceeds the "
                           "processed rate when frames are skipped or exited", short="frames/s", fmt="fps")
    peak_rss_mb: float | None = col("float", "timing", "MiB, peak process resident set during latency measurement",
                                    short="MiB", fmt="mib")
    peak_cuda_mb: float | None = col("float", "timing", "MiB, peak CUDA allocation (None off CUDA)", short="MiB",
                                     fmt="mib")
    energy_j_per_clip: float | None = col(
        "float", "timing", "J per clip (batch 1), from the platform counter named in energy_source (NVML, RAPL, "
                           "Jetson INA3221 rails); absent where none is readable", short="J", fmt="joules")
    energy_source: str | None = col("str", "timing")
    energy_interval_s: float | None = col(
        "float", "timing", "s between power samples integrated into energy_j_per_clip (sampled meters)", short="s",
        fmt="seconds")
    energy_samples: int | None = col("int", "timing", "power samples integrated into energy_j_per_clip",
                                     short="samples", fmt="count")
    threads: int | None = col("int", "timing", "torch intra-op threads", short="threads", fmt="count")
    # {role: ms per clip} of the costed modules (outermost active only) + "other", over a separate set of hooked
    # batch-1 queries after the latency window; the parts sum to latency_breakdown_mean_ms (harness/breakdown.py)
    latency_breakdown_ms: dict | None = col("dict", "timing")
    latency_breakdown_mean_ms: float | None = col(
        "float", "timing", "ms, mean wall clock of the hooked breakdown queries (latency_breakdown_ms sums to it)",
        **_MS)
    latency_breakdown_queries: int | None = col("int", "timing", "hooked queries of latency_breakdown_ms",
                                                short="queries", fmt="count")
    harness_overhead_ms: float | None = col(
        "float", "timing", "ms per query, the harness's own cost: the latency loop around a no-op method (p50)",
        **_MS)
    latency_budget_limited: bool | None = col("bool", "timing")  # max_seconds forced < min_queries queries
    fps_offline_skipped_batches: list | None = col("list", "timing")  # offline batches skipped by max_seconds
    budget_notes: dict | None = col("dict", "timing")  # what the max_seconds budget cut (harness/budget.py)
    decode_ms_mean: float | None = col("float", "timing", "ms per video, PyAV decode (cache misses only)", **_MS)
    preprocess_ms_mean: float | None = col("float", "timing", "ms per video, resize/crop/normalise", **_MS)
    cache_hit_fraction: float | None = col("float", "timing", "fraction 0-1 of test clips served from the frame cache",
                                           **_FRAC)
    per_file: list | None = col("list", "timing")
    timed_start: float | None = col("float", "timing")  # s since the epoch, wall clock, start of the timed phase
    timed_end: float | None = col("float", "timing")  # s since the epoch, end of the timed phase
    noisy: bool | None = col("bool", "timing")
    machine_state: dict | None = col("dict", "timing")

    # ------------------------------------------------------------------ modeled device
    modeled_device: dict | None = col("dict", "modeled")
    modeled_calibration: dict | None = col("dict", "modeled")
    modeled_validation: dict | None = col("dict", "modeled")

    # ------------------------------------------------------------------ device agent
    decisions_source: str | None = col("str", "agent")
    latency_setup: dict | None = col("dict", "agent")
    latency_per_schedule_mean_ms: list | None = col("list", "agent")
    energy_rail: str | None = col("str", "agent")
    energy_note: str | None = col("str", "agent")
    providers_requested: list | None = col("list", "agent")
    providers: list | None = col("list", "agent")
    providers_active: list | None = col("list", "agent")
    power_mode: Any = col("any", "agent")
    jetson_clocks: Any = col("any", "agent")
    jetson_state_after: dict | None = col("dict", "agent")
    bundle: dict | None = col("dict", "agent")

    # ------------------------------------------------------------------ run
    trained: bool | None = col("bool", "run")
    train_s: float | None = col("float", "run", "s, wall time of training this cell's model (0 when reused)",
                                short="s", fmt="seconds")
    train_reused: bool | None = col("bool", "run")
    train_seconds_original: float | None = col("float", "run", "s, wall time of training the reused checkpoint",
                                               short="s", fmt="seconds")
    train_clips: int | None = col("int", "run", "clips of the train split trained on", short="clips", fmt="count")
    # harness/backbone_cache.py: the cached TSN backbones the model started from (None: none, trained from scratch);
    # backbone_reused: every one came from the cache (none trained for this cell); backbone_keys: slot (module
    # path) -> cache key, as `evbench cache list` shows it
    backbone_reused: bool | None = col("bool", "run")
    backbone_keys: dict | None = col("dict", "run")
    backbone_train_s: float | None = col("float", "run", "s, wall time of training cached backbones for this "
                                         "cell (0 when all reused; included in train_s)", short="s", fmt="seconds")
    train_last_epoch: list | None = col("list", "run")
    # harness/frozen_memo.py: what the memo of frozen backbones did in this cell's own training stages
    # ({hits, misses, hit_fraction, passthrough, invalidated, stored_mib, modules: {path: {hits, misses}}});
    # None when not trained here
    train_memo: dict | None = col("dict", "run")
    # harness/eval_memo.py: what the frozen-backbone outputs stored by earlier cells served in this cell's
    # uncounted evaluation batches (same keys as train_memo); None when not memoised (no backbone slots,
    # ONNX Runtime, or measured outside a run)
    eval_memo: dict | None = col("dict", "run")
    train_data: str | None = col("str", "run")
    checkpoint: str | None = col("str", "run")
    # training.run_seeds(): {init, train, data_order, tsn_offsets, carve_out, bootstrap: int | None (None: that
    # RNG unused), train_threads: int | None}; same seeds + same train_threads = bit-identical weights
    seeds: dict | None = col("dict", "run")
    data_errors: list | None = col("list", "run")
    conventions: dict | None = col("dict", "run")
    env: dict | None = col("dict", "run")
    started: str | None = col("str", "run")
    wall_s: float | None = col("float", "run", "s, wall time of the whole cell", short="s", fmt="seconds")
    node: str | None = col("str", "run")  # host that measured the cell
    executor: str | None = col("str", "run")  # the run's executor (serial, ray, slurm)
    error: str | None = col("str", "run")
    traceback: str | None = col("str", "run")

    # ------------------------------------------------------------------ not stored
    samples: Any = field(default=None, repr=False, compare=False, metadata={"type": "any", "kind": "internal"})
    extra: dict = field(default_factory=dict, repr=False, metadata={"type": "dict", "kind": "internal"})

    # ------------------------------------------------------------------ conversion
    def to_row(self) -> dict[str, Any]:
        """The flat JSON row: every stored field (``None`` = not measured), then any ``extra`` keys.

        ``samples`` (the per-video table, written to Parquet beside the row)
        is not part of it.
        """
        row = {name: getattr(self, name) for name in field_names()}
        for k, v in self.extra.items():
            row.setdefault(k, v)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CellResult:
        """Read a stored row of any schema version.

        A row without ``schema_version`` is version 1 (evbench before the
        typed row): its keys are renamed per :data:`V1_RENAMES`.  Values are
        coerced to their field's type (``int`` → ``float``, ``0/1`` → bool,
        NaN → None); keys this version does not know are kept in ``extra``
        (and written back by :meth:`to_row`), so nothing stored is lost.

        Raises:
            RowError: ``row`` is not a mapping, has a newer schema version
                than this code, or a value of the wrong type (names the key).
        """
        if not isinstance(row, Mapping):
            raise RowError(f"a result row must be a JSON object, got {type(row).__name__}")
        data = dict(row)
        version = data.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RowError(f"schema_version {version!r}: expected an integer >= 1")
        if version > SCHEMA_VERSION:
            raise RowError(f"schema_version {version} is newer than this evbench reads ({SCHEMA_VERSION}); upgrade")
        if version == 1:
            for old, new in V1_RENAMES.items():
                if old in data and new not in data:
                    data[new] = data.pop(old)
            data["schema_version"] = 1
        meta = _META
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in data.items():
            m = meta.get(k)
            if m is None or m["kind"] == "internal":
                extra[k] = v
                continue
            values[k] = _coerce(k, v, m["type"])
        return cls(**values, extra=extra)

    def measured_fields(self) -> dict[str, Any]:
        """``{name: value}`` of the identity, counted and accuracy fields — what does not depend on timing."""
        return {n: getattr(self, n) for n in fields_of_kind("identity", "measured", "accuracy")}


def _coerce(key: str, value: Any, type_: str) -> Any:
    """``value`` as ``type_`` (None stays None).

    Raises:
        RowError: The value cannot be read as that type (names ``key``).
    """
    if value is None or type_ == "any":
        return value
    if isinstance(value, float) and math.isnan(value) and type_ != "str":
        return None
    ok = True
    if type_ == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ok = False
        else:
            value = float(value)
    elif type_ == "int":
        if isinstance(value, bool):
            ok = False
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        elif not isinstance(value, int):
            ok = False
    elif type_ == "bool":
        if isinstance(value, int) and value in (0, 1):
            value = bool(value)
        elif not isinstance(value, bool):
            ok = False
    elif type_ == "str":
        ok = isinstance(value, str)
    elif type_ == "dict":
        ok = isinstance(value, Mapping)
        value = dict(value) if ok else value
    elif type_ == "list":
        if isinstance(value, tuple):
            value = list(value)
        ok = isinstance(value, list)
    if not ok:
        raise RowError(f"key {key!r} = {value!r}: expected {type_}")
    return value


_META: dict[str, dict[str, Any]] = {f.name: dict(f.metadata) for f in dataclasses.fields(CellResult)}

#: Columns :func:`evbench.harness.results.load` derives from stored ones (never stored).
DERIVED_UNITS: dict[str, dict[str, str]] = {
    "gflops_per_video": {"unit": "derived: 2 x gmacs_per_video", "short": "GFLOPs", "fmt": "gflops"},
}


def field_names() -> list[str]:
    """Names of every stored field, in declaration order (no ``samples``/``extra``)."""
    return [n for n, m in _META.items() if m["kind"] != "internal"]


def fields_of_kind(*kinds: str) -> list[str]:
    """Names of the stored fields whose ``kind`` is one of ``kinds``."""
    unknown = set(kinds) - _KINDS
    if unknown:
        raise ValueError(f"unknown field kinds {sorted(unknown)}; known: {sorted(_KINDS)}")
    return [n for n, m in _META.items() if m["kind"] in kinds]


def column_meta(name: str) -> dict[str, Any] | None:
    """Metadata (``type``, ``kind``, ``unit``, ``short``, ``fmt``) of a column, derived ones included; None if unknown."""
    if name in _META and _META[name]["kind"] != "internal":
        return _META[name]
    if name in DERIVED_UNITS:
        return {"type": "float", "kind": "derived", **DERIVED_UNITS[name]}
    return None


def units(names: Iterable[str] | None = None) -> dict[str, str]:
    """``{column: unit}`` of every numeric column with a declared unit, in field order, derived ones last.

    This is :data:`evbench.harness.results.UNITS`.
    """
    out = {n: m["unit"] for n, m in _META.items() if m.get("unit")}
    out.update({n: d["unit"] for n, d in DERIVED_UNITS.items()})
    if names is not None:
        keep = set(names)
        out = {k: v for k, v in out.items() if k in keep}
    return out
