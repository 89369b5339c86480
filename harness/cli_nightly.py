"""Nightly subcommands: ``history``, ``compare``, ``nightly``, and ``--history`` on ``run`` / ``report``.

Hooked into :func:`evbench.harness.cli.build_parser` by :func:`add_parsers`.
Exit codes: 0 ok; 1 a ``--fail-on`` condition matched (a regression, or any
change); 2 bad input (a missing history, a file that is not a run, a bad
flag value — one line naming it); 3 the run had failed cells (``nightly``
without a matching ``--fail-on``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "cmd_compare", "cmd_history", "cmd_nightly"]

_HISTORY_HELP = "history folder (holds history.duckdb; default $EVBENCH_HISTORY)"


def _fail(msg: str) -> int:
    print(f"evbench: {msg}", file=sys.stderr)
    return 2


def _history_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "history", None) or os.environ.get("EVBENCH_HISTORY")
    return Path(value) if value else None


def _settings(args: argparse.Namespace) -> Any:
    from evbench.harness.compare import CompareSettings

    floor = getattr(args, "effect_floor", 0.10)
    alpha = getattr(args, "alpha", 0.002)
    if not (isinstance(floor, float) and math.isfinite(floor) and 0 <= floor < 1):
        raise ValueError(f"--effect-floor must be a fraction in [0, 1) (0.10 = 10 %), got {floor}")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ValueError(f"--alpha must be in (0, 1), got {alpha}")
    return CompareSettings(effect_floor=floor, alpha=alpha, include_noisy=bool(getattr(args, "include_noisy", False)))


# --------------------------------------------------------------------------- history


def cmd_history(args: argparse.Namespace) -> int:
    """``evbench history add|add-bench|list``: add runs / pytest-benchmark JSON to the history, or list it."""
    from evbench.harness.history import History, HistoryError

    root = _history_dir(args)
    if root is None:
        return _fail(f"history {args.action}: give --history DIR (or set EVBENCH_HISTORY)")
    try:
        if args.action == "list":
            with History(root, read_only=True) as h:
                runs = h.runs()
            if args.json:
                print(runs.to_json(orient="records", date_format="iso"))
            else:
                print(runs.to_string(index=False) if len(runs) else "(no runs)")
            return 0
        from evbench.harness.history import bench_data, run_data

        datas = [run_data(src) if args.action == "add" else bench_data(src) for src in args.sources]
        with History(root) as h:
            statuses = h.add_many(datas)  # one transaction: all sources or none
        for src, data, status in zip(args.sources, datas, statuses, strict=True):
            print(f"{status:9s} {data.run['run_id']}  {src}")
    except HistoryError as exc:
        return _fail(str(exc))
    return 0


def add_run_to_history(run_dir: str | os.PathLike[str], root: str | os.PathLike[str]) -> tuple[str, str]:
    """Add a finished run directory to the history at ``root``; returns ``(run_id, status)``.

    Raises:
        evbench.harness.history.HistoryError: Not a run directory, or the history is in use.
    """
    from evbench.harness.history import History

    with History(root) as h:
        return h.add_run(run_dir)


# --------------------------------------------------------------------------- compare


def _load_side(spec: str, root: Path | None) -> Any:
    from evbench.harness.history import History, HistoryError, run_data

    p = Path(spec)
    if p.exists():
        return run_data(p)
    if root is None:
        raise HistoryError(f"{spec}: no such run directory (give --history DIR to name a stored run by its id)")
    with History(root, read_only=True) as h:
        return h.run(spec)


def _emit(result: Any, args: argparse.Namespace, header: str, base: Any, new: Any) -> None:
    from evbench.harness.compare import format_table

    if getattr(args, "json", False):
        records = json.loads(result.to_json(orient="records", default_handler=str))
        print(json.dumps({"base": _run_info(base), "new": _run_info(new),
                          "settings": {"effect_floor": args.effect_floor, "alpha": args.alpha,
                                       "include_noisy": bool(args.include_noisy)},
                          "regressions": int(result["regression"].sum()) if len(result) else 0,
                          "cells": records}, indent=2, default=str))
    else:
        print(header)
        print(format_table(result))


def history_noise(root: Path | None, base: Any, new: Any, settings: Any) -> dict[Any, Any] | None:
    """Between-run latency spread per cell from the history at ``root``, over the runs up to BASE.

    Runs after BASE, and NEW itself, are left out, so the floor only knows what
    was known before the night under test. None without a history.
    """
    if root is None or not (Path(root) / "history.duckdb").exists():
        return None
    from evbench.harness.compare import between_run_noise
    from evbench.harness.history import History

    with History(root, read_only=True) as h:
        runs = h.runs()
        new_id, base_id = new.run.get("run_id"), base.run.get("run_id")
        ids = runs["run_id"].tolist()
        if base_id in ids:
            ids = ids[: ids.index(base_id) + 1]
        ids = [i for i in ids if i != new_id]
        cells = h.cells(ids)
    return between_run_noise(cells, min_runs=settings.min_history)


def _run_info(data: Any) -> dict[str, Any]:
    return {k: (str(v) if v is not None else None) for k, v in data.run.items() if k in ("run_id", "source", "commit", "time")}


def cmd_compare(args: argparse.Namespace) -> int:
    """``evbench compare BASE NEW``: one verdict per cell; exit 1 when ``--fail-on`` matches."""
    from evbench.harness.compare import compare, fails
    from evbench.harness.history import HistoryError

    try:
        settings = _settings(args)
        root = _history_dir(args)
        base, new = _load_side(args.base, root), _load_side(args.new, root)
        noise = history_noise(root, base, new, settings)
    except (ValueError, HistoryError) as exc:
        return _fail(str(exc))
    result = compare(base, new, settings, noise)
    _emit(result, args, f"BASE {base.run['run_id']} ({base.run.get('source')})\n"
                        f"NEW  {new.run['run_id']} ({new.run.get('source')})", base, new)
    return 1 if fails(result, args.fail_on) else 0


# --------------------------------------------------------------------------- run / report hooks


def _suite_name(args: argparse.Namespace) -> str:
    from evbench.harness.suites import load_suite

    return load_suite(args.suite or ("features" if args.train else "data" if args.data else "default")).name


def _wrap_run(original: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def cmd_run_with_history(args: argparse.Namespace) -> int:
        """``evbench run`` and, with ``--history DIR``, add the finished run to the history."""
        root = getattr(args, "history", None)
        if root and not args.out:  # the run directory must be known to add it afterwards
            from evbench.harness import cli

            name = _suite_name(args)
            latest = cli._latest_out(name) if args.resume else None
            args.out = str(latest or cli._default_out(name))
        rc = original(args)
        if root:
            from evbench.harness.history import HistoryError

            try:
                rid, status = add_run_to_history(args.out, root)
            except HistoryError as exc:
                print(f"evbench: run not added to the history: {exc}", file=sys.stderr)
                return rc or 2
            print(f"history: {status} run {rid} -> {Path(root) / 'history.duckdb'}", file=sys.stderr)
        return rc

    return cmd_run_with_history


def render_history_report(root: str | os.PathLike[str], out_dir: str | os.PathLike[str], args: argparse.Namespace) -> Path:
    """Trend pages of the history at ``root`` into ``out_dir`` (see :func:`evbench.reports.trends.write_trends`)."""
    from evbench.reports.trends import write_trends

    return write_trends(root, out_dir, include_noisy=bool(getattr(args, "include_noisy", False)),
                        commit_url=getattr(args, "commit_url", None) or os.environ.get("EVBENCH_COMMIT_URL"),
                        settings=_settings(args))


def _wrap_report(original: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def cmd_report_with_history(args: argparse.Namespace) -> int:
        """``evbench report [RUN] [--history DIR]``: the run's report, and trend pages of the history."""
        from evbench.harness.history import HistoryError

        root = getattr(args, "history", None)
        if args.run is None and not root:
            return _fail("report: give a run directory, or --history DIR for the trend pages")
        if root:
            where = (Path(args.out) if args.out else Path(args.run) / "report") / "trends" if args.run \
                else Path(args.out) if args.out else Path(root) / "trends"
            try:
                page = render_history_report(root, where, args)
            except (HistoryError, ValueError) as exc:
                return _fail(str(exc))
            print(f"trends: {page}")
        return original(args) if args.run is not None else 0

    return cmd_report_with_history


