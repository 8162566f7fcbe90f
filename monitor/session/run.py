"""One analysis session: source → capture thread → ZeroMQ → engine process → series in the store."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np

from calibration.baseline import neutral_medians
from engines.base import BLENDSHAPE_NAMES
from monitor.capture.mailbox import FrameMailbox
from monitor.capture.sources import open_capture, parse_source
from monitor.capture.thread import CaptureThread
from monitor.engine.local import LocalEngine
from monitor.engine.options import CnnOptions
from monitor.errors import EngineError, FacemonitorError, SessionIncomplete, UsageError
from monitor.measures.summary import summarize
from monitor.session.cnn import cnn_summary
from monitor.session.options import SessionOptions, StageTimes
from monitor.session.result import EngineGaps, SessionResult
from monitor.store.db import Store
from monitor.store.series import SeriesWriter
from monitor.transport import wire
from monitor.transport.client import EngineClient


def _row(meta: dict, reply: wire.Reply, latency_ms: float) -> dict:
    row = {"frame": meta["frame"], "t_s": meta["t_media_us"] / 1e6, "face": meta["face"], "faces": meta["faces"],
           "step": meta.get("step", ""), "image_width": meta["width"], "image_height": meta["height"],
           "t_capture_ns": meta["t_capture_ns"], "latency_ms": latency_ms}
    row.update(meta["measures"])
    if reply.blendshapes is not None:
        row.update(zip(BLENDSHAPE_NAMES, reply.blendshapes.tolist()))
    return row


def run_session(opts: SessionOptions) -> SessionResult:
    """Analyse ``opts.source`` into a new session. Raises FacemonitorError for bad input before any
    session exists; once a session exists, failures mark it incomplete and then raise."""
    t_start = time.monotonic()
    spec = parse_source(opts.source)
    cap = open_capture(spec)
    store = None
    engine = None
    client = None
    try:
        if opts.cnn is not None:
            if opts.engine_endpoint:
                raise UsageError("--cnn starts the model in a local engine; a running engine loads its own "
                                 "(facemonitor engine --cnn MODEL)")
            check_cnn(opts.cnn)
        store = Store(opts.store_root)
        if opts.engine_endpoint:
            client = EngineClient(opts.engine_endpoint, window=opts.window)
            pong = wait_for_engines(client, opts.engine_endpoint)
        else:
            check_backend(opts.backend)
            if opts.iris_mm is None and opts.person:  # the person's own iris diameter, when known
                known = store.latest_baseline(opts.person)
                opts.iris_mm = known.iris_mm if known else None
            engine = LocalEngine(opts.backend, opts.iris_mm, log_dir=store.logs_dir,
                                 extra_args=opts.cnn.args() if opts.cnn else None)
            client = EngineClient(engine.endpoint, window=opts.window)
            pong = engine.wait_ready(client)
    except BaseException:
        cap.release()
        if client:
            client.close()
        if engine:
            engine.stop()
        if store:
            store.close()
        raise
    try:
        return _record(opts, spec, cap, store, engine, client, t_start, pong.get("cnn"))
    finally:
        client.close()
        if engine:
            engine.stop()
        store.close()


def wait_for_engines(client: EngineClient, endpoint: str, timeout_s: float = 10.0) -> dict:
    """The pong of a running engine, or of a broker once it has at least one engine."""
    deadline = time.monotonic() + timeout_s
    pong = client.ping(timeout_s)
    while pong.get("broker") and not pong.get("engines"):
        if time.monotonic() > deadline:
            raise EngineError(f"the broker at {endpoint} has no engines (start one with: facemonitor engine "
                              "--broker ENDPOINT)")
        time.sleep(0.2)
        pong = client.ping(timeout_s)
    return pong


def check_backend(backend: str) -> None:
    """Refuse what the engine would refuse, before anything starts: a backend that is unknown or not
    installed (the message names those available), then an exported landmark model that is missing
    or altered."""
    from engines import BackendUnavailable, create_runner

    try:
        create_runner(backend)  # not activated: this only resolves the backend
        if backend in ("onnx", "onnx-cuda", "tensorrt"):
            from engines.facemesh.models import load_model_set

            load_model_set()
    except BackendUnavailable as e:
        raise UsageError(str(e)) from None


def check_cnn(cnn: CnnOptions) -> None:
    """Refuse a clip model the engine would refuse, before anything starts (clear error, nothing written)."""
    from monitor.cnn.live import load_clip_model

    runner, _ = load_clip_model(cnn.model, "onnxruntime-cpu", 1, allow_untrained=cnn.benchmark)  # the CPU reads any
    runner.deactivate()


def _record(opts, spec, cap, store: Store, engine: LocalEngine | None, client: EngineClient, t_start: float,
            cnn_info: dict | None = None):
    sid = store.create_session(spec.describe(), opts.mode, opts.backend, opts.person)
    if opts.on_start is not None:
        opts.on_start(sid)
    writer = SeriesWriter(store.session_dir(sid))
    events: list[tuple[str, str | None, int | None]] = []
    clips: list[dict] = []  # 3D-CNN outputs not yet stored
    all_clips: list[dict] = []
    mailbox = FrameMailbox(opts.mode, block=not spec.is_device)
    capture = CaptureThread(spec, mailbox, capture=cap, realtime=opts.realtime or spec.is_device,
                            repeat=opts.repeat, max_seconds=opts.max_seconds,
                            on_event=lambda kind, detail, frame: events.append((kind, detail, frame)))
    stream = uuid.uuid4()
    stages = StageTimes()
    gap = EngineGaps()
    sent: dict[int, tuple[float, int]] = {}
    images: dict[int, object] = {}  # frame id → image, kept only while a preview wants it
    frames = faces = 0
    status, error = "complete", None
    first_result_s = None
    t_first_send = t_last_result = None
    end_sent = False
    last_reply = time.monotonic()
    last_progress = time.monotonic()
    capture.start()
    try:
        while True:
            if opts.stop is not None and opts.stop.is_set():
                capture.stop()  # the capture thread closes the mailbox; END follows the frames in flight
            while client.has_credit and not end_sent:
                frame = mailbox.get(timeout=0.0 if client.in_flight else 0.05)
                if frame is None:
                    if mailbox.exhausted:
                        client.send_control(wire.Kind.END, stream)
                        end_sent = True
                    break
                t_send = time.monotonic_ns()
                step = opts.step_at(frame.t_media_us / 1e6) if opts.step_at is not None else ""
                client.send_frame(stream, frame.frame_id, frame.t_capture_ns, frame.t_media_us, frame.image,
                                  step=step, dropped_total=len(mailbox.dropped_ids))
                sent[frame.frame_id] = (frame.decode_ms, t_send)
                if opts.on_preview is not None:
                    images[frame.frame_id] = frame.image
                t_first_send = t_first_send or time.monotonic()
            if client.in_flight == 0:
                continue
            reply = client.recv(100)
            now = time.monotonic()
            if reply is None:
                if engine is not None and not engine.alive():
                    raise EngineError(f"the engine process died (exit code {engine.proc.returncode})")
                if now - last_reply > opts.reply_timeout_s:
                    raise EngineError(f"the engine sent nothing for {opts.reply_timeout_s:.0f} s")
                continue
            last_reply = now
            meta = reply.meta
            kind = meta["kind"]
            for out in meta.get("cnn") or ():
                clips.append(out)
                all_clips.append(out)
                if opts.on_clip is not None:
                    opts.on_clip(out)
            if kind == "end":
                if meta.get("cnn_stats") and cnn_info:
                    cnn_info["stats"] = meta["cnn_stats"]
                break
            if kind == "reject":
                events.append(("engine_rejected", meta.get("reason"), None))
                continue
            if kind == "lost":  # the broker lost an engine with this frame (or the stream's END) in it
                if meta.get("end"):
                    client.send_control(wire.Kind.END, stream)  # ask the stream's new engine
                    continue
                sent.pop(meta.get("frame"), None)
                images.pop(meta.get("frame"), None)
                gap.lost(meta)
                events.append(("frame_lost", meta.get("reason"), meta.get("frame")))
                continue
            if kind != "result" or meta.get("stream") != str(stream):
                continue
            switch = gap.result(meta, now)
            if switch is not None:
                events.append(("engine_takeover", json.dumps(switch), meta["frame"]))
            t_got = time.monotonic_ns()
            decode_ms, t_send = sent.pop(meta["frame"], (np.nan, t_got))
            latency_ms = (t_got - meta["t_capture_ns"]) / 1e6
            row = _row(meta, reply, latency_ms)
            # the display hooks see the frame before it is written: on_result may label the row
            if opts.on_preview is not None and meta["frame"] in images:
                opts.on_preview(images.pop(meta["frame"]), reply.landmarks)
            if opts.on_result is not None:
                opts.on_result(row)
            t0 = time.perf_counter()
            writer.append(row, reply.landmarks if meta["face"] else None)
            store_ms = (time.perf_counter() - t0) * 1e3
            timing = meta["timing"]
            stages.decode.append(decode_ms)
            stages.transport.append((timing["t_recv_ns"] - t_send) / 1e6)
            stages.landmarks.append(timing["landmarks_ms"])
            stages.kernels.append(timing["kernels_ms"])
            stages.store.append(store_ms)
            stages.latency.append(latency_ms)
            frames += 1
            faces += bool(meta["face"])
            t_last_result = now
            if first_result_s is None:
                first_result_s = now - t_start
            if now - last_progress > 1.0:
                store.add_events(sid, events)
                events.clear()
                store.add_clip_outputs(sid, clips)
                clips.clear()
                store.update_progress(sid, frames, faces, len(mailbox.dropped_ids))
                last_progress = now
        if capture.error is not None:
            status, error = "incomplete", f"source failed: {capture.error}"
    except FacemonitorError as e:
        status, error = "incomplete", str(e)
    except KeyboardInterrupt:
        status, error = "incomplete", "interrupted"
    finally:
        capture.stop()
        capture.join(5)
        writer.flush()
        events.extend(("frame_dropped", f"{opts.mode} mode", fid) for fid in mailbox.dropped_ids)
        if error:
            events.append(("session_error", error, None))
        store.add_events(sid, events)
        store.add_clip_outputs(sid, clips)
        span = (t_last_result - t_first_send) if (t_last_result and t_first_send) else 0.0
        fps = (frames - 1) / span if span > 0 and frames > 1 else 0.0
        table = store.read_series(sid)
        baseline = store.latest_baseline(opts.person)
        summary = summarize(table, baseline.as_dict() if baseline else None) if table.num_rows \
            else {"face_found": False, "message": "no frames were processed"}
        cnn = cnn_summary(table, all_clips, cnn_info)
        if cnn is not None:
            summary["cnn"] = cnn
        if opts.person and baseline is None and status == "complete" and summary.get("neutral_medians"):
            store.save_baseline(opts.person, sid, neutral_medians(summary), opts.iris_mm)
            summary["baseline_saved"] = True
        series = store.finish_session(sid, status, frames=frames, frames_with_face=faces,
                                      dropped_frames=len(mailbox.dropped_ids), processing_fps=round(fps, 3),
                                      summary=summary, error=error)
    result = SessionResult(sid, status, spec.describe(), frames, faces, fps, len(mailbox.dropped_ids),
                           list(mailbox.dropped_ids), client.bad_replies, str(series) if series else None,
                           summary, error, first_result_s, stages)
    if status != "complete":
        if error == "interrupted":
            raise KeyboardInterrupt
        raise SessionIncomplete(f"{error}; session {sid} kept as incomplete with {frames} frames", result)
    return result
