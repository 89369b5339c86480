"""``evbench`` command line: methods, profile, train, run, report.

Every subcommand has ``--help``.  Numbers printed carry their unit; ``--json``
output uses the column names of :data:`evbench.harness.results.UNITS`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items: list[str] | None, flag: str, what: str, error: type[Exception]) -> list[tuple[str, Any]]:
    """``FLAG KEY=VALUE`` items as ``(key, value)`` pairs, values parsed as JSON (else kept as text).

    Raises:
        error: An item without ``=`` or with an empty key; the message names ``flag`` and ``what`` it sets.
    """
    pairs = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{flag} expects KEY=VALUE{what}, got {item!r}")
        pairs.append((key.strip(), _parse_value(value.strip())))
    return pairs


def _parse_knobs(items: list[str] | None) -> dict[str, Any]:
    """``--knob KEY=VALUE`` items as a dict (values parsed as JSON, else kept as text).

    Raises:
        KnobError: An item without ``=`` or with an empty key (values are
            checked against the card by ``Method.resolve_knobs``).
    """
    from evbench.harness.api import KnobError

    return dict(_key_values(items, "--knob", "", KnobError))


#: Build flags and the builder keyword each sets (for messages).
_BUILD_FLAGS = {"backbone": "--backbone", "frames": "--frames", "resolution": "--resolution"}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Builder overrides from ``--backbone/--frames/--resolution`` and ``--set KEY=VALUE``, checked.

    Every key and value is checked against the method's builder and
    configuration before anything is built
    (:func:`evbench.harness.checks.check_overrides`), and the input clips
    the command will hold against the memory available
    (:func:`evbench.harness.checks.check_build_fits`).

    Raises:
        BuildOptionError: An item without ``=``, an unknown key or a bad value (names the flag).
        UserError: The input tensors cannot fit in memory.
    """
    from evbench.harness.checks import BuildOptionError, check_build_fits, check_overrides

    out: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for name, flag in _BUILD_FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            out[name], flags[name] = value, flag
    for key, value in _key_values(getattr(args, "set", None), "--set", " (a builder option)", BuildOptionError):
        out[key] = value
        flags.pop(key, None)
    if getattr(args, "method", None):
        check_overrides(args.method, args.config, out, flags=flags)
        held = max(getattr(args, "clips", None) or 1, getattr(args, "batch_size", None) or 1)
        check_build_fits(args.method, args.config, out, count=held + (0 if getattr(args, "no_offline", True) else 16))
    return out


# --------------------------------------------------------------------------- methods


def _knob_text(k: dict[str, Any]) -> str:
    """``name=default [low, high] sweep (...)`` for ``evbench methods``."""
    rng = (f" in {{{', '.join(map(str, k['choices']))}}}" if k["choices"] else
           f" in [{'-inf' if k['low'] is None else k['low']}, {'inf' if k['high'] is None else k['high']}]")
    sweep = f" sweep ({', '.join(map(str, k['sweep']))})" if k["sweep"] else ""
    return f"{k['name']}={k['default']}{rng}{sweep}"


def cmd_methods(args: argparse.Namespace) -> int:
    """List registered methods with their cards — data only, no network is built.

    ``--json`` prints, per method, its ``summary``, ``configs`` (builder
    arguments per configuration), ``card`` (of ``--config``, else ``paper``),
    ``cards`` (every configuration's card) and ``claims`` (the shown card's
    claims read from the claims registry: id, quantity, claimed, unit, source).
    """
    from evbench.harness.claims import claims_by_id
    from evbench.harness.registry import list_methods, method_card, method_configs, method_summary

    listing = []
    for name in list_methods():
        configs = method_configs(name)
        cards = {c: method_card(name, c) for c in configs}
        card = cards[args.config if args.config in configs else "paper"]
        claims = [{"id": c.id, "quantity": c.quantity, "claimed": c.claimed, "unit": c.unit, "source": c.source}
                  for c in claims_by_id(card.claims).values()]
        listing.append({"name": name, "summary": method_summary(name), "configs": configs, "card": card.to_dict(),
                        "cards": {c: v.to_dict() for c, v in cards.items()}, "claims": claims})
    if args.json:
        print(json.dumps(listing, indent=2, default=str))
        return 0
    pad = " " * 24
    for item in listing:
        c = item["card"]
        print(f"{item['name']:24s} {c['title']} [{c['config']}]")
        print(f"{pad}{c['paper']}" + (f" doi:{c['doi']}" if c["doi"] else "") + (f" code:{c['code']}" if c["code"] else ""))
        res = "/".join(map(str, c["resolutions"])) or "-"
        print(f"{pad}input={c['input_kind']} T={c['frames']} res={res} configs={','.join(item['configs'])}")
        for k in c["knobs"]:
            print(f"{pad}knob {_knob_text(k)}")
        if c["force_options"]:
            print(f"{pad}force {', '.join(map(str, c['force_options']))}")
        for cl in item["claims"]:
            print(f"{pad}claim {cl['id']}: {cl['claimed']:g} {cl['unit']}")
    return 0


# --------------------------------------------------------------------------- profile


def _build_method(args: argparse.Namespace) -> Any:
    """The method named by ``--method/--config/...``, with ``--checkpoint`` loaded."""
    import torch
    from evbench.harness.checks import overrides_blamed
    from evbench.harness.registry import create_method

    torch.manual_seed(0)
    overrides = _overrides(args)
    with overrides_blamed(args.method, args.config, overrides):  # a builder's ValueError on a --set value
        method = create_method(args.method, config=args.config, num_classes=args.num_classes, **overrides)
    if getattr(args, "checkpoint", None):
        from evbench.harness.training import load_checkpoint_into

        load_checkpoint_into(method, args.checkpoint)
    return method


def _profile_inputs(args: argparse.Namespace, method: Any) -> tuple[list[Any], str]:
    """Batch-1 clips for ``evbench export``: real clips of ``--data`` or seeded random-normal ones."""
    if args.data:
        from evbench.harness.checks import check_input_kind
        from evbench.harness.data import open_dataset
        from evbench.harness.data.errors import DataError

        ds = open_dataset(args.data, split="all", frames=method.card.frames, size=max(method.card.resolution, 1))
        check_input_kind(method.card, ds, args.data)
        dim = (getattr(ds, "feature_shape", None) or (0,))[-1]
        if method.card.input_kind == "features" and dim and dim != method.card.feature_dim:
            raise DataError(args.data, f"features have D={dim} but {args.method} [{args.config}] is built for "
                                       f"D={method.card.feature_dim}: pass --set feature_dim={dim}")
        inputs, bad = [], []
        for i in range(len(ds)):  # a clip that fails to load (NaN features, corrupt video) is named and skipped
            if len(inputs) == args.clips:
                break
            try:
                inputs.append(ds[i].x[None])
            except DataError as exc:
                bad.append(str(exc))
        if bad:
            print(f"evbench: {len(bad)} clips skipped: " + "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""),
                  file=sys.stderr)
        if not inputs:
            raise DataError(args.data, "no clip could be loaded" + (f" ({bad[0]})" if bad else " (empty dataset)"))
        return inputs, f"{len(inputs)} clips of {args.data}"
    from evbench.harness.data import RandomClips

    ds = RandomClips(tuple(method.example_input(1).shape[1:]), args.clips)
    return [ds[i].x[None] for i in range(len(ds))], ds.note


