"""A run directory's integrity: typed store errors, the exclusive lock, Ctrl-C.

Three things can make a run directory lie, and this module turns each into a
clear, typed error instead:

* **Two runs on one ``--out``.**  :class:`RunLock` takes an exclusive
  ``fcntl.flock`` on ``DIR/.lock`` for the whole run and writes the holder's
  pid, host, start time and command line into it.  A second run fails at once
  with :class:`RunLockedError` naming that pid.  ``flock`` (stdlib) was chosen
  over the ``filelock`` package because the kernel drops the lock when the
  holder dies (``kill -9``, power loss), so there is no stale lock to clean up,
  and the lock file can hold the holder's identity for the message.
* **A directory that cannot be written** (read-only file system, no
  permission, disk full, short write): :class:`ResultStoreError` names the
  file and the OS reason; a cell counts as finished only after its row was
  written and ``fsync``-ed whole.
* **Ctrl-C.**  :func:`exclusive_run` turns ``KeyboardInterrupt`` into
  :class:`RunInterrupted` carrying how many finished cells the directory
  keeps, so the CLI can print one line and the ``--resume`` command.

The CLI maps :class:`ResultStoreError` (and :class:`RunLockedError`) to exit
code 2 and :class:`RunInterrupted` to exit code 130 (128 + SIGINT, the shell's
convention for a run stopped by Ctrl-C, so scripts can tell it from bad input).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "LOCK_FILE",
    "ResultStoreError",
    "RunInterrupted",
    "RunLock",
    "RunLockedError",
    "describe_os_error",
    "exclusive_run",
]

LOCK_FILE = ".lock"

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "I/O error",
    errno.EFBIG: "file too large",
}


def describe_os_error(exc: BaseException) -> str:
    """Short reason of an ``OSError`` for a one-line message (``"read-only file system (EROFS)"``).

    Args:
        exc: Any exception; non-``OSError`` ones give ``"<Type>: <message>"``.

    Returns:
        The reason text.
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        text = _REASONS.get(exc.errno, exc.strerror or os.strerror(exc.errno)).lower()
        if exc.strerror and exc.strerror.startswith("short write"):
            text = f"{exc.strerror}, {text}"
        return f"{text} ({name})"
    return f"{type(exc).__name__}: {exc}"


class ResultStoreError(Exception):
    """A run directory or a results file could not be written (or locked).

    The message is one line naming the file and what is wrong; the CLI prints
    it and exits with code 2.

    Attributes:
        path: The file or directory concerned.
        reason: What went wrong (e.g. ``"no space left on device (ENOSPC)"``).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, hint: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.hint = hint
        super().__init__(f"cannot write {self.path}: {reason}" + (f"; {hint}" if hint else ""))


class RunLockedError(ResultStoreError):
    """Another process holds the run directory's lock.

    Attributes:
        pid: The holder's process id, or ``None`` when the lock file does not
            (yet) name one.
        holder: Everything the lock file says about the holder (``pid``,
            ``host``, ``started``, ``argv``).
    """

    def __init__(self, root: str | os.PathLike[str], holder: dict[str, Any]) -> None:
        self.pid = holder.get("pid")
        self.holder = holder
        who = f"pid {self.pid}" if self.pid is not None else "a process that has not written its pid yet"
        if holder.get("host") and holder.get("host") != socket.gethostname():
            who += f" on {holder['host']}"
        if holder.get("started"):
            who += f", since {holder['started']}"
        Exception.__init__(
            self,
            f"{root} is in use by another evbench run ({who}); wait for it to finish or choose another --out",
        )
        self.path = Path(root) / LOCK_FILE
        self.reason = "locked"
        self.hint = ""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C; the finished cells stay in the directory.

    Derives from ``KeyboardInterrupt`` so that no ``except Exception`` on the
    way up swallows it.

    Attributes:
        out: The run directory.
        kept: Cells of the directory finished with status ok (kept for ``--resume``).
        total: Cells the interrupted run was asked for, when known.
    """

    def __init__(self, out: str | os.PathLike[str], kept: int, total: int | None = None) -> None:
        self.out = Path(out)
        self.kept = kept
        self.total = total
        of = f" of {total}" if total is not None else ""
        super().__init__(f"interrupted, {kept}{of} cells kept in {self.out}")


