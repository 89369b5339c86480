"""The one exception type of :mod:`evbench.harness.data`."""

from __future__ import annotations

from evbench.harness.errors import UserError

__all__ = ["DataError"]


class DataError(UserError):
    """A data file or split file that cannot be used.

    Raised for unreadable, corrupt, truncated or empty videos and frame
    folders, malformed split/list files (``path`` is then ``"file:line"``),
    unknown classes and feature files with missing arrays.  The runner catches
    it per cell, records it and goes on with the other cells.

    Args:
        path: The offending file, folder or ``"split_file:line"``.
        reason: What is wrong with it, in words.

    Attributes:
        path: As given.
        reason: As given.

    ``str(err)`` is ``f"{path}: {reason}"``.  The instance pickles (it crosses
    ``DataLoader`` worker processes) and can be rebuilt from its message alone
    (``DataError(msg)``), which is what ``torch.utils.data`` does on re-raise.
    """

    def __init__(self, path: str, reason: str = "") -> None:
        super().__init__(str(path), reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.reason else self.path