#: ``evbench profile`` flags that set a :class:`~evbench.harness.settings.MeasureSettings` key (for messages).
_PROFILE_FLAGS = {"min_queries": "--min-queries", "min_duration_s": "--min-duration", "offline": "--no-offline",
                  "crosscheck": "--no-crosscheck", "latency_clips": "--clips", "max_clips": "--clips",
                  "max_seconds": "--max-seconds", "precision": "--precision"}


def _measure_overrides(items: list[str] | None, flag: str = "--measure") -> dict[str, Any]:
    """``--measure KEY=VALUE`` items as a settings mapping (values parsed as JSON, else kept as text)."""
    def usage(message: str) -> SystemExit:
        return SystemExit(f"evbench: {message}")

    return dict(_key_values(items, flag, " (a [measure] setting)", usage))


def profile_settings(args: argparse.Namespace) -> Any:
    """The :class:`~evbench.harness.settings.MeasureSettings` of ``evbench profile``: defaults, flags, ``--measure``.

    Raises:
        evbench.harness.settings.SettingsError: A bad flag value or ``--measure`` item (names it).
    """
    from evbench.harness.settings import MeasureSettings

    given: dict[str, Any] = {"latency_clips": args.clips, "max_clips": args.clips,
                             "offline": not args.no_offline, "crosscheck": not args.no_crosscheck}
    if args.min_queries is not None:
        given["min_queries"] = args.min_queries
    if args.min_duration is not None:
        given["min_duration_s"] = args.min_duration
    if getattr(args, "max_seconds", None) is not None:
        given["max_seconds"] = args.max_seconds
    if getattr(args, "precision", None) is not None:
        given["precision"] = args.precision
    settings = MeasureSettings.from_mapping(given, source="evbench profile", key_names=_PROFILE_FLAGS)
    extra = _measure_overrides(getattr(args, "measure", None))
    return settings.replace(source="evbench profile --measure", **extra) if extra else settings


def cmd_profile(args: argparse.Namespace) -> int:
    """Profile one method: a one-cell run through :func:`evbench.harness.measure.measure_cell`.

    Without ``--data`` the inputs are ``--clips`` seeded random-normal clips
    (:class:`evbench.harness.data.RandomClips`, labelled synthetic); with it,
    the first ``--clips`` clips of its ``--split``.  Accuracy is not measured
    here (``evbench run`` measures it on a test split).  ``--json`` prints the
    row (:class:`evbench.harness.row.CellResult` keys) plus, for compatibility,
    ``latency_ms`` (``p50/p90/p99/mean/samples``, ms) and ``fps`` (offline
    frames/s) — the same values as ``latency_ms_p50``... and ``fps_offline``.
    ``--backend onnxruntime`` runs every costed module in ONNX Runtime with
    the method's control flow in Python and adds ``max_abs_logit_diff``;
    ``--device <board>-modeled`` replaces the measured latency by the roofline
    model (``modeled: true``).
    """
    from evbench.harness.measure import measure_cell
    from evbench.harness.runner import build_method

    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    settings = profile_settings(args)
    from evbench.harness.precision import check_precision

    providers = _providers(args) if args.backend == "onnxruntime" else None
    check_precision(settings.precision, args.device, backend=args.backend, providers=providers)  # before building
    overrides = _overrides(args)
    if args.data:
        from evbench.harness.data import open_dataset
        from evbench.harness.registry import method_card

        card = method_card(args.method, args.config, **overrides)
        dataset = open_dataset(args.data, split=args.split, frames=max(card.frames, 1),
                               size=max(card.resolution, 1), train=False, cache_dir=args.cache_dir)
        from evbench.harness.checks import check_input_kind

        check_input_kind(card, dataset, args.data)  # features for a pixel method, or the reverse
        num_classes = args.num_classes or len(dataset.class_names)
    else:
        dataset, num_classes = None, args.num_classes or 200
    from evbench.harness.checks import overrides_blamed

    with overrides_blamed(args.method, args.config, overrides):  # a builder's ValueError on a --set value
        method, applied = build_method(args.method, args.config, overrides, num_classes,
                                       dataset if dataset is not None else [], seed=0)
    if getattr(args, "checkpoint", None):
        from evbench.harness.training import load_checkpoint_into

        load_checkpoint_into(method, args.checkpoint)
    knobs = _parse_knobs(args.knob)
    method.resolve_knobs(knobs)  # fail early on an unknown knob
    if dataset is None:
        from evbench.harness.data import RandomClips

        dataset = RandomClips(tuple(method.example_input(1).shape[1:]), args.clips, num_classes=num_classes)
    res = measure_cell(method, dataset, settings, knobs=knobs, device=args.device, backend=args.backend,
                       providers=providers,
                       bundle_dir=args.bundle, trained=False,
                       progress=not getattr(args, "quiet", False) and sys.stderr.isatty())  # tqdm per phase
    res.suite, res.config, res.overrides, res.applied_overrides = "profile", args.config, overrides, applied
    res.dataset_source, res.dataset_split = (args.data, args.split) if args.data else ("random", None)
    if getattr(args, "checkpoint", None):
        res.checkpoint = str(args.checkpoint)
        res.accuracy_note = "not measured by profile: evbench run measures accuracy on a test split"
    res.label = " ".join([args.method, args.config] + [f"{k}={v}" for k, v in sorted(overrides.items())]
                         + [f"{k}={v}" for k, v in sorted(knobs.items())]
                         + ([f"[{settings.precision}]"] if settings.precision != "fp32" else []))
    res.started, res.wall_s = started, time.perf_counter() - t0
    row = profile_json(res)
    if args.json:
        print(json.dumps(row, indent=2, default=str))
        return 0
    _print_profile(row)
    return 0


