"""``evbench claims``: measure, judge, print and store every registered claim."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from evbench.harness.claims.format import format_realised, format_text
from evbench.harness.claims.measure import check_claims
from evbench.harness.claims.realised import RealisedSettings
from evbench.harness.claims.registry import load_registry
from evbench.harness.claims.schema import ClaimRegistryError
from evbench.harness.claims.store import append_rows

__all__ = ["run_claims"]


def run_claims(args: Any) -> int:
    """``evbench claims``: measure, judge and print every registered claim.

    Args:
        args: Parsed arguments with ``json`` (print a JSON list of rows),
            ``paper`` (only this paper key, or None), ``out`` (append the rows
            to ``OUT/claims.jsonl`` for the HTML report, or None), ``results``
            (a stored run answering accuracy / per-video-cost / FPS claims, or
            None) and optionally ``registry`` (another TOML file),
            ``threads`` (torch intra-op threads for the run), ``no_realised``
            (skip timing the realised speed-ups), ``queries`` (timed queries
            per realised schedule) and ``max_seconds`` (time budget of each
            realised schedule's measurement, s), ``device`` (where the
            realised schedules are timed: cpu, cuda[:N]).

    Returns:
        0; 2 when the registry is malformed or missing (the message, printed
        to stderr, names the claim id), ``--paper`` names no paper of it,
        ``--results`` holds no results file, or ``--queries`` /
        ``--max-seconds`` is not positive.
    """
    try:
        claims = load_registry(getattr(args, "registry", None))
    except (ClaimRegistryError, FileNotFoundError) as exc:
        print(f"evbench claims: {exc}", file=sys.stderr)
        return 2
    if args.paper:
        keys = sorted({c.paper.key for c in claims})
        claims = [c for c in claims if c.paper.key == args.paper.lower()]
        if not claims:
            print(f"evbench claims: no claims of paper {args.paper!r}; papers: {', '.join(keys)}", file=sys.stderr)
            return 2
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    results = None
    if args.results:
        from evbench.harness.results import load

        try:
            results = load(args.results)
        except FileNotFoundError as exc:
            print(f"evbench claims: --results: {exc}", file=sys.stderr)
            return 2
    realised = None
    if not getattr(args, "no_realised", False):
        defaults = RealisedSettings()
        queries = getattr(args, "queries", None)
        max_s = getattr(args, "max_seconds", None)
        try:
            realised = RealisedSettings(queries=int(queries) if queries is not None else defaults.queries,
                                        max_seconds=float(max_s) if max_s is not None else defaults.max_seconds,
                                        device=str(getattr(args, "device", None) or "cpu"))
        except ValueError as exc:
            print(f"evbench claims: --queries / --max-seconds / --device: {exc}", file=sys.stderr)
            return 2
    quiet = bool(getattr(args, "quiet", False))
    t0 = time.perf_counter()
    rows = check_claims(claims, results=results, results_path=args.results, realised=realised,
                        log=None if quiet else (lambda line: print(line, file=sys.stderr, flush=True)))
    elapsed = time.perf_counter() - t0
    if args.out:
        from evbench.harness.env import fingerprint

        path = append_rows(args.out, rows, {"checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                            "env": fingerprint(device="cpu", backend="torch")})
        print(f"claims: {len(rows)} verdict rows appended to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(format_text(rows))
        table = format_realised(rows)
        if table:
            print()
            print(table)
        print(f"checked in {elapsed:.1f} s")
    return 0
