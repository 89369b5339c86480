"""Where the milliseconds of a query go: the latency breakdown by costed module role.

A method declares the modules it may execute (:meth:`evbench.harness.api.Method.cost_entries`),
each with a role (``backbone``, ``policy``, ``head``, ``input``).  :func:`measure_breakdown`
hooks every costed module that is a submodule of the method (``register_forward_pre_hook``
/ ``register_forward_hook``; ONNX Runtime's :class:`~evbench.harness.onnx_backend.OrtModule`
stand-ins are ``nn.Module`` s at the same paths, so the hooks see them too), then issues
queries exactly like the single-stream latency loop and splits each query's wall time into

* the time inside each role's modules — only the **outermost** costed module active at a
  time is counted, so a costed module nested in another (a classifier inside a backbone
  entry) is never counted twice;
* ``other`` — everything between them: Python control flow of the method, framework
  dispatch, tensor glue (``cat``/``mean`` outside costed modules), and the harness's own
  query wrapper.

The hooked queries are a *separate* set run after the latency window, so the hooks never
perturb the reported p50.  ``other`` is accumulated from the gaps between hook events
on the same clock as the module spans (not as "mean minus modules"), so the sum of the
parts is an independent estimate of the query's wall time, compared to the outer
per-query timer's mean (:data:`SUM_TOLERANCE`).

Clock: ``time.perf_counter_ns`` on CPU.  On CUDA each hook event records a
``torch.cuda.Event(enable_timing=True)`` on the current stream instead (no synchronisation
inside the query); at the end of the query the device is synchronised once and each span
is the ``elapsed_time`` between consecutive events — the GPU timeline, the same clock as
the single-stream latency on CUDA (:func:`evbench.harness.timing.measure_latency`).  A span
in which the GPU waited for the host (Python control flow, ``.item()`` decisions) counts as
the role's time as it does in the query's latency.  The hooked queries' mean is taken from
the first to the last event of each query, so on CUDA the parts sum to it exactly.

:func:`harness_overhead_ms` is the harness's own cost per query: the same timer loop
(:func:`evbench.harness.timing.measure_latency`) and the same query wrapper around a
method that does nothing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["SUM_TOLERANCE", "costed_modules", "RoleTimer", "measure_breakdown", "harness_overhead_ms",
           "make_query", "OTHER"]

#: Relative tolerance within which the parts must sum to the hooked queries' mean (5 %).
SUM_TOLERANCE = 0.05
#: The key of the time spent outside every costed module.
OTHER = "other"


def costed_modules(method: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """The costed submodules of ``method``: ``(dotted path, module, role)``, each module once.

    Entries whose name is not a submodule (declared costs that run outside
    the method, e.g. the CNN behind pre-extracted features) are skipped; a
    module listed at several input shapes keeps the role of its first entry.

    Args:
        method: A :class:`~evbench.harness.api.Method` (or its ONNX Runtime copy).

    Returns:
        The hookable modules in cost-entry order.
    """
    out: list[tuple[str, nn.Module, str]] = []
    seen: set[int] = set()
    for entry in method.cost_entries():
        try:
            sub = method.get_submodule(entry.module)
        except AttributeError:
            continue
        if not isinstance(sub, nn.Module) or id(sub) in seen or sub is method:
            continue
        seen.add(id(sub))
        out.append((entry.module, sub, entry.role))
    return out


class RoleTimer:
    """Forward hooks that attribute wall time to the role of the outermost active costed module.

    Use as a context manager (hooks are removed on exit); call :meth:`begin`
    before and :meth:`end` after each query.  Times are integer nanoseconds
    accumulated per role in :attr:`ns`; :attr:`ns` ``["other"]`` holds the
    gaps between hook events within queries.

    Args:
        modules: ``(name, module, role)`` as from :func:`costed_modules`.
        device: Where the method runs; on CUDA every event is a recorded
            ``torch.cuda.Event``, resolved at :meth:`end` (one synchronise per query).
        clock: Integer-nanosecond clock (default ``time.perf_counter_ns``; CPU only).

    Attributes:
        last_query_ns: Span of the last query (:meth:`begin` to :meth:`end`), ns,
            on the same clock as the parts.
    """

    def __init__(self, modules: Sequence[tuple[str, nn.Module, str]], *, device: torch.device | str = "cpu",
                 clock: Callable[[], int] | None = None) -> None:
        self.modules = list(modules)
        self.device = torch.device(device)
        self.clock = clock or time.perf_counter_ns
        self.ns: dict[str, int] = {role: 0 for _, _, role in self.modules}
        self.ns[OTHER] = 0
        self.calls: dict[str, int] = {role: 0 for _, _, role in self.modules}
        self._depth = 0
        self._mark = 0
        self._start = 0
        self._handles: list[Any] = []
        self._cuda = self.device.type == "cuda"
        self._events: list[tuple[Any, str | None]] = []  # CUDA: (event, role of the span ending at it)
        self.last_query_ns = 0

    def _span(self, role: str | None) -> None:
        """Close the span since the last mark as ``role``'s time (``None``: open the first mark)."""
        if self._cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self._events.append((ev, role))
            return
        now = self.clock()
        if role is not None:
            self.ns[role] += now - self._mark
        self._mark = now

    def _pre(self, role: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: Any) -> None:
            if self._depth == 0:
                self._span(OTHER)
            self._depth += 1

        return hook

    def _post(self, role: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: Any, _out: Any) -> None:
            self._depth -= 1
            if self._depth == 0:
                self._span(role)
                self.calls[role] += 1

        return hook

    def __enter__(self) -> RoleTimer:
        for _, mod, role in self.modules:
            self._handles.append(mod.register_forward_pre_hook(self._pre(role)))
            self._handles.append(mod.register_forward_hook(self._post(role), always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def begin(self) -> None:
        """Start a query (the time until the first costed module is ``other``)."""
        self._depth = 0
        self._events = []
        self._span(None)
        self._start = self._mark

    def end(self) -> None:
        """End a query (the time since the last costed module returned is ``other``).

        On CUDA: synchronises once and adds each span between consecutive events.
        """
        self._span(OTHER)
        if not self._cuda:
            self.last_query_ns = self._mark - self._start
            return
        torch.cuda.synchronize(self.device)
        total = 0
        for (prev, _), (ev, role) in zip(self._events, self._events[1:], strict=False):
            ns = int(round(float(prev.elapsed_time(ev)) * 1e6))
            self.ns[role or OTHER] += ns
            total += ns
        self.last_query_ns = total
        self._events = []


def make_query(method: Callable[..., Any], xs: Sequence[torch.Tensor], knobs: Mapping[str, Any]) -> Callable[[], None]:
    """The single-stream query wrapper of the harness: one inference-mode call on the next clip of ``xs``.

    Args:
        method: The method (or a no-op stand-in).
        xs: Batch-1 clips ``(1, T, ...)`` cycled through.
        knobs: Operating point.
    """
    cycle = itertools.cycle(xs)

    def query() -> None:
        with torch.inference_mode():
            method(next(cycle), knobs=knobs)

    return query


def measure_breakdown(method: nn.Module, xs: Sequence[torch.Tensor], *, knobs: Mapping[str, Any] | None = None,
                      device: torch.device | str = "cpu", queries: int = 16,
                      clock: Callable[[], int] | None = None) -> dict[str, Any]:
    """Latency breakdown by costed module role over ``queries`` hooked single-stream queries.

    Args:
        method: The method, already warmed up, on ``device``, in eval mode.
        xs: Batch-1 clips ``(1, T, ...)`` on ``device``, cycled through.
        knobs: Operating point.
        device: Run device (CUDA: ``torch.cuda.Event`` at every hook event, one synchronise per query).
        queries: Hooked queries (>= 1).
        clock: Integer-nanosecond clock (tests); default ``time.perf_counter_ns``.

    Returns:
        ``latency_breakdown_ms`` (role -> ms per query, plus ``"other"``; every
        role of a costed module appears, 0.0 when it never ran),
        ``latency_breakdown_mean_ms`` (mean wall clock of the hooked queries,
        ms, from the outer per-query timer; on CUDA from each query's first to
        last event), ``latency_breakdown_queries``, ``timer``
        (``"perf_counter_ns"`` or ``"cuda_event"``),
        ``sum_rel_error`` (|sum of parts - mean| / mean) and ``module_calls``
        (outermost calls per role per query).

    Raises:
        ValueError: ``queries < 1``.
    """
    if queries < 1:
        raise ValueError(f"queries must be >= 1, got {queries}")
    dev = torch.device(device)
    clk = clock or time.perf_counter_ns
    query = make_query(method, xs, dict(knobs or {}))
    timer = RoleTimer(costed_modules(method), device=dev, clock=clk)
    total = 0
    with timer:
        for _ in range(queries):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)  # the device idle at the first event, as in the latency loop
                timer.begin()
                query()
                timer.end()
                total += timer.last_query_ns  # CUDA events, first to last of the query
                continue
            t0 = clk()
            timer.begin()
            query()
            timer.end()
            total += clk() - t0
    parts = {role: ns / queries / 1e6 for role, ns in timer.ns.items()}
    mean_ms = total / queries / 1e6
    s = sum(parts.values())
    return {
        "latency_breakdown_ms": parts,
        "latency_breakdown_mean_ms": mean_ms,
        "latency_breakdown_queries": queries,
        "timer": "cuda_event" if dev.type == "cuda" else "perf_counter_ns",
        "sum_rel_error": abs(s - mean_ms) / mean_ms if mean_ms > 0 else 0.0,
        "module_calls": {role: c / queries for role, c in timer.calls.items()},
    }


class _NoOp(nn.Module):
    """A method that does nothing: ``forward(x, knobs=None) -> x`` (for :func:`harness_overhead_ms`)."""

    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Return ``x`` unchanged."""
        return x


def harness_overhead_ms(xs: Sequence[torch.Tensor], *, device: torch.device | str = "cpu", queries: int = 256,
                        clock: Callable[[], int] | None = None) -> float:
    """The harness's own cost per query, ms: the latency loop and query wrapper around a no-op method.

    Runs :func:`evbench.harness.timing.measure_latency` (the same loop as the
    reported latency: clock reads, ``inference_mode``, cycling the clips,
    ``nn.Module.__call__`` dispatch; CUDA events on CUDA) for ``queries``
    queries of :class:`_NoOp` and returns their median.

    Args:
        xs: The clips of the real queries (cycled, never computed on).
        device: Run device.
        queries: No-op queries timed (>= 1).
        clock: Integer-nanosecond clock (tests).

    Returns:
        p50 of the no-op queries, ms (> 0 on a real clock).
    """
    from evbench.harness.timing import measure_latency

    lat = measure_latency(make_query(_NoOp(), xs, {}), device=device, warmup_runs=3, min_queries=queries,
                          min_duration_s=0.0, max_duration_s=5.0, max_queries=queries, clock=clock,
                          machine_state=False)
    return float(lat.p50)