def profile_json(res: Any) -> dict[str, Any]:
    """``evbench profile --json``: the row of ``res`` plus the compatibility keys ``latency_ms`` and ``fps``.

    ``latency_ms`` is ``{"p50", "p90", "p99", "mean", "samples"}`` (ms; None
    when latency was not measured) and ``fps`` the offline frames/s — the
    same values as ``latency_ms_p50/p90/p99/mean``, ``latency_samples_ms`` and
    ``fps_offline``.  ``gmacs_per_frame``, ``gmacs_per_video``,
    ``executed_gmacs_per_video``, ``cost_table`` and ``peak_rss_mb`` are row
    keys already.
    """
    row = res.to_row()
    row["latency_ms"] = {"p50": row["latency_ms_p50"], "p90": row["latency_ms_p90"], "p99": row["latency_ms_p99"],
                         "mean": row["latency_ms_mean"], "samples": row["latency_samples_ms"]}
    row["fps"] = row["fps_offline"]
    return row


def _fmt(value: Any, spec: str = ".2f", missing: str = "not measured") -> str:
    return missing if value is None else format(value, spec)


def _print_profile(row: dict[str, Any]) -> None:
    """The human-readable profile of a :func:`profile_json` row (every number with its unit)."""
    print(f"{row['method']} [{row['config']}] {row['title']} — {row['num_videos']} clips of {row['dataset_source']}"
          + (f" ({row['dataset_note']})" if row["dataset_synthetic"] else ""))
    print(f"device {row['device']}, backend {row['backend']}" + ("  (MODELED latency)" if row["modeled"] else ""))
    print(f"{'module':32s} {'input shape':18s} {'GMACs':>10s}  counted by")
    for r in row["cost_table"]:
        print(f"{r['module']:32s} {str(tuple(r['input_shape'])):18s} {r['gmacs']:10.4f}  {r['counted_by']}")
    print(f"GMACs/video (trace sum)   {row['gmacs_per_video']:.4f}   (static upper bound {row['gmacs_static_upper']:.4f})")
    print(f"GMACs/video (executed)    {_fmt(row['executed_gmacs_per_video'], '.4f')}")
    print(f"GMACs/frame               {_fmt(row['gmacs_per_frame'], '.4f')}   frames used {row['frames_used']:.2f}")
    if row["latency_ms_p50"] is not None:
        label = "MODELED latency ms" if row["modeled"] else (
            f"latency ms (batch 1, {row['threads']} threads, {row['latency_queries']} queries)")
        print(f"{label}  p50 {row['latency_ms_p50']:.2f}  p90 {row['latency_ms_p90']:.2f}  "
              f"p99 {row['latency_ms_p99']:.2f}  mean {row['latency_ms_mean']:.2f}")
    else:
        print("latency: not measured")
    if row.get("latency_budget_limited"):
        print(f"latency: only {row['latency_queries']} queries (< min_queries) within --max-seconds")
    if row.get("latency_breakdown_ms"):
        print(f"latency breakdown ms/clip ({row['latency_breakdown_queries']} hooked queries, mean "
              f"{row['latency_breakdown_mean_ms']:.2f}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in row["latency_breakdown_ms"].items())
              + f"; harness overhead {_fmt(row.get('harness_overhead_ms'), '.4f')} ms/query")
    if row.get("fps_offline_skipped_batches"):
        print(f"offline batches skipped by --max-seconds: {row['fps_offline_skipped_batches']}")
    if row["max_abs_logit_diff"] is not None:
        print(f"max |logit onnxruntime - torch| {row['max_abs_logit_diff']:.2e}"
              f" (decisions {'match' if row['decisions_match'] else 'DIFFER'})")
    if row["fps_offline"]:
        print(f"offline FPS {row['fps_offline']:.1f} frames/s (batch {row['fps_offline_batch']})")
    if row["peak_rss_mb"] is not None:
        print(f"peak RSS {row['peak_rss_mb']:.0f} MiB"
              + (f", peak CUDA {row['peak_cuda_mb']:.0f} MiB" if row["peak_cuda_mb"] else ""))
    if row["modeled"]:
        dp, cal, val = row["modeled_device"] or {}, row["modeled_calibration"] or {}, row["modeled_validation"] or {}
        print(f"modeled device: {dp.get('title')}; {_fmt(dp.get('peak_gflops_fp16'), '.0f')} GFLOPS FP16 peak, "
              f"{dp.get('bandwidth_gbs')} GB/s")
        print(f"calibration ({cal.get('runtime_title')}): {cal.get('note')}; mean |fit error| on "
              f"{cal.get('calibrated_on')} {_fmt(cal.get('mean_abs_fit_error_pct'), '.1f')} %"
              + "".join(f"; held out {h['model']}: modeled {h['modeled_ms']:.1f} ms vs published {h['published_ms']} ms "
                        f"({h['error_pct']:+.1f} %)" for h in cal.get("held_out", [])))
        print(f"the same model on this CPU (evbench model-validate): held-out mean |error| "
              f"{_fmt(val.get('held_out_mean_abs_error_pct'), '.1f')} %, max {_fmt(val.get('held_out_max_abs_error_pct'), '.1f')} %")
    elif row["energy_j_per_clip"] is not None:
        print(f"energy {row['energy_j_per_clip']:.3f} J/clip ({row['energy_source']})")
    else:
        print("energy: not measured (no readable energy counter on this machine)")
    for c in row["ptflops_crosscheck"] or []:
        print(f"ptflops cross-check {c['module']}{tuple(c['input_shape'])}: fvcore {c['fvcore']:.4f}, "
              f"ptflops[pytorch] {c['ptflops_pytorch']:.4f}, ptflops[aten] {c['ptflops_aten']:.4f} GMACs")


def _providers(args: argparse.Namespace) -> list[str] | None:
    """ONNX Runtime execution providers from ``--providers`` (comma list; cpu, cuda, tensorrt or full names), else by ``--device``."""
    if getattr(args, "providers", None):
        from evbench.harness.onnx_backend import resolve_providers

        return resolve_providers([p.strip() for p in args.providers.split(",") if p.strip()])
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if str(args.device).startswith("cuda") else None


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    """Export every costed module of a method to ONNX: a bundle the device agent can run."""
    from evbench.harness.onnx_backend import export_bundle

    method = _build_method(args)
    knobs = _parse_knobs(args.knob)
    method.resolve_knobs(knobs)
    inputs, note = _profile_inputs(args, method)
    manifest = export_bundle(method, args.out, example_clips=inputs, knobs=knobs, opset=args.opset,
                             build={"method": args.method, "config": args.config, "num_classes": args.num_classes,
                                    "overrides": _overrides(args), "inputs": note})
    print(f"bundle: {manifest}")
    return 0


# --------------------------------------------------------------------------- cache


