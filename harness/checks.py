"""Input checks shared by the CLI and the harness: flag values, devices, builds, memory, data.

Each check raises a :class:`~evbench.harness.errors.UserError` (or an
``argparse.ArgumentTypeError`` for the argparse ``type=`` functions) whose
message names the flag, key or file and says what is accepted, so that
``evbench`` can print it as one line and exit with code 2.  None of them
catches anything broader than the error it converts.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from evbench.harness.errors import UserError

__all__ = [
    "BuildOptionError",
    "DeviceError",
    "positive_int",
    "non_negative_int",
    "positive_float",
    "non_negative_float",
    "device_arg",
    "devices_arg",
    "check_device",
    "check_overrides",
    "overrides_blamed",
    "check_cells",
    "check_input_fits",
    "check_build_fits",
    "check_input_kind",
    "check_gmacs",
    "check_writable_file",
    "human_bytes",
]


class BuildOptionError(UserError, TypeError):
    """A build override (``--set KEY=VALUE``, ``--frames``...) that the method does not accept, or a bad value."""


class DeviceError(UserError, ValueError):
    """A ``--device`` that is unknown or not available on this machine."""


# --------------------------------------------------------------------------- argparse types


def _number(text: str, kind: Callable[[str], Any], what: str) -> Any:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite {what.removeprefix('a ').removeprefix('an ')}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1 (``--threads``, ``--frames``, ``--epochs``...).

    Raises:
        argparse.ArgumentTypeError: Not an integer, or < 1 (argparse names the flag).
    """
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse ``type=``: an integer >= 0 (``--seed``).

    Raises:
        argparse.ArgumentTypeError: Not an integer, or negative.
    """
    value = _number(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type=``: a finite number > 0 (``--lr``).

    Raises:
        argparse.ArgumentTypeError: Not a finite number, or <= 0.
    """
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """argparse ``type=``: a finite number >= 0 (``--min-duration`` s, ``--gmacs-per-frame`` GMACs).

    Raises:
        argparse.ArgumentTypeError: Not a finite number (NaN and inf are refused), or negative.
    """
    value = _number(text, float, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value:g}")
    return value


# --------------------------------------------------------------------------- devices


def _device_choices() -> str:
    from evbench.harness.devices.modeled import modeled_devices

    return "cpu, cuda, cuda:N or a modeled device (" + ", ".join(modeled_devices()) + ")"


def check_device(device: str, *, flag: str = "--device", available: bool = True) -> str:
    """Check one device name: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a known ``*-modeled`` device.

    Args:
        device: The name as typed (a node placement ``DEVICE@RESOURCE`` is
            checked on its ``DEVICE`` part only, and never for availability:
            it runs elsewhere).
        flag: The flag (or suite key) to name in messages.
        available: Also require the device to be usable on this machine
            (CUDA present, index below the device count).

    Returns:
        ``device``, stripped.

    Raises:
        DeviceError: Unknown name, unknown modeled device, or (``available``)
            no CUDA / no such GPU on this machine.
    """
    name = str(device).strip()
    dev_part, at, where = name.partition("@")
    if at:
        available = False
        if not dev_part or not where:
            raise DeviceError(f"{flag} {name}: write DEVICE@RESOURCE, e.g. cuda@jetson-nano")
    if dev_part == "cpu":  # the default: nothing to check, and no torch import while parsing flags
        return name
    import torch
    from evbench.harness.devices.modeled import is_modeled_device, modeled_devices

    if is_modeled_device(dev_part):
        if dev_part not in modeled_devices():
            raise DeviceError(f"{flag} {dev_part}: no such modeled device; modeled devices: "
                              f"{', '.join(modeled_devices())}")
        return name
    try:
        dev = torch.device(dev_part)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"{flag} {dev_part!r}: unknown device; choose {_device_choices()}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{flag} {dev_part}: device type {dev.type!r} is not supported; choose {_device_choices()}")
    if not available or dev.type == "cpu":
        return name
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is built without CUDA" if torch.version.cuda is None
                   else f"torch {torch.__version__} sees no CUDA device")
            raise DeviceError(f"{flag} {dev_part}: CUDA is not available ({why}); use --device cpu "
                              "or a modeled device such as jetson-nano-modeled")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"{flag} {dev_part}: no such GPU, this machine has {count} (cuda:0..cuda:{count - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{flag} mps: Apple MPS is not available on this machine")
    return name


