"""One guided check: a protocol run over one live session (the app's core, no UI in it).

``LiveCheck`` runs ``monitor.session.run.run_session`` in a thread of its own with the app's hooks:
each processed frame is checked for quality (monitor.measures.quality), ticks the protocol state
machine (monitor.protocol.run), and is labelled with the step it counts toward before it is written;
the newest frame goes to the preview encoder (monitor.app.preview), never waiting for a viewer; kept
video, when the person opted in, goes to a writer thread. The UI only reads ``snapshot()`` and
calls ``control()``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.app.preview import PreviewEncoder, VideoKeeper
from monitor.errors import FacemonitorError
from monitor.measures.compliance import mark_records
from monitor.measures.quality import NO_FRAMES, Quality, assess, face_light
from monitor.protocol.definitions import Protocol
from monitor.protocol.run import ProtocolRun, RunView
from monitor.session.options import Mode, SessionOptions
from monitor.session.result import SessionResult
from monitor.session.run import run_session
from monitor.store.db import Store

STALL_S = 0.5  # no frame for this long: the check is told there are no frames
CURVE_S = 20.0  # seconds of live curve kept for the display
CONTROLS = ("pause", "resume", "repeat", "skip", "abort")
# steps in which the eyes are expected open and visible (the eyes_covered check applies)
_EYES_OPEN_STEPS = {"neutral", "raising_eyebrows", "surprise", "fear", "mouth_open", "gaze_left", "gaze_right",
                    "gaze_up", "gaze_up_left", "gaze_up_right", "whistling"}


@dataclass(frozen=True)
class CheckRequest:
    protocol: Protocol
    source: str
    person: str | None = None
    keep_video: bool = False  # raw video is kept only with this explicit opt-in
    iris_mm: float | None = None
    mirror: bool = True


@dataclass(frozen=True)
class CheckSnapshot:
    """What the UI shows, read in one go."""

    view: RunView
    quality: Quality
    session_id: str | None
    running: bool  # the session's thread is alive
    error: str | None
    frames: int
    fps: float
    curve: dict = field(default_factory=dict)  # t_s, eye_aperture_left_mm, … arrays over the last CURVE_S
    latest: dict = field(default_factory=dict)  # the newest row's measures


class LiveCheck:
    def __init__(self, request: CheckRequest, *, store_root: Path | None, backend: str = "mediapipe",
                 engine_endpoint: str | None = None, preview: PreviewEncoder | None = None, cnn=None) -> None:
        self.request = request
        self.store_root = store_root
        self.backend = backend
        self.engine_endpoint = engine_endpoint
        self.cnn = cnn
        self.run = ProtocolRun(request.protocol)
        self.preview = preview or PreviewEncoder()
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._image = None
        self._landmarks = None
        self._quality: Quality = NO_FRAMES
        self._last_frame_t: float | None = None
        self._t_offset: float | None = None  # series t_s − monotonic seconds
        self._curve: deque = deque()
        self._latest: dict = {}
        self._frames = 0
        self._fps_window: deque = deque(maxlen=60)
        self._saved_events = 0
        self._store: Store | None = None
        self._video: VideoKeeper | None = None
        self.session_id: str | None = None
        self.result: SessionResult | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._main, name="live-check", daemon=True)

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> "LiveCheck":
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        r = self.request
        opts = SessionOptions(source=r.source, store_root=self.store_root, backend=self.backend, mode=Mode.LIVE,
                              realtime=True, repeat=1_000_000, engine_endpoint=self.engine_endpoint,
                              iris_mm=r.iris_mm, person=r.person, on_result=self._on_result,
                              on_preview=self._on_preview, on_start=self._on_start, stop=self.stop_event,
                              cnn=self.cnn, sustained_steps=r.protocol.sustained_steps)
        try:
            self.result = run_session(opts)
        except FacemonitorError as e:
            self.error = str(e)
            self.result = getattr(e, "result", None)
        except Exception as e:  # reported in the UI, never lost in a thread
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self._finish()

    def _on_start(self, session_id: str) -> None:
        self.session_id = session_id
        self._store = Store(self.store_root)  # this thread's own connection
        self._store.set_protocol(session_id, self.request.protocol.name, "running")
        if self.request.keep_video:
            path = self._store.session_dir(session_id) / "video.mp4"
            self._video = VideoKeeper(path).start()
            self._store.set_video(session_id, path)

    def _finish(self) -> None:
        with self._lock:
            if not self.run.finished:
                self.run.abort(time.monotonic())
        if self._video is not None:
            dropped = self._video.close()
            if dropped:
                self.run.events.append((time.monotonic(), "video_frames_dropped", f"{dropped} frames not kept"))
        store = self._store
        if store is None:
            return
        if self.result is not None:  # steps whose frames did not show what they asked: not_performed
            mark_records(self.run.records, {k: st.compliance for k, st in self.result.summary.steps.items()
                                            if st.compliance is not None})
        try:
            self._save_progress(store)
            store.set_protocol(self.session_id, self.request.protocol.name,
                               "done" if self.run.phase == "done" else "aborted")
        finally:
            store.close()
            self._store = None

    def _session_s(self, t: float | None) -> float | None:
        return None if t is None or self._t_offset is None else round(t + self._t_offset, 3)

    def _save_progress(self, store: Store) -> None:
        """Steps and new protocol events to the store (on each transition, and at the end)."""
        records = [rec.__class__(**{**rec.__dict__, "started_s": self._session_s(rec.started_s),
                                    "ended_s": self._session_s(rec.ended_s)}) for rec in self.run.records]
        store.save_steps(self.session_id, records)
        new = self.run.events[self._saved_events:]
        store.add_events(self.session_id, [(kind, f"{detail} (t={self._session_s(t)} s)", None)
                                           for t, kind, detail in new])
        self._saved_events += len(new)

    # -- hooks, in the session's thread --------------------------------------------------------------
    def _on_preview(self, image: np.ndarray, landmarks) -> None:
        self._image, self._landmarks = image, landmarks
        if self._video is not None:
            self._video.submit(image)

    def _expect_open_eyes(self) -> bool:
        step = self.run.current
        return step is not None and step.step in _EYES_OPEN_STEPS

    def _on_result(self, row: dict) -> None:
        t = row["t_capture_ns"] / 1e9
        image = self._image
        landmarks = self._landmarks if row["face"] else None
        light = face_light(image, landmarks) if (image is not None and landmarks is not None) else None
        shape = image.shape[:2] if image is not None else (row["image_height"], row["image_width"])
        with self._lock:
            quality = assess(row, light, landmarks, shape, eyes_should_be_open=self._expect_open_eyes(),
                             iris_mm=self.request.iris_mm or 11.7)
            if self._t_offset is None:
                self._t_offset = row["t_s"] - t
            n_events = len(self.run.events)
            if self.run.phase == "ready":
                self.run.start(t)
            self.run.tick(t, quality.ok)
            label = self.run.label()
            row["step"] = label
            row["step_attempt"] = self.run.records[self.run.index].attempts if label else None
            row["quality"] = quality.code
            self._quality = quality
            self._last_frame_t = t
            self._frames += 1
            self._fps_window.append(t)
            self._latest = row
            self._curve.append(row)
            while self._curve and self._curve[0]["t_s"] < row["t_s"] - CURVE_S:
                self._curve.popleft()
            changed = len(self.run.events) != n_events
            finished = self.run.finished
        self.preview.submit(image, landmarks, quality.ok, self.request.mirror)
        if changed and self._store is not None:
            self._save_progress(self._store)
        if finished:
            self.stop_event.set()

    # -- the UI's side -----------------------------------------------------------------------------------
    def control(self, action: str) -> None:
        if action not in CONTROLS:
            raise ValueError(f"unknown control {action!r} (controls: {', '.join(CONTROLS)})")
        with self._lock:
            getattr(self.run, action)(time.monotonic())
            if self.run.finished:
                self.stop_event.set()

    def poll(self, now: float | None = None) -> None:
        """Called by the UI timer: when frames stop arriving, time still passes with bad quality."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.run.phase in ("countdown", "step") and (self._last_frame_t is None or now - self._last_frame_t > STALL_S):
                self.run.tick(now, False)
                self._quality = NO_FRAMES

    def snapshot(self) -> CheckSnapshot:
        with self._lock:
            rows = list(self._curve)
            ts = list(self._fps_window)
            fps = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
            view = self.run.view(self._quality.prompt if self.run.phase in ("countdown", "step") and not self._quality.ok
                                 else "")
            latest = dict(self._latest)
            quality = self._quality
            frames = self._frames
        keys = ("t_s", "eye_aperture_left_mm", "eye_aperture_right_mm", "mrd1_left_mm", "mrd1_right_mm")
        curve = {k: np.array([np.nan if r.get(k) is None else r.get(k) for r in rows], float) for k in keys}
        return CheckSnapshot(view, quality, self.session_id, self.running, self.error, frames, round(fps, 1),
                             curve, latest)
