"""The root of the project's user-facing errors.

Every error a person should read as one line (a file that cannot be fetched, a backend that is not
installed, a bad option) derives from ``FacemonitorError``; the command line prints it as one
``error:`` line with exit code 2 and no traceback. It lives here, in the lowest layer, so that
``engines`` can raise it and ``monitor`` can catch it without either importing the other's internals.
"""


class FacemonitorError(Exception):
    """A user-facing failure with a message that says what to do."""


class AssetError(FacemonitorError):
    """A model or sample file that cannot be fetched or fails its hash check."""
