"""One analysis session: source → capture thread → ZeroMQ → engine process → series in the store.

``run_session`` checks what it can before anything is recorded (source, backend, 3D-CNN model),
starts or reaches an engine, and hands over to ``monitor.session.loop.SessionLoop``. Photos are
sessions too: one photo (``run_session``) or a palsy photo set (``run_photo_set``), each photo a
frame; measures that need time are absent, and a photo without a face leaves the session incomplete.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

from calibration.scale import IRIS_MM_RANGE
from engines import BackendUnavailable, create_runner
from monitor.capture.photo_set import PhotoSet, read_photos
from monitor.capture.sources import SourceSpec, open_capture, parse_source
from monitor.capture.still import PHOTO_SET_FPS, StillImage
from monitor.engine.local import LocalEngine
from monitor.engine.options import CnnOptions
from monitor.errors import EngineError, SessionIncomplete, StoreError, UsageError
from monitor.protocol.run import StepRecord
from monitor.session.loop import SessionLoop
from monitor.session.options import Mode, SessionOptions
from monitor.session.result import SessionResult
from monitor.store.db import Store
from monitor.transport.client import EngineClient


def run_session(opts: SessionOptions, engine: LocalEngine | None = None) -> SessionResult:
    """Analyse ``opts.source`` into a new session. Raises FacemonitorError for bad input before any
    session exists; once a session exists, failures mark it incomplete and then raise. A photo is a
    one-frame session (mode ``photo``), complete only when the photo has a face.

    ``engine``: the session's local engine, started early by the caller so that its start-up
    overlaps the caller's own (``facemonitor analyze``); the session uses it and stops it, also when
    the source is refused."""
    t_start = time.monotonic()
    try:
        spec = parse_source(opts.source)
        cap = open_capture(spec)
    except BaseException:
        if engine is not None:
            engine.stop()
        raise
    if isinstance(cap, StillImage):
        opts = replace(opts, mode=Mode.PHOTO)
    return _run(opts, spec, cap, t_start, engine=engine)


def run_photo_set(opts: SessionOptions, photos: PhotoSet) -> SessionResult:
    """A palsy photo set into one session (mode ``photo_set``): photo i is frame i at t_s = i,
    labelled with its pose's step; complete only when every photo has a face."""
    t_start = time.monotonic()
    cap = StillImage(read_photos(photos), fps=PHOTO_SET_FPS)
    opts = replace(opts, mode=Mode.PHOTO_SET, step_at=photos.step_at, max_seconds=None, repeat=1)
    return _run(opts, SourceSpec("file", photos.source), cap, t_start, photos)


def _faceless(faces: dict[int, bool], photos: PhotoSet | None) -> str | None:
    """Why a photo session is not complete: the photos without a face (None when every one has one)."""
    if photos is None:
        return None if faces.get(0) else "no face was found in the photo"
    lost = [f"{p.pose.name} ({p.path.name})" for i, p in enumerate(photos.photos) if not faces.get(i)]
    return f"no face was found in {len(lost)} of {len(photos.photos)} photos: {', '.join(lost)}" if lost else None


def photo_steps(photos: PhotoSet, faces: dict[int, bool]) -> list[StepRecord]:
    """One step record per photo: ``done`` when it has a face, else ``no_face``; at t_s = its index."""
    return [StepRecord(i, p.pose.step, "done" if faces.get(i) else "no_face", float(i), float(i), 0.0, 1)
            for i, p in enumerate(photos.photos)]


def _run(opts: SessionOptions, spec: SourceSpec, cap, t_start: float, photos: PhotoSet | None = None,
         engine: LocalEngine | None = None) -> SessionResult:
    faces: dict[int, bool] = {}  # photos: frame id → face found
    if opts.mode.still:
        def on_result(row: dict, hook=opts.on_result) -> None:
            faces[row["frame"]] = bool(row["face"])
            if hook is not None:
                hook(row)
        opts = replace(opts, on_result=on_result)
    store = client = None
    try:
        if opts.cnn is not None:
            if opts.engine_endpoint:
                raise UsageError("--cnn starts the model in a local engine; a running engine loads its own "
                                 "(facemonitor engine --cnn MODEL)")
            check_cnn(opts.cnn)
        store = Store(opts.store_root)
        if engine is not None:  # started early by the caller, before the store was open
            check_backend(opts.backend)
            engine.keep_log_in(store.logs_dir)
            client = EngineClient(engine.endpoint, window=opts.window)
            pong = engine.wait_ready(client)
        elif opts.engine_endpoint:
            client = EngineClient(opts.engine_endpoint, window=opts.window)
            pong = wait_for_engines(client, opts.engine_endpoint)
        else:
            check_backend(opts.backend)
            if opts.iris_mm is None and opts.person:  # the person's own iris diameter, when known
                known = store.latest_baseline(opts.person)
                lo, hi = IRIS_MM_RANGE  # a baseline saved before the range was checked may lie outside it
                iris = known.iris_mm if known else None
                opts = replace(opts, iris_mm=iris if iris is not None and lo <= iris <= hi else None)
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
        loop = SessionLoop(opts, spec, cap, store, client, engine, t_start, pong.get("cnn"))
        if photos is not None:
            loop.pending.events.append(("photo_set", json.dumps(photos.as_json()), None))
        status, error = loop.record()
        if status == "complete" and opts.mode.still and (error := _faceless(faces, photos)):
            status = "incomplete"
        if photos is not None:  # the Review tab's step table: one row per pose
            try:
                store.save_steps(loop.sid, photo_steps(photos, faces))
            except StoreError as e:  # (a full disk) the session still ends, incomplete, with what is on disk
                status, error = "incomplete", "; ".join(x for x in (error, str(e)) if x)
        try:
            result = loop.finish(status, error)
        except SessionIncomplete as e:
            if photos is not None and e.result is not None:
                e.result.photo_set = photos.as_json()
            raise
        if photos is not None:
            result.photo_set = photos.as_json()
        return result
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
    try:
        create_runner(backend)  # not activated: this only resolves the backend
        if backend in ("onnx", "onnx-cuda", "tensorrt"):
            from engines.facemesh.models import load_model_set  # lazy: onnxruntime loads only for these backends

            # the files against their manifest; the engine checks the networks on the sessions it loads
            load_model_set(os.environ.get("FACEMONITOR_ONNX_DIR"), check_networks=False)
    except BackendUnavailable as e:
        raise UsageError(str(e)) from None


def check_cnn(cnn: CnnOptions) -> None:
    """Refuse a clip model the engine would refuse, before anything starts (clear error, nothing written)."""
    from monitor.cnn.live import load_clip_model  # lazy: onnxruntime loads only with a 3D-CNN

    runner, _ = load_clip_model(cnn.model, "onnxruntime-cpu", 1, allow_untrained=cnn.benchmark)  # the CPU reads any
    runner.deactivate()
