"""Measured methods: one module each. Importing this package registers them all."""

from evbench.methods import (  # noqa: F401  (imported for their @register_method side effect)
    arnet,
    dyngrid,
    frameexit,
    liteeval,
    rsee,
    tlee,
    uniform,
)
