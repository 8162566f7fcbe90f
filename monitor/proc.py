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


def serve_until_interrupted(server, ready_line: str) -> None:
    """``server.serve()``, printing ``ready_line`` once it listens (clients and tests wait for it);
    Ctrl-C ends it quietly, as SIGTERM does through the server's own stop()."""
    try:
        server.serve(ready=lambda: print(ready_line, flush=True))
    except KeyboardInterrupt:
        pass