# --------------------------------------------------------------------------- nightly


def _previous_comparable(root: Path, new_id: str) -> str | None:
    """The latest run before ``new_id`` sharing a (cell id, machine key) with it."""
    from evbench.harness.history import History

    with History(root, read_only=True) as h:
        hist = h.cells()
    if hist.empty:
        return None
    runs = hist.drop_duplicates("run_id").sort_values(["run_time", "run_added"])["run_id"].tolist()
    mine = hist[hist["run_id"] == new_id]
    keys = set(zip(mine["cell_id"], mine["machine_key"], strict=False))
    for rid in reversed(runs):
        if rid == new_id:
            continue
        sub = hist[hist["run_id"] == rid]
        if keys & set(zip(sub["cell_id"], sub["machine_key"], strict=False)):
            return rid
    return None


def cmd_nightly(args: argparse.Namespace) -> int:
    """``evbench nightly --history DIR``: run the nightly suite, add it, compare with the previous comparable night,
    render the trend pages; exit 1 on a regression (``--fail-on``)."""
    import time

    from evbench.harness import cli
    from evbench.harness.compare import compare, fails
    from evbench.harness.history import History, HistoryError

    root = _history_dir(args)
    if root is None:
        return _fail("nightly: give --history DIR (or set EVBENCH_HISTORY)")
    try:
        settings = _settings(args)
    except ValueError as exc:
        return _fail(str(exc))
    from evbench.harness.suites import SuiteError, load_suite

    try:
        suite_name = load_suite(args.suite).name
    except SuiteError as exc:
        return _fail(str(exc))
    out = Path(args.out) if args.out else root / "runs" / f"{suite_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    argv = ["run", "--suite", args.suite, "--out", str(out), "--no-report", "--history", str(root)]
    argv += ["--data", args.data] if args.data else []
    argv += ["--threads", str(args.threads)] if args.threads else []
    argv += ["--quiet"] if args.quiet else []
    argv += ["--resume"] if args.resume else []
    run_args = cli.build_parser().parse_args(argv)
    rc = int(run_args.func(run_args) or 0)
    if not (out / "results.jsonl").exists():
        return rc or 2
    try:
        with History(root, read_only=True) as h:
            new = h.run(h.run_id_of(out))
        base_id = _previous_comparable(root, new.run["run_id"])
        result = None
        if base_id is None:
            print("nightly: first night on this machine key — nothing to compare with yet")
        else:
            with History(root, read_only=True) as h:
                base = h.run(base_id)
            result = compare(base, new, settings, history_noise(root, base, new, settings))
            (out / "compare.json").write_text(result.to_json(orient="records", indent=2, default_handler=str) + "\n")
            _emit(result, args, f"nightly: {new.run['run_id']} vs previous comparable night {base_id}", base, new)
        page = render_history_report(root, out / "report" / "trends", args)
    except HistoryError as exc:
        return _fail(str(exc))
    from evbench.reports.html import write_report

    index = write_report(out, out / "report", title=f"evbench — {suite_name} night {out.name}")
    print(f"report: {index}\ntrends: {page}")
    if result is not None and fails(result, args.fail_on):
        return 1
    return rc