def device_arg(text: str) -> str:
    """argparse ``type=`` for a local ``--device`` (``profile``, ``train``, ``export``): known and available.

    Raises:
        argparse.ArgumentTypeError: What :func:`check_device` refuses.
    """
    try:
        return check_device(text, flag="").strip() or text
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc).lstrip()) from None


def devices_arg(text: str) -> str:
    """argparse ``type=`` for ``run --device``: a comma list of known device names.

    Availability is not checked here (an executor may place cells on other
    nodes); ``evbench run`` checks it for cells run on this machine.

    Raises:
        argparse.ArgumentTypeError: An empty list or an unknown name.
    """
    names = [d.strip() for d in text.split(",") if d.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected DEVICE[,DEVICE...], got {text!r}")
    for name in names:
        try:
            check_device(name, flag="", available=False)
        except DeviceError as exc:
            raise argparse.ArgumentTypeError(str(exc).lstrip()) from None
    return ",".join(names)


# --------------------------------------------------------------------------- builds


def _check_value(key: str, value: Any, default: Any, where: str) -> None:
    """Type/range of one override against the configuration's default value (see :func:`check_overrides`)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise BuildOptionError(f"{where}: expected true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BuildOptionError(f"{where}: expected an integer, got {value!r}")
        if default > 0 and value < 1:
            raise BuildOptionError(f"{where}: must be >= 1, got {value}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BuildOptionError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise BuildOptionError(f"{where}: must be finite, got {value!r}")
        if "gmacs" in key and value < 0:
            raise BuildOptionError(f"{where}: GMACs cannot be negative, got {value:g}")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise BuildOptionError(f"{where}: expected a name, got {value!r}")
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or not value:
            raise BuildOptionError(f"{where}: expected a non-empty list like {list(default)!r}, got {value!r}")
        if default:
            for item in value:
                _check_value(key, item, default[0], where)


def check_overrides(method: str, config: str, overrides: Mapping[str, Any], *,
                    flags: Mapping[str, str] | None = None, origin: str | None = None) -> None:
    """Check build overrides (``--set KEY=VALUE``, ``--frames``, ``--backbone``...) before building anything.

    A key must be a keyword of the method's builder; a value must have the
    type of the configuration's (or the builder's) default — integers stay
    integers and a positive integer default (frames, resolution, widths)
    needs a value >= 1, numbers must be finite, GMACs >= 0 — and a backbone
    name must be a known backbone.

    Args:
        method: Registered method name.
        config: Configuration name.
        overrides: Key -> value (already parsed from JSON).
        flags: Key -> the flag that set it (``{"frames": "--frames"}``);
            other keys are named as ``--set KEY``.
        origin: Where the overrides come from when not the command line
            (e.g. ``"suite s.toml [[methods]] uniform"``); keys are then
            named as ``<origin>: overrides KEY``.

    Raises:
        UnknownMethodError: Unknown method or configuration.
        BuildOptionError: Unknown key or bad value (names the flag and what is accepted).
    """
    from evbench.harness import registry
    from evbench.methods.backbones import BACKBONES

    configs = registry.method_configs(method)
    if config not in configs:
        registry.method_card(method, config)  # raises UnknownMethodError naming the configurations
    builder = registry._get(method).builder  # noqa: SLF001 — the builder's signature is the option list
    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = sorted(k for k in params if k not in ("num_classes", "config") and
                      params[k].kind is inspect.Parameter.KEYWORD_ONLY)
    for key, value in overrides.items():
        if origin is not None:
            where = f"{origin}: overrides {key} = {value!r}"
        else:
            where = f"{flags[key]} {value!r}" if key in (flags or {}) else f"--set {key}={value!r}"
        if key in ("num_classes", "config") or (key not in params and not takes_any):
            hint = " (use --num-classes)" if key == "num_classes" else " (use --config)" if key == "config" else ""
            raise BuildOptionError(f"{where}: method {method!r} has no build option {key!r}{hint}; "
                                   f"options: {', '.join(accepted)}")
        if key in ("backbone", "backbones") or key.endswith("_backbone"):
            names = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
            unknown = [n for n in names if not isinstance(n, str) or n not in BACKBONES]
            if unknown:
                raise BuildOptionError(f"{where}: unknown backbone {unknown[0]!r}; known: {', '.join(sorted(BACKBONES))}")
            continue
        default = configs[config].get(key, inspect.Parameter.empty)
        if default is inspect.Parameter.empty and key in params:
            default = params[key].default
        if default is not inspect.Parameter.empty and default is not None:
            _check_value(key, value, default, where)


@contextlib.contextmanager
def overrides_blamed(method: str, config: str, overrides: Mapping[str, Any]) -> Iterator[None]:
    """Around a method's build: a ``ValueError`` of the builder becomes a :class:`BuildOptionError` naming the overrides.

    Builders check their arguments with ``ValueError`` (``dropout`` outside
    [0, 1], an unknown ``input_kind``...).  When the user gave overrides,
    such an error is theirs to fix; without overrides (a shipped
    configuration) it stays what it is, a bug, with its traceback.

    Args:
        method: Method name.
        config: Configuration name.
        overrides: The user's overrides (``--set``, ``--frames``...).

    Raises:
        BuildOptionError: The builder raised ``ValueError`` and ``overrides`` is non-empty.
    """
    try:
        yield
    except ValueError as exc:
        if not overrides or isinstance(exc, UserError):
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise BuildOptionError(f"{method} [{config}] with overrides {given}: {exc}") from exc


def check_cells(cells: Sequence[Any], source: str) -> None:
    """Check every cell's build overrides and knobs from the cards, before any cell runs (no network is built).

    A bad suite entry would otherwise fail each of its cells one by one
    after training; here it is one error naming the suite and the key.

    Args:
        cells: :class:`~evbench.harness.suites.Cell` objects (``method``,
            ``config``, ``overrides``, ``knobs``).
        source: The suite file, for messages.

    Raises:
        UnknownMethodError: Unknown method or configuration.
        BuildOptionError: An override key the builder lacks or a bad value.
        KnobError: A knob the card lacks, or a value of the wrong type / out of range.
    """
    from evbench.harness.api import KnobError, resolve_knobs
    from evbench.harness.registry import method_card

    seen: set[str] = set()
    for cell in cells:
        key = repr((cell.method, cell.config, sorted(cell.overrides.items()), sorted(cell.knobs.items())))
        if key in seen:
            continue
        seen.add(key)
        origin = f"suite {source} [[methods]] {cell.method} [{cell.config}]"
        check_overrides(cell.method, cell.config, cell.overrides, origin=origin)
        try:
            resolve_knobs(method_card(cell.method, cell.config, **cell.overrides), cell.knobs)
        except KnobError as exc:
            raise KnobError(f"suite {source}: {exc}") from None


def human_bytes(n: float) -> str:
    """``n`` bytes as ``"1.5 GiB"`` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_input_fits(shape: Sequence[int], *, count: int = 1, what: str = "input", hint: str = "",
                     bytes_per_element: int = 4, available: int | None = None) -> int:
    """Refuse an input allocation that cannot fit in the memory available now (psutil).

    The estimate is the floor of what the job needs: ``count`` float32 tensors
    of ``shape`` (activations come on top).

    Args:
        shape: One input tensor's shape, e.g. ``(1, T, 3, H, W)``.
        count: How many such tensors are held at once.
        what: What the tensor is, for the message.
        hint: The flags to lower, for the message.
        bytes_per_element: 4 for float32.
        available: Bytes available (default ``psutil.virtual_memory().available``).

    Returns:
        The estimated bytes.

    Raises:
        UserError: The estimate exceeds the available memory (gives both sizes).
    """
    need = math.prod(int(s) for s in shape) * bytes_per_element * max(int(count), 1)
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if need > available:
        times = f"{count} x " if count > 1 else ""
        raise UserError(f"{what} {times}{list(shape)} float32 needs {human_bytes(need)} but "
                        f"{human_bytes(available)} of memory is available" + (f"; {hint}" if hint else ""))
    return need