def cmd_cache(args: argparse.Namespace) -> int:
    """``evbench cache list|clear``: the cached TSN backbones (:mod:`evbench.harness.backbone_cache`)."""
    from evbench.harness.backbone_cache import BackboneCache, default_backbone_dir, format_entries

    cache = BackboneCache(default_backbone_dir(args.cache_dir))
    if args.action == "clear":
        n = cache.clear()
        print(f"removed {n} cached backbone{'s' if n != 1 else ''} from {cache.root}")
        return 0
    entries = cache.entries()
    if args.json:
        print(json.dumps(entries, indent=1, default=str))
    else:
        print(f"{cache.root}: {len(entries)} cached backbone{'s' if len(entries) != 1 else ''}")
        print(format_entries(entries))
    return 0


# --------------------------------------------------------------------------- claims


def cmd_claims(args: argparse.Namespace) -> int:
    """Check every registered published claim: reproduced / not reproduced / needs device / needs dataset."""
    from evbench.harness.claims import run_claims

    return run_claims(args)


# --------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    """Train one method on a dataset's train split and save a checkpoint."""
    from evbench.harness.checks import check_writable_file
    from evbench.harness.data import open_dataset
    from evbench.harness.registry import create_method
    from evbench.harness.training import TrainSpec, save_checkpoint, seed_everything, train_method

    check_writable_file(args.out)  # before training, not after
    probe = open_dataset(args.data, split="train", frames=1, size=1, cache_dir=args.cache_dir)
    seed_everything(args.seed)  # initial weights follow --seed too
    from evbench.harness.checks import overrides_blamed

    overrides = _overrides(args)
    with overrides_blamed(args.method, args.config, overrides):  # a builder's ValueError on a --set value
        method = create_method(args.method, config=args.config, num_classes=len(probe.class_names), **overrides)
    from evbench.harness.checks import check_input_kind

    check_input_kind(method.card, probe, args.data)  # features for a pixel method, or the reverse
    ds = open_dataset(args.data, split="train", frames=method.card.frames, size=max(method.card.resolution, 1),
                      train=True, cache_dir=args.cache_dir)
    spec = TrainSpec(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    report = train_method(method, ds, spec, device=args.device, progress=not args.quiet)
    out = save_checkpoint(args.out, method, build={"method": args.method, "config": args.config,
                                                    "num_classes": len(probe.class_names), "overrides": _overrides(args)},
                          train={**spec.to_dict(), "data": args.data, "split": "train"},
                          class_names=probe.class_names, report=report)
    last = report.logs[-1] if report.logs else {}
    print(f"trained {args.method} [{args.config}] on {len(ds)} train clips of {ds.name} in {report.seconds:.1f} s; "
          f"last epoch: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float)))
    if report.skipped:
        print(f"{len(report.skipped)} clips skipped:", *(f"  {e['path']}: {e['error']}" for e in report.skipped), sep="\n")
    print(f"checkpoint: {out}")
    return 0


# --------------------------------------------------------------------------- run


def _default_out(suite: str) -> Path:
    return Path("runs") / f"{suite}-{time.strftime('%Y%m%d-%H%M%S')}"


def _latest_out(suite: str) -> Path | None:
    runs = sorted(Path("runs").glob(f"{suite}-*"))
    return runs[-1] if runs else None


def _executor(args: argparse.Namespace, cells: list, out: Path) -> Any:
    """The ``--executor`` of a run (serial by default; see :mod:`evbench.harness.executors`).

    Raises:
        SystemExit: A bad executor flag, a missing optional extra or a cell the executor cannot place.
    """
    from evbench.harness.executors import ExecutorError, make_executor, split_device

    kind = args.executor
    if kind != "ray" and args.address:
        raise SystemExit("evbench: --address: only with --executor ray")
    if kind != "slurm" and (args.slurm_partition or args.slurm_gpus_per_task):
        raise SystemExit("evbench: --slurm-partition/--slurm-gpus-per-task: only with --executor slurm")
    try:
        placed = sorted({c.device for c in cells if split_device(c.device)[1]})
        if placed and kind != "ray":
            raise ExecutorError(f"--device {','.join(placed)}: placement on a node resource needs --executor ray")
        executor = make_executor(kind, out=out, address=args.address, threads=args.threads,
                                 slurm_partition=args.slurm_partition, slurm_gpus_per_task=args.slurm_gpus_per_task)
        check = getattr(executor, "check_cells", None)
        try:
            if check is not None:
                check(cells)  # a resource no node offers: say so now, not hang
        except ExecutorError:
            executor.shutdown(wait=False)
            raise
    except ExecutorError as exc:
        raise SystemExit(f"evbench: {exc}") from None
    return executor


def _suite_name(args: argparse.Namespace) -> str:
    return args.suite or ("features" if args.train else "data" if args.data else "default")


def _run_out(args: argparse.Namespace) -> Path:
    """The run directory of ``evbench run``: ``--out``, the latest run with ``--resume``, or a new one."""
    from evbench.harness.suites import load_suite

    name = load_suite(_suite_name(args)).name
    if args.resume and not args.out:
        out = _latest_out(name)
        if out is None:
            raise SystemExit(f"evbench: nothing to resume under runs/{name}-*")
        return out
    return Path(args.out) if args.out else _default_out(name)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a suite: train, evaluate, profile every cell; write results and the report.

    The run directory is locked (:class:`~evbench.harness.rundir.RunLock`) before
    anything else, so a second run on it fails at once (exit 2, naming the
    holder's pid); a read-only or full ``--out`` is one line and exit 2; Ctrl-C
    is one line with the ``--resume`` command and exit 130 (128 + SIGINT).
    """
    from evbench.harness.results import ResultStore
    from evbench.harness.rundir import ResultStoreError, RunInterrupted, RunLock

    _check_run_inputs(args)  # before the run directory is created or locked
    out = _run_out(args)
    try:
        with RunLock(out):
            return _run_locked(args, out)
    except RunInterrupted as exc:  # Ctrl-C inside run_cells: it counted the cells kept
        print(f"evbench: {exc}; resume with `{_resume_command(args, out)}`", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # Ctrl-C before or after the cells (sweeps, report)
        kept = len(ResultStore(out).finished_ids()) if out.is_dir() else 0
        print(f"evbench: interrupted, {kept} cells kept in {out}; resume with `{_resume_command(args, out)}`",
              file=sys.stderr)
        return 130
    except ResultStoreError as exc:  # read-only / full --out, or another run holds it
        print(f"evbench: {exc}", file=sys.stderr)
        return 2


def _check_run_inputs(args: argparse.Namespace) -> None:
    """Refuse, before any cell runs, what would fail every cell: missing data, a bad feature file, no CUDA.

    ``--train/--test/--data`` must exist (``generated`` specs excepted); a
    ``.npz`` is opened (its header and labels only), so a file without
    ``features``/``labels`` or with a NaN / negative ``gmacs_per_frame`` is an
    error here; with the serial executor every ``--device`` must be
    available on this machine.

    Raises:
        DataError: Missing or unusable data (names the flag and the file).
        DeviceError: ``--device cuda`` without CUDA, or a GPU index this machine lacks.
    """
    from evbench.harness.checks import check_device
    from evbench.harness.data import open_dataset
    from evbench.harness.data.errors import DataError

    for flag in ("--train", "--test", "--data"):
        value = getattr(args, flag[2:], None)
        if not value or str(value).startswith("generated"):
            continue
        if not Path(value).exists():
            raise DataError(value, f"{flag}: no such file or directory")
        if str(value).endswith(".npz"):
            open_dataset(value, split="all", frames=1, size=1, cache_dir=args.cache_dir,
                         gmacs_per_frame=args.gmacs_per_frame)
    if getattr(args, "executor", "serial") == "serial":
        for device in args.device.split(","):
            check_device(device, available=True)


def _run_locked(args: argparse.Namespace, out: Path) -> int:
    """The body of :func:`cmd_run`, with ``out`` locked."""
    from evbench.harness.runner import knob_sweep, run_cells
    from evbench.harness.suites import load_suite

    suite = load_suite(_suite_name(args))
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    train_data, test_data, test_split = None, args.data, None
    if args.train:
        train_data = args.train
        if args.test:
            test_data, test_split = args.test, "all"
            suite.train_split = "all"
        else:
            test_data, test_split = args.train, "test"
    sweeps: dict[str, list[dict[str, Any]]] = {}
    for entry in suite.methods + [{"name": n} for n in (methods or [])]:
        if entry["name"] not in sweeps:
            sweeps[entry["name"]] = knob_sweep(entry["name"], entry.get("config", suite.default_config))
    from evbench.harness.data.layouts import dataset_collection

    sources = (dataset_collection(test_data) if test_data and not train_data else []) or [test_data]
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("torch", "onnxruntime")]
    if unknown:
        from evbench.harness.errors import UserError

        raise UserError(f"--backend {','.join(unknown)}: choose from torch, onnxruntime")
    measure = _measure_overrides(getattr(args, "measure", None))
    if getattr(args, "precision", None):
        measure["precision"] = args.precision
    cells = [c for src in sources for dev in devices for backend in backends
             for c in suite.cells(data=src, train_data=train_data, device=dev, methods=methods, knob_sweeps=sweeps,
                                  test_split=test_split, backend=backend, measure=measure)]
    from evbench.harness.checks import check_cells

    check_cells(cells, suite.path or suite.name)  # bad overrides / knobs: one error now, not N failed cells
    _check_run_gpu(cells, serial=getattr(args, "executor", "serial") == "serial")  # fp16 on a CPU, ONNX Runtime without its GPU provider: one error now
    print(f"suite {suite.name}: {len(cells)} cells -> {out}", file=sys.stderr)
    executor = _executor(args, cells, out)
    try:
        summary = run_cells(cells, out=out, resume=args.resume, progress=not args.quiet, cache_dir=args.cache_dir,
                            gmacs_per_frame=args.gmacs_per_frame, executor=executor)
    finally:
        executor.shutdown(wait=False)
    print(f"{summary.done} cells measured, {summary.skipped} already finished, {summary.failed} failed", file=sys.stderr)
    for f in summary.failures:
        print(f"  FAILED {f}", file=sys.stderr)
    from evbench.harness.devices.modeled import is_modeled_device

    if any(is_modeled_device(c.device) for c in cells):
        _attach_model_validation(out)
    if not args.no_report:
        from evbench.reports.html import write_report

        page = write_report(out, out / "report", title=f"evbench — {suite.name}")
        print(f"report: {page}")
    _print_summary(out)
    _print_store_notes(out, report=None if args.no_report else out / "report" / "index.html")
    return 0 if summary.failed == 0 else 3


def _check_run_gpu(cells: list, *, serial: bool = True) -> None:
    """Refuse a run whose cells ask for a precision or ONNX Runtime provider this machine cannot give.

    The provider is checked only when the cells run here (``serial``): a Ray
    or Slurm worker may have onnxruntime-gpu where the driver has not.

    Raises:
        SettingsError: ``--precision fp16`` on a CPU (or a modeled device's CPU
            evaluation), a lower precision on ONNX Runtime
            (:func:`evbench.harness.precision.check_precision`).
        OnnxBackendError: ``--backend onnxruntime`` on a ``cuda`` device without
            the CUDA execution provider (onnxruntime-gpu not installed).
    """
    from evbench.harness.executors import split_device
    from evbench.harness.precision import check_precision

    seen: set[tuple[str, str, str]] = set()
    for c in cells:
        key = (c.measure.precision, str(c.device), c.backend)
        if key in seen:
            continue
        seen.add(key)
        dev = split_device(c.device)[0]
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if dev.startswith("cuda") else None
        check_precision(c.measure.precision, c.device, backend=c.backend, providers=providers,
                        source=f"--precision (cell {c.label or c.method} on {c.device})")
        if c.backend == "onnxruntime" and providers and serial:
            from evbench.harness.onnx_backend import _check_providers

            _check_providers(providers)


#: Options of ``evbench run`` repeated in the ``--resume`` hint (with the defaults left out).
_RUN_OPTIONS = {"suite": None, "data": None, "methods": None, "train": None, "test": None, "gmacs_per_frame": None,
                "device": "cpu", "backend": "torch", "precision": None, "cache_dir": None, "threads": None,
                "executor": "serial",
                "address": None, "slurm_partition": None, "slurm_gpus_per_task": None}


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The ``evbench run ... --out DIR --resume`` command that continues an interrupted run."""
    import shlex

    parts = ["evbench", "run"]
    for name, default in _RUN_OPTIONS.items():
        value = getattr(args, name, None)
        if value is not None and value != default:
            parts += [f"--{name.replace('_', '-')}", str(value)]
    parts += [f"--{f.replace('_', '-')}" for f in ("quiet", "no_report") if getattr(args, f, False)]
    return shlex.join([*parts, "--out", str(out), "--resume"])


def _print_store_notes(out: Path, *, report: Path | None) -> None:
    """Console notes on a stored run: bad input files recorded in its rows, unreadable rows.

    Prints (stderr) e.g. ``evbench: 2 files failed to decode: a.mp4 (InvalidDataError: ...), b.mp4 (...);
    see <report>`` and ``evbench: 1 unreadable row in DIR/results.jsonl skipped (line 7: torn ...)``.
    """
    import warnings

    from evbench.harness.results import load

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted below instead of one warning per line
            df = load(out)
    except FileNotFoundError:
        return
    where = f"see {report}" if report is not None else f"see the data_errors of {out / 'results.jsonl'}"
    bad_files: dict[str, str] = {}
    for errs in df["data_errors"] if "data_errors" in df.columns else []:
        for e in errs if isinstance(errs, list) else []:
            if isinstance(e, dict) and e.get("path"):
                bad_files.setdefault(str(e["path"]), str(e.get("error", "")))
    if bad_files:
        shown = [f"{Path(p).name} ({err})" if err else Path(p).name for p, err in list(bad_files.items())[:3]]
        more = f", … {len(bad_files) - 3} more" if len(bad_files) > 3 else ""
        n = len(bad_files)
        print(f"evbench: {n} file{'s' if n != 1 else ''} failed to decode or load: {', '.join(shown)}{more}; {where}",
              file=sys.stderr)
    rows = df.attrs.get("unreadable_rows") or []
    if rows:
        first = ", ".join(f"{Path(b.path).name}:{b.line} {b.reason}" for b in rows[:3])
        more = f", … {len(rows) - 3} more" if len(rows) > 3 else ""
        n = len(rows)
        print(f"evbench: {n} unreadable row{'s' if n != 1 else ''} skipped ({first}{more})", file=sys.stderr)


def _attach_model_validation(out: Path) -> None:
    """Copy the stored CPU validation of the device model into a run with modeled cells (for its report)."""
    import shutil

    from evbench.harness.devices.modeled import VALIDATION_PATH

    if VALIDATION_PATH.is_file() and not (out / VALIDATION_PATH.name).exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VALIDATION_PATH, out / VALIDATION_PATH.name)
    elif not VALIDATION_PATH.is_file():
        print(f"evbench: no CPU validation of the device model at {VALIDATION_PATH} "
              "(run `evbench model-validate`); the report cannot show the model's error", file=sys.stderr)


def _print_summary(out: Path) -> None:
    import pandas as pd
    from evbench.harness.results import load

    try:
        df = load(out)
    except FileNotFoundError:
        return
    ok = df[df["status"] == "ok"] if "status" in df else df
    cols = [c for c in ("label", "dataset", "top1", "gmacs_per_video", "frames_used", "latency_ms_p50", "fps_offline") if c in ok]
    if ok.empty or not cols:
        return
    with pd.option_context("display.width", 160, "display.max_colwidth", 48):
        print(ok[cols].rename(columns={"top1": "top1 (0-1)", "gmacs_per_video": "GMACs/video",
                                      "latency_ms_p50": "p50 ms", "fps_offline": "FPS"}).to_string(index=False))


def cmd_report(args: argparse.Namespace) -> int:
    """Render the HTML report of a stored run."""
    from evbench.reports.html import write_report

    run_dir = Path(args.run)
    out = Path(args.out) if args.out else run_dir / "report"
    page = write_report(run_dir, out, title=args.title or f"evbench — {run_dir.name}")
    print(f"report: {page}")
    _print_store_notes(run_dir, report=page)
    return 0


# --------------------------------------------------------------------------- model-validate


def cmd_model_validate(args: argparse.Namespace) -> int:
    """Validate the modeled-device roofline on this CPU or a GPU (fit on some models, predict held-out ones)."""
    from evbench.harness.devices.modeled import VALIDATION_PATH, validate_device
    from evbench.harness.devices.modeled.validation import validation_filename

    device = getattr(args, "device", "cpu") or "cpu"
    precision = getattr(args, "precision", None) or ("fp16" if device.startswith("cuda") else "fp32")
    out = Path(args.out) if args.out else VALIDATION_PATH.parent
    out.mkdir(parents=True, exist_ok=True)
    result = validate_device(device=device, precision=precision, resolution=args.resolution,
                             threads=args.threads or 1,
                             progress=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
    path = out / validation_filename(device)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    s = result["summary"]
    print(f"held-out models: mean |error| {s['held_out_mean_abs_error_pct']:.1f} %, "
          f"max {s['held_out_max_abs_error_pct']:.1f} % (MODELED vs measured p50, {s['runtime']}, "
          f"{s['threads']} threads)")
    print(f"validation: {path}")
    return 0


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``evbench run: error: ... (see --help)``), exit 2."""

    def error(self, message: str) -> Any:  # noqa: D102 — argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: Numeric flags and the checked argparse type replacing their plain ``int``/``float``
#: (:func:`_check_flag_types`); a flag not listed keeps its type.
_FLAG_TYPES: dict[str, tuple[type, str]] = {
    "threads": (int, "positive_int"), "frames": (int, "positive_int"), "resolution": (int, "positive_int"),
    "clips": (int, "positive_int"), "min_queries": (int, "positive_int"), "batch_size": (int, "positive_int"),
    "epochs": (int, "positive_int"), "num_classes": (int, "positive_int"), "opset": (int, "positive_int"),
    "slurm_gpus_per_task": (int, "positive_int"), "seed": (int, "non_negative_int"),
    "lr": (float, "positive_float"), "min_duration": (float, "non_negative_float"),
    "max_seconds": (float, "positive_float"),
    "gmacs_per_frame": (float, "non_negative_float"),
}


def _check_flag_types(sub: Any) -> None:
    """Give every subcommand's flags checked types, so a bad value is a one-line usage error (exit 2).

    ``--threads/--frames/--resolution/--clips/--min-queries/--batch-size/--epochs/--num-classes``
    must be integers >= 1, ``--seed`` >= 0, ``--lr`` > 0, ``--min-duration`` and
    ``--gmacs-per-frame`` finite and >= 0 (:mod:`evbench.harness.checks`);
    ``--device`` must name a known device — and, for the commands that run
    here (``profile``, ``train``, ``export``), one available on this machine.
    Every subcommand also takes ``--debug`` (traceback of a user error).
    """
    from evbench.harness import checks

    for name, q in sub.choices.items():
        for action in q._actions:  # noqa: SLF001 — argparse keeps no public list
            spec = _FLAG_TYPES.get(action.dest)
            if spec is not None and action.type is spec[0]:
                action.type = getattr(checks, spec[1])
            elif action.dest == "device" and action.type is None:
                action.type = checks.devices_arg if name == "run" else checks.device_arg
        if not any(a.dest == "debug" for a in q._actions):  # noqa: SLF001
            q.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                           help="show the traceback of an error (also: evbench --debug CMD, EVBENCH_DEBUG=1)")


def build_parser() -> argparse.ArgumentParser:
    """The ``evbench`` argument parser."""
    from evbench.harness.settings import DEFAULT_SETTINGS as _DEFAULTS

    p = _Parser(prog="evbench", description="Benchmark and profile efficient video recognition methods.")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of a user error (bad flag, knob, file) instead of one line")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("methods", help="list registered methods and their cards")
    m.add_argument("--json", action="store_true", help="JSON: name, configurations and card of each method")
    m.add_argument("--config", default="paper", help="configuration whose card is shown (default paper)")
    m.add_argument("--num-classes", type=int, default=200, help="ignored: a card does not depend on the classes")
    m.set_defaults(func=cmd_methods)

    def add_build(q: argparse.ArgumentParser) -> None:
        q.add_argument("--method", required=True, help="registered method name (see `evbench methods`)")
        q.add_argument("--config", default="paper", help="configuration: paper, lite, ... (default paper)")
        q.add_argument("--backbone", help="override the backbone (e.g. resnet50, resnet18, mobilenet_v2, efficientnet_b0)")
        q.add_argument("--frames", type=int, help="override T, frames per clip")
        q.add_argument("--resolution", type=int, help="override the input resolution, px")
        q.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other builder override (repeatable)")
        q.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, or a modeled device "
                                                        "(jetson-nano-modeled, jetson-nano-5w-modeled, orin-nano-modeled); "
                                                        "default cpu")

    pr = sub.add_parser("profile", help="cost table, GMACs, executed MACs, latency p50/p90/p99, FPS, memory")
    add_build(pr)
    pr.add_argument("--knob", action="append", metavar="KEY=VALUE", help="inference knob (repeatable), e.g. force=224")
    pr.add_argument("--num-classes", type=int, help="classifier width (default: the --data classes, else 200 as "
                                                     "for ActivityNet)")
    pr.add_argument("--checkpoint", help="evbench checkpoint to load")
    pr.add_argument("--data", help="profile on real clips of this dataset instead of random inputs")
    pr.add_argument("--split", default="all", choices=("train", "test", "all"),
                    help="split of --data whose first --clips clips are profiled (default all)")
    pr.add_argument("--cache-dir", help="decoded-frame cache for --data (default ~/.cache/evbench)")
    pr.add_argument("--clips", type=int, default=4,
                    help="clips evaluated and cycled through by the latency queries (default 4)")
    pr.add_argument("--min-queries", type=int, help=f"latency queries at least (default {_DEFAULTS.min_queries})")
    pr.add_argument("--min-duration", type=float,
                    help=f"latency measurement at least this long, s (default {_DEFAULTS.min_duration_s:g})")
    pr.add_argument("--measure", action="append", metavar="KEY=VALUE",
                    help="any other measurement setting (repeatable), as in a suite's [measure] table: "
                         + ", ".join(_DEFAULTS.keys()))
    pr.add_argument("--threads", type=int, help="torch intra-op threads")
    pr.add_argument("--max-seconds", type=float,
                    help=f"time budget of the measurement, s (default {_DEFAULTS.max_seconds:g}): warm-up, latency "
                         "window, breakdown and offline batches shrink to fit, and the row says what was cut")
    pr.add_argument("--quiet", action="store_true", help="no progress bars (also off when stderr is not a terminal)")
    pr.add_argument("--no-offline", action="store_true", help="skip offline FPS")
    pr.add_argument("--no-crosscheck", action="store_true", help="skip the ptflops cross-check")
    pr.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                    help="torch eager, or ONNX Runtime with every costed module exported and the control flow in Python")
    pr.add_argument("--providers", help="ONNX Runtime execution providers, comma-separated: cpu, cuda, tensorrt "
                                        "(each with its fallbacks) or full names such as CUDAExecutionProvider "
                                        "(default CPUExecutionProvider; CUDA first with --device cuda)")
    pr.add_argument("--precision", choices=("fp32", "fp16", "bf16"),
                    help="fp32 (default), or fp16/bf16 through torch.autocast around evaluation and timing "
                         "(fp16 needs --device cuda; with --backend onnxruntime only fp16 with --providers tensorrt)")
    pr.add_argument("--bundle", help="with --backend onnxruntime: keep the exported bundle in this directory")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_profile)

    ex = sub.add_parser("export", help="export every module of a method to ONNX (a bundle for the device agent)")
    add_build(ex)
    ex.add_argument("--knob", action="append", metavar="KEY=VALUE", help="operating point of the recorded schedules")
    ex.add_argument("--num-classes", type=int, default=200)
    ex.add_argument("--checkpoint", help="evbench checkpoint to load")
    ex.add_argument("--data", help="record decision schedules on real clips of this dataset")
    ex.add_argument("--clips", type=int, default=4, help="clips whose decision schedules are recorded (default 4)")
    ex.add_argument("--out", required=True, help="bundle directory")
    ex.add_argument("--opset", type=int, default=13,
                    help="ONNX opset (default 13: loads in JetPack 4.6's onnxruntime 1.11 and TensorRT 8.2)")
    ex.set_defaults(func=cmd_export)

    cl = sub.add_parser("claims", help="check published claims: reproduced / not reproduced / needs device / needs dataset")
    cl.add_argument("--json", action="store_true", help="JSON list of claims with paper, verdict, measured value")
    cl.add_argument("--paper", help="only claims of this paper key (e.g. rsee, arnet)")
    cl.add_argument("--out", help="also store the verdicts in this run directory (claims.jsonl) for the HTML report")
    cl.add_argument("--results", help="a stored run whose rows can answer accuracy / latency claims")
    cl.add_argument("--registry", help="claims TOML to check instead of the shipped harness/claims.toml")
    cl.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: GMAC counts do not depend on it, and on a shared, "
                         "loaded CPU more threads can make the forwards far slower; latency illustrations record it)")
    cl.add_argument("--no-realised", action="store_true",
                    help="skip timing the realised speed-ups of compute-saving claims (their rows say not measured)")
    cl.add_argument("--queries", type=int, default=None,
                    help="timed latency queries per realised schedule (default 7; recorded in each row)")
    cl.add_argument("--max-seconds", type=float, default=None,
                    help="time budget of each realised schedule's measurement, s (default 150; warm-up and latency "
                         "window shrink to fit and the row says so)")
    cl.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    cl.add_argument("--device", default="cpu",
                    help="where the realised speed-ups are timed: cpu (default), cuda, cuda:N (GMACs do not depend on it)")
    cl.set_defaults(func=cmd_claims)

    mv = sub.add_parser("model-validate", help="validate the modeled-device roofline on this CPU "
                                               "(measured vs modeled batch-1 latency of held-out torchvision models)")
    mv.add_argument("--out", help="directory for cpu-validation.json (default: the package's harness/devices, read by every modeled cell)")
    mv.add_argument("--resolution", type=int, default=128, help="input side, px (default 128)")
    mv.add_argument("--threads", type=int, help="torch intra-op threads, recorded (default 1)")
    mv.add_argument("--device", default="cpu", help="cpu (default; cpu-validation.json, read by every modeled "
                                                     "cell) or cuda[:N] (cuda-validation.json: the model checked "
                                                     "on an attached GPU)")
    mv.add_argument("--precision", choices=("fp32", "fp16"),
                    help="weights and inputs (default fp32 on cpu, fp16 on cuda: the Jetson runtime pytorch-fp16)")
    mv.add_argument("--quiet", action="store_true")
    mv.set_defaults(func=cmd_model_validate)

    t = sub.add_parser("train", help="train a method on a dataset's train split")
    add_build(t)
    t.add_argument("--data", default="generated", help="dataset: generated, a directory, a TSN list or a .npz")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="checkpoint path (.pt)")
    t.add_argument("--cache-dir", help="decoded-frame cache (default ~/.cache/evbench)")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice, all cores)")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("run", help="run a suite and write results + report")
    r.add_argument("--suite", help="suite name in bench/suites or a TOML path (default: default; "
                                   "features with --train; data with --data)")
    r.add_argument("--data", help="test dataset: a folder-per-class tree of videos or frame folders, UCF101/HMDB51 layout")
    r.add_argument("--methods", help="comma-separated method names to keep/add")
    r.add_argument("--train", help="feature file (.npz) to train on")
    r.add_argument("--test", help="feature file (.npz) to test on (default: stratified 20 %% carve-out of --train)")
    r.add_argument("--gmacs-per-frame", type=float,
                   help="declared GMACs to produce one input feature frame, when the .npz has no gmacs_per_frame "
                        "(the shared VGG16 file: 77.35 = 5 crops x 15.47, the features configuration's default)")
    r.add_argument("--out", help="run directory (default runs/<suite>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue a run; finished cells are not repeated")
    r.add_argument("--device", default="cpu",
                   help="device(s), comma-separated: cpu, cuda, cuda:1, or a modeled device such as "
                        "jetson-nano-modeled (accuracy and GMACs measured here, latency MODELED); default cpu")
    r.add_argument("--backend", default="torch",
                   help="backend(s), comma-separated: torch, onnxruntime (costed modules in ONNX Runtime, control "
                        "flow in Python); several give side-by-side cells sharing one trained model")
    r.add_argument("--cache-dir", help="decoded-frame cache and generated data (default ~/.cache/evbench)")
    r.add_argument("--precision", choices=("fp32", "fp16", "bf16"),
                   help="numeric precision of every cell (a [measure] setting, part of the cell id): fp32 (default), "
                        "fp16 or bf16 through torch.autocast around evaluation and timing; fp16 needs a CUDA "
                        "device, bf16 also runs on a CPU")
    r.add_argument("--measure", action="append", metavar="KEY=VALUE",
                   help="override a measurement setting of the suite's [measure] table (repeatable; part of every "
                        "cell id): " + ", ".join(_DEFAULTS.keys()))
    r.add_argument("--no-report", action="store_true")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--threads", type=int, help="torch intra-op threads for training and timing (recorded in every row); "
                                                "1 avoids OpenMP oversubscription on a shared, loaded machine")
    r.add_argument("--executor", choices=("serial", "ray", "slurm"), default="serial",
                   help="where cells run: serial (this process, default), ray (one Ray task a cell; "
                        'pip install "evbench[ray]"), slurm (one submitit job a cell; pip install "evbench[slurm]")')
    r.add_argument("--address", help="--executor ray: Ray cluster to join, auto or HOST:PORT "
                                     "(default: start a local Ray instance)")
    r.add_argument("--slurm-partition", help="--executor slurm: partition of the job arrays")
    r.add_argument("--slurm-gpus-per-task", type=int, help="--executor slurm: GPUs of a cuda cell's job (default 1)")
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("report", help="render the HTML report of a run directory")
    rp.add_argument("run", help="run directory (holding results.jsonl)")
    rp.add_argument("--out", help="report directory (default RUN/report)")
    rp.add_argument("--title")
    rp.set_defaults(func=cmd_report)
    # history, compare, nightly; --history on run and report
    from evbench.harness import cli_nightly

    ca = sub.add_parser("cache", help="list or clear the cached TSN backbones methods start from")
    ca.add_argument("action", choices=("list", "clear"), help="list: key, backbone, dataset, recipe, size, created")
    ca.add_argument("--cache-dir", help="cache root (default $EVBENCH_CACHE or ~/.cache/evbench)")
    ca.add_argument("--json", action="store_true", help="list: the entries' metadata as JSON")
    ca.set_defaults(func=cmd_cache)
    cli_nightly.add_parsers(sub, run=r, report=rp)
    _check_flag_types(sub)
    return p


class UsageExit(SystemExit):
    """``SystemExit(2)`` for a command's ``raise SystemExit("evbench: ...")`` message (already printed).

    ``str()`` is the message, so callers matching it (``pytest.raises(SystemExit, match=...)``) still can.
    """

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evbench`` console script.

    Returns:
        The exit status: 0 ok, 2 a user error — one line ``evbench: <file, flag
        or key>: <what is wrong>`` on stderr and no traceback (``--debug`` or
        ``EVBENCH_DEBUG=1`` prints it first) — or the command's own status
        (3: a run with failed cells, 130: interrupted).  A user error is an
        :class:`evbench.harness.errors.UserError` or one of
        :func:`evbench.harness.errors.user_error_types`, a missing or
        existing file (``FileNotFoundError``/``FileExistsError``), or a
        command's ``SystemExit("evbench: ...")`` (re-raised as
        :class:`UsageExit`, status 2).  Any other exception is a bug and
        keeps its traceback.
    """
    import os
    import traceback

    from evbench.harness.errors import one_line, user_error_types

    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("EVBENCH_DEBUG", "") not in ("", "0")
    try:
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return int(args.func(args) or 0)
    except (*user_error_types(), FileExistsError, FileNotFoundError) as exc:
        if debug:
            traceback.print_exc()
        print(f"evbench: {one_line(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        if not isinstance(exc.code, str) or isinstance(exc, UsageExit):
            raise
        if debug:
            traceback.print_exc()
        text = one_line(Exception(exc.code))
        print(text if text.startswith("evbench") else f"evbench: {text}", file=sys.stderr)
        raise UsageExit(exc.code) from None


if __name__ == "__main__":
    raise SystemExit(main())
