"""Errors that the CLI turns into one `error:` line and exit code 2."""


class FacemonitorError(Exception):
    """A user-facing failure with a message that says what to do."""


class SourceError(FacemonitorError):
    """A video source that cannot be opened or read."""


class AssetError(FacemonitorError):
    """A model or sample file that cannot be fetched or fails its hash check."""


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