def check_build_fits(method: str, config: str, overrides: Mapping[str, Any], *, count: int = 1) -> None:
    """:func:`check_input_fits` for a build's batch-1 input ``(1, T, 3, R, R)`` or ``(1, T, D)``, from its card.

    Reads the card only (no network is built).

    Raises:
        UserError: The input tensors cannot fit (names ``--frames``/``--resolution``).
    """
    from evbench.harness.registry import method_card

    card = method_card(method, config, **dict(overrides))
    if card.input_kind == "features":
        shape = (1, card.frames, card.feature_dim)
        hint = "lower --frames or --set feature_dim"
    else:
        shape = (1, card.frames, 3, card.resolution, card.resolution)
        hint = "lower --frames or --resolution"
    check_input_fits(shape, count=count, what=f"{method} [{config}] input clip", hint=hint)


# --------------------------------------------------------------------------- files


def check_writable_file(path: str, *, flag: str = "--out") -> None:
    """Refuse, before any work, an output file that cannot be written (its folder is created if missing).

    Args:
        path: The file to be written (e.g. ``evbench train --out ckpt.pt``).
        flag: The flag that named it.

    Raises:
        UserError: ``path`` is a directory, or its folder cannot be created
            or is not writable (names the flag, the path and the reason).
    """
    import os
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file path")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create {p.parent}: {exc.strerror or exc}") from None
    if not os.access(p.parent, os.W_OK):
        raise UserError(f"{flag} {path}: {p.parent} is not writable")


