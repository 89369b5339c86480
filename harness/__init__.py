"""evbench's measuring instrument: method API, registry, datasets, cost counting,
timing, metrics, runner, results store and CLI."""

__version__ = "0.1.0"
