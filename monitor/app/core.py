"""What the app does, without the UI: the current check and its controls, people, and the logged
sessions (results, review, notes, exports, trends).

``AppCore`` is the one object the Gradio tabs (monitor/app/tab_*.py) and the HTTP routes
(monitor/app/server.py) talk to; everything here is callable and testable without a browser. The
session views themselves are built in monitor/app/review.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from engines import assets
from monitor.app import review
from monitor.app.live_check import CheckRequest, LiveCheck
from monitor.app.preview import PreviewEncoder
from monitor.capture.browser_feed import register
from monitor.capture.sources import open_capture, parse_source
from monitor.errors import SourceError, UsageError
from monitor.protocol.definitions import BUILTIN, Protocol, resolve_protocol
from monitor.store.db import SessionRow, Store

BROWSER_FEED = "web"  # the browser camera's feed name: source "browser:web"
CONTROL_MESSAGES = {"pause": "Paused.", "resume": "Resumed.", "repeat": "Repeating the step.",
                    "skip": "Step skipped.", "abort": "Stopped. The frames recorded so far are kept."}


@dataclass(frozen=True)
class AppConfig:
    store_root: Path | None = None
    source: str | None = None  # None: camera 0, or the sample video when there is none
    protocol: str = "mg24"
    backend: str = "mediapipe"
    engine_endpoint: str | None = None
    iris_mm: float | None = None
    cnn: object | None = None  # monitor.engine.CnnOptions: a trained 3D-CNN with its card


def default_source(requested: str | None) -> tuple[str, str]:
    """(source, a line saying what it is). No source asked for: camera 0, else the sample video."""
    if requested is not None:
        parse_source(requested)
        return requested, f"source: {requested}"
    try:
        open_capture(parse_source("0")).release()
        return "0", "source: camera 0"
    except SourceError:
        return str(assets.sample_path()), f"no webcam at index 0; the check plays the sample video {assets.SAMPLE_VIDEO}"


class AppCore:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.protocols: dict[str, Protocol] = dict(BUILTIN)
        default = resolve_protocol(config.protocol)  # a custom file is validated before the app starts
        self.protocols[default.name] = default
        self.default_protocol = default.name
        self.source, self.source_note = default_source(config.source)
        self.preview = PreviewEncoder()
        self.check: LiveCheck | None = None
        self._lock = threading.Lock()
        self.browser_feed = register(BROWSER_FEED)
        with self.store() as store:
            self.store_root = store.root

    def store(self) -> Store:
        """A store connection for the calling thread (close it, or use it in a with-block)."""
        return Store(self.config.store_root)

    # -- checks ------------------------------------------------------------------------------------
    def start_check(self, *, protocol: str, person: str | None, keep_video: bool, mirror: bool = True,
                    source: str | None = None) -> LiveCheck:
        person = (person or "").strip() or None
        if person:
            with self.store() as store:
                store.add_person(person, self.config.iris_mm)
        if protocol not in self.protocols:
            raise UsageError(f"unknown protocol {protocol!r} (protocols: {', '.join(self.protocols)})")
        with self._lock:
            if self.check is not None and self.check.running:
                raise UsageError("a check is already running; stop it first")
            src = source or self.source
            request = CheckRequest(self.protocols[protocol], src, person, keep_video, self.config.iris_mm, mirror)
            self.check = LiveCheck(request, store_root=self.store_root, backend=self.config.backend,
                                   engine_endpoint=self.config.engine_endpoint, preview=self.preview,
                                   cnn=self.config.cnn).start()
            return self.check

    def control(self, action: str) -> str:
        """Pause, resume, repeat or skip the step, or abort the running check; says what happened."""
        check = self.check
        if check is None or not check.running:
            return "No check is running."
        check.control(action)
        return CONTROL_MESSAGES[action]

    def close(self) -> None:
        check = self.check
        if check is not None:
            check.stop_event.set()
            check.join(30)
        self.preview.close()

    def people(self) -> list[str]:
        with self.store() as store:
            return store.people()

    # -- logged sessions -----------------------------------------------------------------------------
    def session_view(self, sid: str) -> review.SessionView:
        with self.store() as store:
            return review.session_view(store, sid)

    def find_sessions(self, filters: review.SessionFilter) -> list[SessionRow]:
        with self.store() as store:
            return review.find_sessions(store, filters)

    def add_note(self, sid: str | None, text: str, author: str | None) -> list[dict]:
        with self.store() as store:
            return review.add_note(store, sid, text, author)

    def export(self, sid: str | None, fmt: str) -> str:
        """Export the session: HTML linking to the file, or a line saying why not."""
        if not sid:
            return "Choose a session first."
        try:
            with self.store() as store:
                return review.export_link(store, sid, fmt)
        except Exception as e:  # the page says why; the store is untouched (exports are written atomically)
            return f"<b>Export failed: {type(e).__name__}: {e}</b>"

    def trend(self, person: str, measure: str) -> review.TrendView:
        with self.store() as store:
            return review.trend_view(store, person, measure)
