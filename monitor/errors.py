"""Errors that the CLI turns into one `error:` line and exit code 2.

The root, ``FacemonitorError``, and ``AssetError`` live in ``engines.errors`` (the lowest layer, which
raises them too); they are re-exported here so that every stage of ``monitor`` imports its errors
from one place.
"""

from engines.errors import AssetError, FacemonitorError

__all__ = ["AssetError", "EngineError", "FacemonitorError", "SessionIncomplete", "SourceError", "StoreError",
           "UsageError"]


class SourceError(FacemonitorError):
    """A video source that cannot be opened or read."""


class EngineError(FacemonitorError):
    """The engine process failed to start, died, or stopped answering."""


class StoreError(FacemonitorError):
    """The session store cannot be opened or written."""


class SessionIncomplete(FacemonitorError):
    """A session that started but could not finish; what was recorded is kept, marked incomplete."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


class UsageError(FacemonitorError):
    """A request that cannot be answered as asked (an empty window, arguments in the wrong order)."""
