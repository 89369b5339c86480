"""User errors: bad input that the ``evbench`` CLI reports as one line and exit code 2.

One mechanism, after pip's ``PipError`` / ``CommandError``: every error that
is the *user's* input (a flag value, a knob, a suite key, a file) is an
instance of :class:`UserError` or of one of the typed errors listed by
:func:`user_error_types` (the harness' older typed errors, which keep their
``ValueError``/``KeyError`` bases for existing callers).  ``evbench.harness.cli.main``
catches exactly these, prints ``evbench: <message>`` on one line to stderr and
returns 2; ``--debug`` (or ``EVBENCH_DEBUG=1``) prints the traceback first.
Anything else is a bug and keeps its traceback.

Messages name the culprit first — the flag (``--threads``), the key
(``knob 'frames'``) or the file (``ckpt.pt``) — then what is wrong and, where
there is one, what is accepted.
"""

from __future__ import annotations

__all__ = ["UserError", "user_error_types", "one_line"]


class UserError(Exception):
    """Bad user input (flag, knob, key or file), reported by the CLI as one line, exit code 2.

    Subclass it (or raise it directly) for any error a user can fix by
    changing what they typed or the file they passed.  Never use it for a
    failure of evbench itself.

    Args:
        message: One line: the culprit (flag, key or file), what is wrong,
            and what is accepted.
    """

    def __str__(self) -> str:  # KeyError subclasses would otherwise quote the message
        return str(self.args[0]) if self.args else ""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type the CLI reports as a user error (one line, exit 2).

    :class:`UserError` and its subclasses (``KnobError``, ``DataError``,
    ``CheckpointError``, ...), plus the typed errors of other modules that
    predate it and are raised only for bad input: unknown method /
    configuration / build option, unknown modeled device, ONNX Runtime set-up
    errors, suite and claims-registry errors, measurement-settings errors,
    executor placement errors, run-directory write/lock errors, history errors.

    Returns:
        A tuple usable in an ``except`` clause.
    """
    import importlib

    types: list[type[BaseException]] = [UserError]
    for module, name in (
        ("evbench.harness.registry", "UnknownMethodError"),
        ("evbench.harness.devices.modeled", "UnknownDeviceError"),
        ("evbench.harness.onnx_backend", "OnnxBackendError"),
        ("evbench.harness.suites", "SuiteError"),
        ("evbench.harness.claims", "ClaimRegistryError"),
        ("evbench.harness.settings", "SettingsError"),
        ("evbench.harness.executors", "ExecutorError"),
        ("evbench.harness.rundir", "ResultStoreError"),
        ("evbench.harness.history", "HistoryError"),
    ):
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):  # a module of an optional part that is not there
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException):
            types.append(cls)
    return tuple(types)


def one_line(exc: BaseException) -> str:
    """The message of a user error as one line (later lines joined with ``; ``).

    ``OSError`` subclasses (``FileNotFoundError``...) give ``"<file>: <reason>"``.
    """
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc)
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    return "; ".join(parts) or type(exc).__name__