# --------------------------------------------------------------------------- data


def check_input_kind(card: Any, dataset: Any, source: str) -> None:
    """A features file given to a pixel method, or pixel data to a feature method, is an error.

    Args:
        card: The method's :class:`~evbench.harness.api.MethodCard`.
        dataset: An opened dataset (its ``input_kind`` attribute), or ``None``/``[]``.
        source: How the user named the data (``--data`` value), for the message.

    Raises:
        DataError: The kinds differ (names the data and the method, and what to do).
    """
    from evbench.harness.data.errors import DataError

    kind = getattr(dataset, "input_kind", None)
    if kind is None or kind == card.input_kind:
        return
    if kind == "features":
        raise DataError(str(source), f"holds per-frame features (T, D) but {card.name} [{card.config}] takes pixel "
                                     "clips (T, 3, H, W): give a video dataset, or a feature configuration "
                                     "(--config features)")
    raise DataError(str(source), f"holds pixel clips (T, 3, H, W) but {card.name} [{card.config}] takes per-frame "
                                 "features (T, D): give a features .npz, or a pixel configuration (--config lite/paper)")


def check_gmacs(value: Any, source: str, key: str = "gmacs_per_frame") -> float:
    """A declared cost in GMACs must be a finite number >= 0.

    Args:
        value: The declared GMACs.
        source: File or flag that declared it.
        key: Its key, for the message.

    Returns:
        ``float(value)``.

    Raises:
        UserError: NaN, inf, negative or not a number (names the source and key).
    """
    try:
        g = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {key} must be a number of GMACs, got {value!r}") from None
    if not math.isfinite(g) or g < 0:
        raise UserError(f"{source}: {key} = {g:g} GMACs: must be a finite number >= 0")
    return g
