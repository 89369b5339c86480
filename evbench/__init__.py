"""evbench: a benchmark and profiling suite for efficient (adaptive) video recognition.

The distribution installs one import namespace.  Its subpackages live in the
repository's top-level folders and are mapped onto it by ``pyproject.toml``
(setuptools ``package-dir``):

- :mod:`evbench.harness` — the measuring instrument (``harness/``)
- :mod:`evbench.methods` — the registered methods (``methods/``)
- :mod:`evbench.reports` — Pareto plots, HTML report (``reports/``)
- :mod:`evbench.bench` — suites and nightly micro-benchmarks (``bench/``)
"""

__version__ = "0.1.0"