# --------------------------------------------------------------------------- parser


def _add_compare_flags(p: argparse.ArgumentParser, *, fail_default: str | None) -> None:
    p.add_argument("--fail-on", choices=("regression", "any"), default=fail_default,
                   help="exit 1 when a cell regressed (slower, accuracy down, more GMACs, newly failed) or, with "
                        "'any', when any cell is not 'no change'" + (f" (default {fail_default})" if fail_default else ""))
    p.add_argument("--effect-floor", type=float, default=0.10,
                   help="relative p50 change below which latency is 'no change' (default 0.10 = 10 %%, as asv)")
    p.add_argument("--alpha", type=float, default=0.002,
                   help="Mann-Whitney U significance level for latency (default 0.002, as asv)")
    p.add_argument("--include-noisy", action="store_true",
                   help="judge latency of timed windows flagged noisy (other processes used CPU) too")


def add_parsers(sub: argparse._SubParsersAction, *, run: argparse.ArgumentParser | None = None,
                report: argparse.ArgumentParser | None = None) -> None:
    """Add ``history``, ``compare`` and ``nightly`` to ``sub``; add ``--history`` to ``run`` and ``report``.

    ``report``'s positional ``run`` becomes optional (``evbench report --history DIR``
    renders the trend pages alone).
    """
    h = sub.add_parser("history", help="add runs (or pytest-benchmark JSON) to a run history, or list it")
    hs = h.add_subparsers(dest="action", required=True)
    for name, what in (("add", "evbench run directories"), ("add-bench", "pytest-benchmark JSON files "
                                                                         "(--benchmark-autosave / --benchmark-json)")):
        q = hs.add_parser(name, help=f"add {what} to the history")
        q.add_argument("sources", nargs="+", metavar="SOURCE", help=what)
        q.add_argument("--history", help=_HISTORY_HELP)
        q.set_defaults(func=cmd_history)
    q = hs.add_parser("list", help="list the runs in the history")
    q.add_argument("--history", help=_HISTORY_HELP)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_history)

    c = sub.add_parser("compare", help="compare two runs cell by cell: faster / slower / no change / accuracy up, "
                                       "down / cost changed / not comparable")
    c.add_argument("base", help="BASE run directory (or a run id of --history)")
    c.add_argument("new", help="NEW run directory (or a run id of --history)")
    c.add_argument("--history", help="history folder: name runs by id, and raise each cell's latency floor to its "
                                   "run-to-run spread over the runs up to BASE (>= 5 runs)")
    c.add_argument("--json", action="store_true", help="JSON: settings, both runs and one record per cell")
    _add_compare_flags(c, fail_default=None)
    c.set_defaults(func=cmd_compare)

    n = sub.add_parser("nightly", help="run the nightly suite, add it to the history, compare with the previous "
                                       "comparable night, render the trend pages; exit 1 on a regression")
    n.add_argument("--history", help=_HISTORY_HELP)
    n.add_argument("--suite", default="nightly", help="suite name or TOML path (default nightly)")
    n.add_argument("--data", help="test dataset instead of the suite's")
    n.add_argument("--out", help="run directory (default HISTORY/runs/<suite>-<time>)")
    n.add_argument("--resume", action="store_true", help="continue an interrupted night (with --out)")
    n.add_argument("--threads", type=int, help="torch intra-op threads (recorded; part of the machine key)")
    n.add_argument("--quiet", action="store_true")
    n.add_argument("--json", action="store_true", help="print the comparison as JSON")
    n.add_argument("--commit-url", help="commit link template with {commit} for the trend pages "
                                        "(default $EVBENCH_COMMIT_URL, else the page's table of runs)")
    _add_compare_flags(n, fail_default="regression")
    n.set_defaults(func=cmd_nightly)

    if run is not None:
        run.add_argument("--history", help="add the finished run to this history folder (history.duckdb)")
        run.set_defaults(func=_wrap_run(run.get_default("func")))
    if report is not None:
        for action in report._actions:
            if action.dest == "run":
                action.nargs, action.default = "?", None
        report.add_argument("--history", help="also render the trend pages of this history folder "
                                              "(RUN/report/trends, or HISTORY/trends without RUN)")
        report.add_argument("--commit-url", help="commit link template with {commit} for the trend pages")
        report.add_argument("--include-noisy", action="store_true",
                            help="keep noisy timing windows in step detection and the latest-night comparison")
        report.set_defaults(func=_wrap_report(report.get_default("func")), effect_floor=0.10, alpha=0.002)
