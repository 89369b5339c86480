"""Reports over stored results: Pareto frontiers, plots and the static HTML page.

Reports read only stored results (``evbench.harness.results.load``), never live models.

* :func:`pareto_frontier` — non-dominated rows of a results table.
* :func:`plot_pareto`, :func:`plot_histograms` — PNG + SVG figures.
* :func:`write_report` — ``out_dir/index.html`` plus figures and CSVs.
"""

from __future__ import annotations

from evbench.reports.html import write_report
from evbench.reports.pareto import pareto_frontier
from evbench.reports.plots import plot_histograms, plot_pareto

__all__ = ["pareto_frontier", "plot_histograms", "plot_pareto", "write_report"]
