"""Helpers shared by the method tests: run a method and collect traces, costs and executed MACs."""

from __future__ import annotations

from typing import Any

import torch
from evbench.harness.api import Method, Output
from evbench.harness.costs import cost_table, executed_gmacs, trace_gmacs


def run(method: Method, x: torch.Tensor, knobs: dict[str, Any] | None = None,
        count: bool = False) -> tuple[Output, list[float], float | None]:
    """Forward ``x`` under inference mode.

    Returns:
        The output, per-sample trace GMACs, and the executed GMACs of the whole
        batch when ``count`` (else ``None``).
    """
    holder: list[Output] = []
    with torch.inference_mode():
        if count:
            executed = executed_gmacs(lambda: holder.append(method(x, knobs=knobs)))
        else:
            executed = None
            holder.append(method(x, knobs=knobs))
    table = cost_table(method)
    return holder[0], [trace_gmacs(t, table) for t in holder[0].trace], executed
