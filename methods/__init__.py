"""Measured methods: one module each. Importing this package registers them all.

Every module of the package is imported (:mod:`pkgutil`), so a new method is
one new file with its ``@register_method`` — nothing here lists methods by name.
Helper modules (backbones, converters, shared blocks) register nothing.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")  # for its @register_method side effect
