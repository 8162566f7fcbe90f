"""The reply loop of one session: frames go to the engine while the client has credit, and each reply
kind has its own handler (result, end, reject, lost). ``finish`` writes what the session ends with.

Everything the loop counts lives on the ``SessionLoop``; nothing is shared with other sessions.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from calibration.baseline import neutral_medians
from engines.base import BLENDSHAPE_NAMES
from monitor.capture.mailbox import FrameMailbox
from monitor.capture.sources import SourceSpec
from monitor.capture.thread import CaptureThread
from monitor.engine.local import LocalEngine
from monitor.errors import EngineError, FacemonitorError, SessionIncomplete, StoreError
from monitor.measures.summary import NO_FRAMES, SessionSummary, summarize
from monitor.session.cnn import cnn_summary
from monitor.session.options import SessionOptions, StageTimes
from monitor.session.result import EngineGaps, FrameLedger, SessionResult
from monitor.store.db import Store
from monitor.store.series import SeriesWriter
from monitor.transport import wire
from monitor.transport.client import EngineClient
from monitor.transport.wire import ReplyKind

PROGRESS_EVERY_S = 1.0  # events, clip outputs and counts reach the store this often while a session runs


def series_row(meta: dict, reply: wire.Reply, latency_ms: float) -> dict:
    """The series row of one result reply (measures, blendshapes and the frame's own fields)."""
    row = {"frame": meta["frame"], "t_s": meta["t_media_us"] / 1e6, "face": meta["face"], "faces": meta["faces"],
           "step": meta.get("step", ""), "image_width": meta["width"], "image_height": meta["height"],
           "t_capture_ns": meta["t_capture_ns"], "latency_ms": latency_ms}
    row.update(meta["measures"])
    if reply.blendshapes is not None:
        row.update(zip(BLENDSHAPE_NAMES, reply.blendshapes.tolist()))
    return row


@dataclass
class Counts:
    """What the loop has seen so far."""

    frames: int = 0
    faces: int = 0
    first_result_s: float | None = None
    t_first_send: float | None = None
    t_last_result: float | None = None

    @property
    def fps(self) -> float:
        span = (self.t_last_result - self.t_first_send) if (self.t_last_result and self.t_first_send) else 0.0
        return (self.frames - 1) / span if span > 0 and self.frames > 1 else 0.0


@dataclass
class Pending:
    """What waits to be written to the store (events and 3D-CNN outputs)."""

    events: list = field(default_factory=list)  # (kind, detail, frame id)
    clips: list = field(default_factory=list)  # not yet stored
    all_clips: list = field(default_factory=list)  # the whole session's, for its summary


class SessionLoop:
    def __init__(self, opts: SessionOptions, spec: SourceSpec, cap, store: Store, client: EngineClient,
                 engine: LocalEngine | None, t_start: float, cnn_info: dict | None) -> None:
        self.opts, self.spec, self.store, self.client, self.engine = opts, spec, store, client, engine
        self.t_start = t_start
        self.cnn_info = cnn_info
        self.sid = store.create_session(spec.describe(), opts.mode, opts.backend, opts.person)
        if opts.on_start is not None:
            opts.on_start(self.sid)
        self.writer = SeriesWriter(store.session_dir(self.sid))
        self.pending = Pending()
        self.mailbox = FrameMailbox(opts.mode.delivery, block=not spec.is_device)
        self.capture = CaptureThread(spec, self.mailbox, capture=cap, realtime=opts.realtime or spec.is_device,
                                     repeat=opts.repeat, max_seconds=opts.max_seconds,
                                     give_up_after_s=opts.source_timeout_s,
                                     on_event=lambda kind, detail, frame: self.pending.events.append((kind, detail, frame)))
        self.stream = uuid.uuid4()
        self.stages = StageTimes()
        self.gap = EngineGaps()
        self.counts = Counts()
        self.ledger = FrameLedger()  # every frame sent and what became of it
        self.sent: dict[int, tuple[float, int]] = {}  # frame id → (decode ms, send time ns)
        self.images: dict[int, np.ndarray] = {}  # frame id → image, kept only while a preview wants it
        self.end_sent = False
        self.last_reply = self.last_progress = time.monotonic()

    # -- the loop ----------------------------------------------------------------------------------
    def record(self) -> tuple[str, str | None]:
        """Run until the stream's END is answered; returns (status, error)."""
        self.capture.start()
        try:
            self._loop()
        except FacemonitorError as e:
            return "incomplete", str(e)
        except KeyboardInterrupt:
            return "incomplete", "interrupted"
        if self.capture.error is not None:
            return "incomplete", f"source failed: {self.capture.error}"
        if self.capture.shortfall is not None:  # damaged or truncated media: frames the container lists are missing
            return "incomplete", self.capture.shortfall
        return "complete", None

    def _loop(self) -> None:
        handlers = {ReplyKind.RESULT: self._on_result, ReplyKind.END: self._on_end,
                    ReplyKind.REJECT: self._on_reject, ReplyKind.LOST: self._on_lost}
        while True:
            if self.opts.stop is not None and self.opts.stop.is_set():
                self.capture.stop()  # the capture thread closes the mailbox; END follows the frames in flight
            self._send_waiting()
            if self.client.in_flight == 0:
                continue
            reply = self.client.recv(100)
            now = time.monotonic()
            if reply is None:
                self._check_engine(now)
                continue
            self.last_reply = now
            self._take_clips(reply.meta)
            handler = handlers.get(reply.kind)
            if handler is not None and handler(reply, now):
                return

    def _send_waiting(self) -> None:
        """Send frames while the client has credit; END once the source is exhausted."""
        client, mailbox = self.client, self.mailbox
        while client.has_credit and not self.end_sent:
            frame = mailbox.get(timeout=0.0 if client.in_flight else 0.05)
            if frame is None:
                if mailbox.exhausted:
                    client.send_control(wire.Kind.END, self.stream)
                    self.end_sent = True
                return
            t_send = time.monotonic_ns()
            step = self.opts.step_at(frame.t_media_us / 1e6) if self.opts.step_at is not None else ""
            client.send_frame(self.stream, frame.frame_id, frame.t_capture_ns, frame.t_media_us, frame.image,
                              step=step, dropped_total=len(mailbox.dropped_ids))
            self.sent[frame.frame_id] = (frame.decode_ms, t_send)
            self.ledger.sent += 1
            if self.opts.on_preview is not None:
                self.images[frame.frame_id] = frame.image
            self.counts.t_first_send = self.counts.t_first_send or time.monotonic()

    def _check_engine(self, now: float) -> None:
        if self.engine is not None and not self.engine.alive():
            raise EngineError(f"the engine process died (exit code {self.engine.proc.returncode})")
        if now - self.last_reply > self.opts.reply_timeout_s:
            raise EngineError(f"the engine sent nothing for {self.opts.reply_timeout_s:.0f} s")

    def _take_clips(self, meta: dict) -> None:
        for out in meta.get("cnn") or ():
            self.pending.clips.append(out)
            self.pending.all_clips.append(out)
            if self.opts.on_clip is not None:
                self.opts.on_clip(out)

    # -- one handler per reply kind; each returns True when the session's replies are all in -----------
    def _on_end(self, reply: wire.Reply, now: float) -> bool:
        if reply.meta.get("cnn_stats") and self.cnn_info:
            self.cnn_info["stats"] = reply.meta["cnn_stats"]
        return True

    def _on_reject(self, reply: wire.Reply, now: float) -> bool:
        """The engine refused a message: a frame it names is lost; otherwise the frame stays unanswered and
        the reason is counted (a session with unanswered frames ends incomplete)."""
        reason = reply.meta.get("reason") or "rejected"
        frame = reply.meta.get("frame")
        if frame in self.sent:
            self.sent.pop(frame)
            self.images.pop(frame, None)
            self.ledger.lost[frame] = f"rejected by the engine: {reason}"
        else:
            self.ledger.rejects[f"rejected by the engine: {reason}"] += 1
        self.pending.events.append(("engine_rejected", reason, frame))
        return False

    def _on_lost(self, reply: wire.Reply, now: float) -> bool:
        """The broker lost an engine with this frame (or the stream's END) in it."""
        meta = reply.meta
        if meta.get("end"):
            self.client.send_control(wire.Kind.END, self.stream)  # ask the stream's new engine
            return False
        self.sent.pop(meta.get("frame"), None)
        self.images.pop(meta.get("frame"), None)
        if meta.get("frame") is not None:
            self.ledger.lost[meta["frame"]] = f"lost: {meta.get('reason') or 'engine gone'}"
        self.gap.lost(meta)
        self.pending.events.append(("frame_lost", meta.get("reason"), meta.get("frame")))
        return False

    def _on_result(self, reply: wire.Reply, now: float) -> bool:
        meta = reply.meta
        if meta.get("stream") != str(self.stream):
            return False
        switch = self.gap.result(meta, now)
        if switch is not None:
            self.pending.events.append(("engine_takeover", json.dumps(switch), meta["frame"]))
        t_got = time.monotonic_ns()
        if meta["frame"] in self.sent or self.ledger.lost.pop(meta["frame"], None) is not None:
            self.ledger.answered += 1  # a frame given up as lost that is answered after all has its result
        decode_ms, t_send = self.sent.pop(meta["frame"], (np.nan, t_got))
        latency_ms = (t_got - meta["t_capture_ns"]) / 1e6
        row = series_row(meta, reply, latency_ms)
        # the display hooks see the frame before it is written: on_result may label the row
        if self.opts.on_preview is not None and meta["frame"] in self.images:
            self.opts.on_preview(self.images.pop(meta["frame"]), reply.landmarks)
        if self.opts.on_result is not None:
            self.opts.on_result(row)
        t0 = time.perf_counter()
        self.writer.append(row, reply.landmarks if meta["face"] else None)
        timing = meta["timing"]
        self.stages.add(decode_ms=decode_ms, transport_ms=(timing["t_recv_ns"] - t_send) / 1e6,
                        landmarks_ms=timing["landmarks_ms"], kernels_ms=timing["kernels_ms"],
                        store_ms=(time.perf_counter() - t0) * 1e3, latency_ms=latency_ms)
        c = self.counts
        c.frames += 1
        c.faces += bool(meta["face"])
        c.t_last_result = now
        if c.first_result_s is None:
            c.first_result_s = now - self.t_start
        if now - self.last_progress > PROGRESS_EVERY_S:
            self._flush_progress()
            self.last_progress = now
        return False

    def _flush_pending(self) -> None:
        """Events and 3D-CNN outputs not yet in the store."""
        self.store.add_events(self.sid, self.pending.events)
        self.pending.events.clear()
        self.store.add_clip_outputs(self.sid, self.pending.clips)
        self.pending.clips.clear()

    def _flush_progress(self) -> None:
        self._flush_pending()
        self.store.update_progress(self.sid, self.counts.frames, self.counts.faces, len(self.mailbox.dropped_ids))

    # -- the end -----------------------------------------------------------------------------------
    def finish(self, status: str, error: str | None) -> SessionResult:
        """Stop the capture, write what is pending, summarise, mark the session; a session that did not
        complete raises SessionIncomplete (KeyboardInterrupt when it was interrupted) after it is kept."""
        self.capture.stop()
        self.capture.join(5)
        try:
            self.writer.flush()
        except StoreError as e:  # disk full: the chunks on disk stay, the rows still in memory are lost
            more = f"{self.writer.pending_rows} frames with a result could not be written"
            status, error = "incomplete", _joined(_joined(error, str(e)), more)
        self.pending.events.extend(("frame_dropped", f"{self.opts.mode} mode", fid) for fid in self.mailbox.dropped_ids)
        status, error = self._account(status, error)
        if error:
            self.pending.events.append(("session_error", error, None))
        try:
            self._flush_pending()  # the counts go in with finish_session below
        except StoreError as e:
            status, error = "incomplete", _joined(error, str(e))
        summary = self._summary(status)
        c, w = self.counts, self.writer  # the row's frame counts are what is on disk
        dropped = len(self.mailbox.dropped_ids)
        fps = None if self.opts.mode.still else round(c.fps, 3)  # photos have no frame rate
        self.store.release_reserve(self.sid)  # the space kept for this moment, should the disk be full
        try:
            series = self.store.finish_session(self.sid, status, frames=w.rows_written,
                                               frames_with_face=w.faces_written, dropped_frames=dropped,
                                               processing_fps=fps, summary=summary, error=error)
        except StoreError as e:  # recorded incomplete when it could be; else recovered when the store is next opened
            status, series, error = "incomplete", None, _joined(error, str(e))
        result = SessionResult(self.sid, status, self.spec.describe(), w.rows_written, w.faces_written, fps,
                               dropped, list(self.mailbox.dropped_ids), self.client.bad_replies,
                               str(series) if series else None, summary, error, c.first_result_s, self.stages,
                               lost_frame_ids=self.ledger.missing(self.sent))
        if status != "complete":
            if error == "interrupted":
                raise KeyboardInterrupt
            raise SessionIncomplete(f"{error}; session {self.sid} kept as incomplete with {w.rows_written} frames",
                                    result)
        return result

    def _account(self, status: str, error: str | None) -> tuple[str, str | None]:
        """The final status after counting: frames sent without a result (lost, rejected, never answered)
        are listed in an event, and a session that would end complete without them ends incomplete."""
        shortfall = self.ledger.shortfall(self.sent)
        if shortfall is None:
            return status, error
        self.pending.events.append(("frames_without_result", shortfall, None))
        if status == "complete":
            return "incomplete", shortfall
        return status, error

    def _summary(self, status: str) -> SessionSummary:
        """The session's summary, with the 3D-CNN's votes; the person's first complete session with a
        neutral window becomes their baseline."""
        opts = self.opts
        table = self.store.read_series(self.sid)
        baseline = self.store.latest_baseline(opts.person)
        summary = summarize(table, baseline.as_dict() if baseline else None, still=opts.mode.still,
                            sustained=opts.sustained_steps) \
            if table.num_rows else NO_FRAMES
        cnn = cnn_summary(table, self.pending.all_clips, self.cnn_info)
        if cnn is not None:
            summary = replace(summary, cnn=cnn)
        if opts.person and baseline is None and status == "complete" and summary.neutral_medians:
            try:
                self.store.save_baseline(opts.person, self.sid, neutral_medians(summary.neutral_medians), opts.iris_mm)
                summary = replace(summary, baseline_saved=True)
            except StoreError:  # no baseline this time: the next complete session tries again
                pass
        return summary


def _joined(error: str | None, more: str) -> str:
    """Two reasons in one line, the second left out when the first already says it."""
    if not error:
        return more
    return error if more in error else f"{error}; {more}"
