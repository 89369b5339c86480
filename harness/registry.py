"""Method registry, after timm: a decorator registers a builder with its configurations and its card.

A method module does::

    CONFIGS = {"paper": {...}, "lite": {...}}      # configurations are data

    def uniform_card(*, config: str, frames: int, backbone: str, **_: Any) -> MethodCard:
        ...                                        # metadata as data: no network is built

    @register_method("uniform", configs=CONFIGS, card=uniform_card)
    def build_uniform(*, num_classes: int, **cfg) -> Method: ...

and users call ``create_method("uniform", config="lite", num_classes=10, frames=4)``.
:func:`method_card` gives the same card without building anything (timm's
pretrained cfgs, torchvision's ``Weights.meta``): ``evbench methods`` and knob
sweeps read it, and :func:`create_method` attaches that very object to the
built method.  The harness knows no method by name; it goes through this
registry only.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evbench.harness.api import Method, MethodCard

__all__ = [
    "register_method",
    "create_method",
    "method_card",
    "list_methods",
    "method_configs",
    "method_summary",
    "UnknownMethodError",
]


class UnknownMethodError(KeyError):
    """A method or configuration name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class _Registered:
    name: str
    builder: Callable[..., Method]
    configs: Mapping[str, Mapping[str, Any]]
    card: Callable[..., MethodCard]
    summary: str


_REGISTRY: dict[str, _Registered] = {}
_LOADED = False


def register_method(name: str, *, configs: Mapping[str, Mapping[str, Any]], card: Callable[..., MethodCard],
                    summary: str = "") -> Callable:
    """Register a keyword-only builder under ``name`` with its card function.

    Args:
        name: Registry name (lower-case, no spaces).
        configs: Configuration name -> builder keyword arguments; must contain
            ``"paper"`` and ``"lite"``.
        card: ``card(*, config, **builder_kwargs) -> MethodCard`` — a pure
            function of the configuration (the builder's keyword arguments with
            its defaults applied, ``num_classes`` excluded) that builds no
            network; it may ignore arguments it does not need (``**_``).
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
        _REGISTRY[name] = _Registered(name, builder, configs, card,
                                      summary or (builder.__doc__ or "").strip().split("\n")[0])
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


def method_summary(name: str) -> str:
    """The one-line summary ``name`` was registered with.

    Raises:
        UnknownMethodError: If ``name`` is not registered.
    """
    return _get(name).summary


def _get(name: str) -> _Registered:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UnknownMethodError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _resolve(reg: _Registered, config: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The builder's keyword arguments for ``config`` + ``overrides``, its defaults applied (no ``num_classes``).

    Raises:
        UnknownMethodError: Unknown configuration.
        TypeError: An override the builder does not accept (the message names it).
    """
    if config not in reg.configs:
        raise UnknownMethodError(
            f"method {reg.name!r} has no configuration {config!r}; configurations: {', '.join(reg.configs)}"
        )
    params = inspect.signature(reg.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {**reg.configs[config], **overrides}
    unknown = sorted(k for k in kwargs if k not in params and not takes_any)
    if unknown or "num_classes" in overrides or "config" in overrides:
        bad = unknown or [k for k in ("num_classes", "config") if k in overrides]
        accepted = sorted(k for k in params if k not in ("num_classes", "config"))
        raise TypeError(f"method {reg.name!r} has no build option {', '.join(map(repr, bad))}; "
                        f"options: {', '.join(accepted)}")
    resolved = {k: p.default for k, p in params.items()
                if p.default is not inspect.Parameter.empty and p.kind is inspect.Parameter.KEYWORD_ONLY}
    resolved.update(kwargs)
    resolved.pop("num_classes", None)
    resolved["config"] = config
    return resolved


def method_card(name: str, config: str = "paper", **overrides: Any) -> MethodCard:
    """The card of ``name`` in ``config`` with ``overrides`` — data only, no network is built.

    The card's ``claims`` are the ids of the claims registry entries that
    measure this method in this configuration
    (:func:`evbench.harness.claims.claim_ids_for`); a build with overrides that
    change the configuration is no longer the published one and gets none.

    Args:
        name: Registered method name.
        config: Configuration name.
        **overrides: Builder keyword arguments replacing the configuration's.

    Returns:
        The :class:`MethodCard` that :func:`create_method` with the same
        arguments attaches to the method it builds.

    Raises:
        UnknownMethodError: Unknown method or configuration.
        TypeError: An override the builder does not accept.
    """
    reg = _get(name)
    kwargs = _resolve(reg, config, overrides)
    card = reg.card(**kwargs)
    base = reg.configs[config]
    published_config = all(k in base and base[k] == v for k, v in overrides.items())
    if published_config:
        from evbench.harness.claims import claim_ids_for

        card = dataclasses.replace(card, claims=claim_ids_for(name, config))
    return card


def create_method(name: str, *, config: str = "paper", num_classes: int, **overrides: Any) -> Method:
    """Build method ``name`` from configuration ``config`` with ``overrides`` on top.

    Args:
        name: Registered method name (see :func:`list_methods`).
        config: Configuration name (``"paper"``, ``"lite"``, ...).
        num_classes: Output classes.
        **overrides: Builder keyword arguments replacing the configuration's.

    Returns:
        The method, in eval mode, whose ``card`` is the object
        :func:`method_card` returns for the same arguments.

    Raises:
        UnknownMethodError: Unknown method or configuration.
        TypeError: An override the builder does not accept.
    """
    reg = _get(name)
    card = method_card(name, config, **overrides)
    kwargs = _resolve(reg, config, overrides)
    method = reg.builder(num_classes=num_classes, **kwargs)
    method.card = card
    return method.eval()
