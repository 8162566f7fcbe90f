"""An engine process started on this machine for one client (``analyze``, ``live``, the app):
``python -m monitor engine`` on private ``ipc://`` endpoints, its log in the store, stopped with
``STOP`` on its control socket (and by itself when its parent is gone)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

from monitor.errors import EngineError
from monitor.transport.client import EngineClient


class LocalEngine:
    """An engine process started on this machine, on ipc:// endpoints in a private folder."""

    def __init__(self, backend: str = "mediapipe", iris_mm: float | None = None, log_dir: Path | None = None,
                 bind: str | None = None, extra_args: list[str] | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fm-"))
        self.endpoint = bind or f"ipc://{self._dir}/frames"
        self.control = f"ipc://{self._dir}/control"
        cmd = [sys.executable, "-m", "monitor", "engine", "--bind", self.endpoint,
               "--control", self.control, "--backend", backend, "--parent-pid", str(os.getpid())]
        if iris_mm is not None:
            cmd += ["--iris-mm", str(iris_mm)]
        cmd += extra_args or []
        log_dir = log_dir or self._dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"engine-{os.getpid()}-{int(time.time())}.log"
        self._log = open(self.log_path, "ab")
        self._log_home: Path | None = None  # where the log goes when the engine stops (keep_log_in)
        self._ready = False  # answered a PING
        self._failed = False  # failed to start (wait_ready's error names its log)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, client: EngineClient, timeout_s: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                self._failed = True
                raise EngineError(f"engine process exited with code {self.proc.returncode} while starting; "
                                  f"see {self.log_path}: {self.log_tail()}")
            try:
                pong = client.ping(min(1.0, max(0.1, deadline - time.monotonic())))
            except EngineError:
                continue
            self._ready = True
            return pong
        self._failed = True
        raise EngineError(f"engine did not start within {timeout_s:.0f} s; see {self.log_path}")

    def keep_log_in(self, log_dir: Path) -> None:
        """Move the log, when it was started in the private folder (an engine started before the
        store was open), into ``log_dir``; the process keeps writing to the moved file. A log that
        cannot move (another file system) is copied there when the engine stops."""
        if self.log_path.parent != self._dir:
            return
        target = Path(log_dir) / self.log_path.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.log_path, target)
            self.log_path = target
        except OSError:
            self._log_home = target

    def log_tail(self) -> str:
        """The engine's own error line, whole (without its ``error:``), else the log's last line."""
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        errors = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
        return errors[-1] if errors else lines[-1] if lines else ""

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.alive() and not self._ready:
            # still starting (e.g. started early for a source then refused): it has served no frame
            # and may not listen for STOP yet, so it is ended at once
            self.proc.terminate()
            _wait_or_kill(self.proc, timeout_s)
        if self.alive():
            ctx = zmq.Context.instance()
            s = ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, 500)
            s.connect(self.control)
            s.send(b"STOP")
            s.close()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                _wait_or_kill(self.proc, timeout_s)
        self._log.close()
        if self._log_home is not None and self.log_path.exists():
            try:
                shutil.copyfile(self.log_path, self._log_home)
                self.log_path, self._log_home = self._log_home, None
            except OSError:  # (e.g. a full disk) the log stays in the private folder, kept below
                pass
        if self.log_path.parent == self._dir and self._failed:
            return  # an engine that failed to start keeps its log where its error message points
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_or_kill(proc: subprocess.Popen, timeout_s: float) -> None:
    """Wait for a process asked to end; kill it when it has not ended after ``timeout_s``."""
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
