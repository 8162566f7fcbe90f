"""One cohort worker: an engine process with its model loaded once, analysing recordings one after
another exactly as ``analyze`` does (``run_session`` against that engine).

The same ``CohortWorker`` runs in a process of the local pool (``init_pool_worker`` /
``analyse_in_pool``) or as a Ray actor (monitor.lab.cohort.ray_backend); it returns plain dicts, so
results cross process and machine boundaries without pickling project objects.
"""

from __future__ import annotations

import atexit
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from monitor.engine.local import LocalEngine
from monitor.errors import FacemonitorError, SessionIncomplete
from monitor.protocol.steps import read_steps
from monitor.session.options import SessionOptions
from monitor.session.run import run_session
from monitor.store.db import Store
from monitor.transport.client import EngineClient


@dataclass(frozen=True)
class WorkerSettings:
    store_root: str
    backend: str = "mediapipe"
    iris_mm: float | None = None


@dataclass(frozen=True)
class Task:
    cohort_id: str
    key: str
    path: str
    subject: str | None
    steps_file: str | None


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str  # complete | incomplete | failed
    session_id: str | None
    error: str | None
    frames: int
    frames_with_face: int
    seconds: float


class CohortWorker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.engine: LocalEngine | None = None

    def _engine_endpoint(self) -> str:
        """The worker's engine, started on first use and kept (its model stays loaded)."""
        if self.engine is None or not self.engine.alive():
            if self.engine is not None:
                self.engine.stop()
            with Store(self.settings.store_root) as store:
                logs = store.logs_dir
            self.engine = LocalEngine(self.settings.backend, self.settings.iris_mm, log_dir=logs)
            client = EngineClient(self.engine.endpoint)
            try:
                self.engine.wait_ready(client, timeout_s=120)
            finally:
                client.close()
        return self.engine.endpoint

    def analyse(self, task: dict) -> dict:
        """One recording into one session; never raises for a bad recording (the outcome says why)."""
        t = Task(**task)
        t0 = time.monotonic()
        session_id = None

        def tag(sid: str) -> None:
            nonlocal session_id
            session_id = sid
            with Store(self.settings.store_root) as store:
                store.add_events(sid, [("cohort", json.dumps({"cohort": t.cohort_id, "subject": t.subject,
                                                              "recording": t.key}), None)])

        try:
            opts = SessionOptions(source=t.path, store_root=Path(self.settings.store_root), backend=self.settings.backend,
                                  engine_endpoint=self._engine_endpoint(), iris_mm=self.settings.iris_mm,
                                  step_at=read_steps(Path(t.steps_file)) if t.steps_file else None, on_start=tag)
            result = run_session(opts)
            out = Outcome(t.key, result.status, result.session_id, None, result.frames, result.frames_with_face,
                          time.monotonic() - t0)
        except SessionIncomplete as e:
            r = e.result
            out = Outcome(t.key, "incomplete", session_id, str(e), r.frames if r else 0, r.frames_with_face if r else 0,
                          time.monotonic() - t0)
        except FacemonitorError as e:  # refused before a session existed: a bad or unreadable file
            out = Outcome(t.key, "failed", session_id, str(e), 0, 0, time.monotonic() - t0)
        return asdict(out)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine = None


_WORKER: CohortWorker | None = None


def init_pool_worker(settings: dict) -> None:
    """The process pool's initializer: this process's worker (its engine starts with the first task)."""
    global _WORKER
    _WORKER = CohortWorker(WorkerSettings(**settings))
    atexit.register(_WORKER.close)


def analyse_in_pool(task: dict) -> dict:
    return _WORKER.analyse(task)
