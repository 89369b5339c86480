"""Method registry, after timm: a decorator registers a builder with its configurations.

A method module does::

    CONFIGS = {"paper": {...}, "lite": {...}}      # configurations are data

    @register_method("uniform", configs=CONFIGS)
    def build_uniform(*, num_classes: int, **cfg) -> Method: ...

and users call ``create_method("uniform", config="lite", num_classes=10, frames=4)``.
The harness knows no method by name; it goes through this registry only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evbench.harness.api import Method, MethodCard

__all__ = ["register_method", "create_method", "list_methods", "method_configs", "describe", "UnknownMethodError"]


class UnknownMethodError(KeyError):
    """A method or configuration name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class _Registered:
    name: str
    builder: Callable[..., Method]
    configs: Mapping[str, Mapping[str, Any]]
    summary: str


_REGISTRY: dict[str, _Registered] = {}
_LOADED = False


def register_method(name: str, *, configs: Mapping[str, Mapping[str, Any]], summary: str = "") -> Callable:
    """Register a keyword-only builder under ``name``.

    Args:
        name: Registry name (lower-case, no spaces).
        configs: Configuration name -> builder keyword arguments; must contain
            ``"paper"`` and ``"lite"``.
        summary: One line for ``evbench methods``.

    Raises:
        ValueError: On a duplicate name or missing ``paper``/``lite`` configuration.
    """
    missing = {"paper", "lite"} - set(configs)
    if missing:
        raise ValueError(f"method {name!r} lacks configurations {sorted(missing)}")

    def deco(builder: Callable[..., Method]) -> Callable[..., Method]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"method {name!r} registered twice")
        _REGISTRY[name] = _Registered(name, builder, configs, summary or (builder.__doc__ or "").strip().split("\n")[0])
        return builder

    return deco


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        importlib.import_module("evbench.methods")  # importing the package registers every method
        _LOADED = True


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def method_configs(name: str) -> dict[str, dict[str, Any]]:
    """Configurations of ``name`` (config name -> builder kwargs).

    Raises:
        UnknownMethodError: If ``name`` is not registered.
    """
    return {k: dict(v) for k, v in _get(name).configs.items()}


def _get(name: str) -> _Registered:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UnknownMethodError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_method(name: str, *, config: str = "paper", num_classes: int, **overrides: Any) -> Method:
    """Build method ``name`` from configuration ``config`` with ``overrides`` on top.

    Args:
        name: Registered method name (see :func:`list_methods`).
        config: Configuration name (``"paper"``, ``"lite"``, ...).
        num_classes: Output classes.
        **overrides: Builder keyword arguments replacing the configuration's.

    Returns:
        The method, in eval mode, with ``card.config == config``.

    Raises:
        UnknownMethodError: Unknown method or configuration.
        TypeError: An override the builder does not accept.
    """
    reg = _get(name)
    if config not in reg.configs:
        raise UnknownMethodError(
            f"method {name!r} has no configuration {config!r}; configurations: {', '.join(reg.configs)}"
        )
    kwargs = {**reg.configs[config], **overrides}
    method = reg.builder(num_classes=num_classes, config=config, **kwargs)
    return method.eval()


def describe(name: str, config: str = "paper", *, num_classes: int = 10, **overrides: Any) -> MethodCard:
    """The card of ``name`` in ``config`` (builds the method on the meta device where possible)."""
    return create_method(name, config=config, num_classes=num_classes, **overrides).card
