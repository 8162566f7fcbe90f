"""Process helpers."""

import os


def pid_alive(pid: int | None) -> bool:
    """True while a process with this id exists (a zombie counts until it is reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