class RunLock:
    """Exclusive lock on a run directory: ``fcntl.flock`` of ``DIR/.lock``, holding the pid.

    Use as a context manager.  The lock belongs to the open file, so it is
    released when the holder exits or dies; the (emptied) lock file stays.
    ``flock`` locks conflict between two opens in one process too, so a second
    ``RunLock`` on the same directory is refused even in-process, unless it is
    ``reentrant`` and this process already holds that directory's lock (the
    CLI locks ``--out`` before its set-up work, then :func:`run_cells` locks it
    again re-entrantly).

    Args:
        root: The run directory (created if absent).
        reentrant: Accept a lock this process already holds (nothing is
            taken or released then).

    Raises:
        RunLockedError: From :meth:`acquire`: another process holds the lock.
        ResultStoreError: From :meth:`acquire`: the directory or the lock file
            cannot be created or written (read-only, no permission, disk full).
    """

    def __init__(self, root: str | os.PathLike[str], *, reentrant: bool = False) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self.reentrant = reentrant
        self._fd: int | None = None
        self._nested = False

    def _key(self) -> str:
        return os.path.realpath(self.root)

    def acquire(self) -> RunLock:
        """Take the lock without waiting; returns ``self``."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock; runs are not guarded there
            return self
        if self.reentrant and self._key() in _HELD:
            self._nested = True
            return self
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ResultStoreError(self.path if self.root.is_dir() else self.root, describe_os_error(exc),
                                   hint="choose a writable --out") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(self.root, holder) from None
        except OSError as exc:
            os.close(fd)
            raise ResultStoreError(self.path, f"cannot lock: {describe_os_error(exc)}") from exc
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": sys.argv}
        try:
            os.ftruncate(fd, 0)
            data = (json.dumps(info) + "\n").encode()
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise ResultStoreError(self.path, describe_os_error(exc), hint="choose a writable --out") from exc
        self._fd = fd
        _HELD[self._key()] = self
        return self

    def release(self) -> None:
        """Empty the lock file and release the lock (idempotent; a nested re-entrant hold releases nothing)."""
        if self._nested:
            self._nested = False
            return
        if self._fd is None:
            return
        import fcntl

        _HELD.pop(self._key(), None)
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # a full or read-only disk must not keep the lock
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (itself, or nested in this process's hold)."""
        return self._fd is not None or self._nested

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


#: Run directories (real paths) whose lock this process holds.
_HELD: dict[str, RunLock] = {}


def _read_holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder; retried briefly (the holder writes just after locking)."""
    for _ in range(20):
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        except OSError:
            return {}
        if text:
            try:
                info = json.loads(text)
                return info if isinstance(info, dict) else {}
            except json.JSONDecodeError:
                pass
        time.sleep(0.05)
    return {}


F = TypeVar("F", bound=Callable[..., Any])


def exclusive_run(fn: F) -> F:
    """Decorate a ``fn(cells, *, out, ...)`` run function: lock ``out`` for the call, type Ctrl-C.

    Around the call a :class:`RunLock` on ``out`` is held (re-entrantly: a
    caller of this process may hold it already); stale
    ``samples/*.tmp`` files of a crashed earlier run are removed under it.  A
    ``KeyboardInterrupt`` inside becomes :class:`RunInterrupted` with the
    number of finished cells the directory keeps.

    Raises:
        RunLockedError: Another run holds ``out``.
        ResultStoreError: ``out`` cannot be created, locked or written.
        RunInterrupted: Ctrl-C during the run.
    """

    @functools.wraps(fn)
    def wrapper(cells: Any, *args: Any, out: str | os.PathLike[str], **kwargs: Any) -> Any:
        from evbench.harness.results import ResultStore

        if not isinstance(cells, (list, tuple)):
            cells = list(cells)
        with RunLock(out, reentrant=True):
            ResultStore(out).remove_stale_tmp()
            try:
                return fn(cells, *args, out=out, **kwargs)
            except KeyboardInterrupt as exc:
                if isinstance(exc, RunInterrupted):
                    raise
                ids = {getattr(c, "id", id(c)) for c in cells}
                try:
                    kept = len(ResultStore(out).finished_ids() & ids)
                except Exception:  # noqa: BLE001 — the count is best effort while stopping
                    kept = 0
                total = len(ids)
                raise RunInterrupted(out, kept, total) from None

    return wrapper  # type: ignore[return-value]
