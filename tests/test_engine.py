"""The landmark runner on real images, and the engine service over real ZeroMQ sockets."""

import threading
import time
import uuid

import cv2
import numpy as np
import pytest
import zmq
from helpers import free_port

from engines import BackendUnavailable, assets, create_runner
from monitor import __version__
from monitor.engine.local import LocalEngine
from monitor.engine.service import EngineService
from monitor.errors import EngineError
from monitor.measures.kernels import frame_measures, head_angles
from monitor.transport import wire
from monitor.transport.client import EngineClient


def rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def runner():
    with create_runner("mediapipe") as r:
        yield r


class Clock:
    t = 0

    def __call__(self):
        Clock.t += 40
        return Clock.t


tick = Clock()


def test_single_face_gives_478_landmarks_52_blendshapes(runner, sample):
    res = runner.infer(rgb(sample("single_face.jpg")), tick())
    assert res.face and res.faces == 1
    assert res.landmarks_px.shape == (478, 3) and res.blendshapes.shape == (52,)
    h, w = cv2.imread(str(sample("single_face.jpg"))).shape[:2]
    assert (res.landmarks_px[:, 0] > 0).all() and (res.landmarks_px[:, 0] < w).all()
    assert (res.landmarks_px[:, 1] > 0).all() and (res.landmarks_px[:, 1] < h).all()


def test_several_faces_reports_the_largest_and_flags(runner, sample):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    image = rgb(sample("multi_face.jpg"))
    res = runner.infer(image, tick())
    assert res.faces > 1
    # every face MediaPipe finds in the same image, straight from its own API
    opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(assets.model_path())),
                                        running_mode=vision.RunningMode.IMAGE, num_faces=4)
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        faces = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image)).face_landmarks
    h, w = image.shape[:2]
    areas = sorted(np.ptp([p.x * w for p in f]) * np.ptp([p.y * h for p in f]) for f in faces)
    assert len(faces) == res.faces and areas[-1] > areas[0]
    reported = np.ptp(res.landmarks_px[:, 0]) * np.ptp(res.landmarks_px[:, 1])
    assert reported == pytest.approx(areas[-1], rel=0.05), "the largest face is the one reported"


def test_no_face(runner):
    res = runner.infer(np.full((240, 320, 3), 127, np.uint8), tick())
    assert not res.face and res.faces == 0 and res.landmarks_px is None


def test_mirrored_face_swaps_sides_and_flips_yaw_and_roll(runner, sample_frames):
    """Anatomical sides: mirroring the image swaps left and right measures."""
    img = cv2.cvtColor(sample_frames[0], cv2.COLOR_BGR2RGB)
    rotated = cv2.warpAffine(img, cv2.getRotationMatrix2D((320, 180), 12, 1.0), (640, 360))
    a = runner.infer(rotated, tick())
    b = runner.infer(np.ascontiguousarray(rotated[:, ::-1]), tick())
    ya, pa, ra = head_angles(a.matrix)
    yb, pb, rb = head_angles(b.matrix)
    assert ra > 8 and rb < -8, "a counter-clockwise image rotation raises the patient's left eye (roll > 0)"
    assert abs(pa - pb) < 3
    ma, mb = frame_measures(a.landmarks_px, a.matrix), frame_measures(b.landmarks_px, b.matrix)
    # eye aperture, MRD1, brow and commissure heights swap sides (to within landmark noise)
    for left, right in ((0, 1), (4, 5), (6, 7)):
        assert ma[left] == pytest.approx(mb[right], rel=0.2)
        assert ma[right] == pytest.approx(mb[left], rel=0.2)


def test_runner_misuse():
    r = create_runner("mediapipe")
    with pytest.raises(RuntimeError, match="not active"):
        r.infer(np.zeros((8, 8, 3), np.uint8), 0)
    with r:
        r.infer(np.zeros((64, 64, 3), np.uint8), 100)
        with pytest.raises(ValueError, match="timestamps must increase"):
            r.infer(np.zeros((64, 64, 3), np.uint8), 100)
        with pytest.raises(ValueError, match="RGB uint8"):
            r.infer(np.zeros((64, 64), np.uint8), 200)
    assert not r.is_active


@pytest.mark.fast
def test_unknown_backend_lists_available():
    with pytest.raises(BackendUnavailable, match="available: mediapipe"):
        create_runner("tensorrt-nope")


@pytest.mark.fast
def test_wrong_model_hash_is_a_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("FACEMONITOR_MODEL", str(bad))
    with pytest.raises(assets.AssetError, match="expected 64184e229b26"):
        assets.model_path()


# ---- the engine over real sockets ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tcp_engine():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    control = f"inproc://control-{uuid.uuid4()}"
    ctx = zmq.Context.instance()
    service = EngineService(endpoint, control, ctx=ctx)
    service.warm_up()
    ready = threading.Event()
    t = threading.Thread(target=service.serve, kwargs={"ready": ready.set}, daemon=True)
    t.start()
    ready.wait(10)
    yield endpoint, service
    s = ctx.socket(zmq.PUSH)
    s.connect(control)
    s.send(b"STOP")
    s.close(linger=1000)
    t.join(10)
    assert not t.is_alive()


def send_frames(client, frames, stream=None):
    stream = stream or uuid.uuid4()
    replies = []
    for i, f in enumerate(frames):
        client.send_frame(stream, i, 0, int(i * 33_333), f)
        replies.append(client.recv(20000))
    client.send_control(wire.Kind.END, stream)
    end = client.recv(20000)
    return replies, end


def test_engine_over_tcp_returns_results_in_mm(tcp_engine, sample_frames):
    endpoint, _ = tcp_engine
    client = EngineClient(endpoint)
    try:
        replies, end = send_frames(client, sample_frames[:10])
        assert all(r.meta["kind"] == "result" and r.meta["face"] for r in replies)
        assert [r.meta["frame"] for r in replies] == list(range(10))
        m = replies[-1].meta["measures"]
        assert 4 < m["eye_aperture_left_mm"] < 16 and 4 < m["eye_aperture_right_mm"] < 16
        assert 20 < m["intercanthal_mm"] < 45
        assert end.meta == {**end.meta, "kind": "end", "frames": 10, "frames_with_face": 10}
    finally:
        client.close()


def test_grayscale_and_bgra_frames_are_accepted(tcp_engine, sample_frames):
    endpoint, _ = tcp_engine
    client = EngineClient(endpoint)
    try:
        gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in sample_frames[:3]]
        bgra = [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in sample_frames[:3]]
        for frames in (gray, bgra):
            replies, _ = send_frames(client, frames)
            assert all(r.meta["face"] for r in replies)
    finally:
        client.close()


@pytest.mark.parametrize("parts, reason", [
    ([b"garbage"], "header is"),
    ([b"\0" * wire.HEADER_BYTES], "bad magic"),
    ([b"FMF" + b"\x01" * (wire.HEADER_BYTES - 3)], "unknown message kind 257"),  # magic and version right
    ([wire.FrameHeader(wire.Kind.FRAME, uuid.uuid4(), 0, 0, 0, 10, 10).pack(), b"\0" * 299], "pixel buffer is 299"),
    ([wire.FrameHeader(wire.Kind.FRAME, uuid.uuid4(), 0, 0, 0, 10, 10).pack()], "expected 2"),
    ([wire.FrameHeader(wire.Kind.PING, uuid.uuid4()).pack(), b"extra"], "expected 1"),
])
def test_malformed_messages_rejected_counted_and_engine_keeps_running(tcp_engine, sample_frames, parts, reason):
    endpoint, service = tcp_engine
    client = EngineClient(endpoint)
    try:
        before = service.stats.rejected
        client.send_raw(parts)
        reply = client.recv(5000)
        assert reply.meta["kind"] == "reject" and reason in reply.meta["reason"]
        assert service.stats.rejected == before + 1 and reply.meta["rejected_total"] == before + 1
        replies, _ = send_frames(client, sample_frames[:1])
        assert replies[0].meta["face"], "the engine still analyses frames after a bad message"
    finally:
        client.close()


def test_message_over_the_size_limit_is_dropped_by_zmq_and_engine_survives(tcp_engine, sample_frames):
    endpoint, service = tcp_engine
    bad = EngineClient(endpoint)
    bad.send_raw([b"x" * 16, b"\0" * (wire.MAX_MESSAGE_BYTES + 1)])
    bad.close()
    client = EngineClient(endpoint)
    try:
        before = service.stats.frames
        pong = client.ping(10)
        # the pong is the engine's own answer, with its counts as they stand: the oversized message was
        # never delivered, so it is neither a frame nor a reject
        assert pong["engine"] == service.name and pong["backend"] == "mediapipe"
        assert pong["frames"] == before and pong["rejected"] == service.stats.rejected and pong["streams"] == 0
        replies, _ = send_frames(client, sample_frames[:1])
        assert replies[0].meta["face"] and service.stats.frames == before + 1
        assert client.ping(10)["frames"] == before + 1
    finally:
        client.close()


def test_pongs_to_earlier_pings_never_reach_the_results(tcp_engine, sample_frames):
    endpoint, service = tcp_engine
    client = EngineClient(endpoint)
    try:
        earlier = [uuid.uuid4() for _ in range(3)]
        for ping in earlier:  # pings retried while an engine starts: their pongs arrive late
            client.send_control(wire.Kind.PING, ping)
        pong = client.ping(10)
        # the pong ping() returns answers its own ping, not one of the earlier three
        assert uuid.UUID(pong["ping"]) not in earlier and pong["engine"] == service.name
        assert pong["version"] == __version__
        replies, end = send_frames(client, sample_frames[:2])
        assert [r.meta["kind"] for r in replies] == ["result", "result"] and end.meta["kind"] == "end"
    finally:
        client.close()


def test_local_engine_process_over_ipc(sample_frames, tmp_path):
    with LocalEngine(log_dir=tmp_path) as engine:
        client = EngineClient(engine.endpoint)
        try:
            pong = engine.wait_ready(client)
            assert pong["backend"] == "mediapipe" and engine.endpoint.startswith("ipc://")
            replies, end = send_frames(client, sample_frames[:5])
            assert all(r.meta.get("face") for r in replies) and end.meta["frames"] == 5, [r.meta for r in replies]
        finally:
            client.close()
        proc = engine.proc
    assert proc.returncode == 0, "STOP on the control socket ends the engine cleanly"


# ---- bounds (issue 17) -----------------------------------------------------------------------------

def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(400)
def test_abandoned_streams_expire_and_free_their_runners(tmp_path):
    """Clients that die without END (kill -9) leave streams behind; the engine closes them after
    --stream-idle-s and its memory stays bounded."""
    blank = np.zeros((64, 64, 3), np.uint8)
    with LocalEngine(log_dir=tmp_path, extra_args=["--stream-idle-s", "1", "--max-streams", "100"]) as engine:
        client = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(client)
            rss0 = None
            for i in range(60):
                client.send_frame(uuid.uuid4(), 0, 0, 0, blank)  # a stream that is never ended
                assert client.recv(30_000).meta["kind"] == "result"
                if i == 9:
                    rss0 = _rss_mb(engine.pid)
            deadline = time.monotonic() + 30
            while (pong := client.ping(10))["streams"] and time.monotonic() < deadline:
                time.sleep(0.5)
            rss1 = _rss_mb(engine.pid)
        finally:
            client.close()
    assert pong["streams"] == 0 and pong["expired"] == 60 and pong["limits"]["stream_idle_s"] == 1
    assert rss1 - rss0 < 300, f"engine RSS grew {rss1 - rss0:.0f} MB over 50 abandoned streams"


@pytest.mark.timeout(300)
def test_a_full_engine_refuses_a_new_stream_with_a_reason(tmp_path, sample_frames):
    with LocalEngine(log_dir=tmp_path, extra_args=["--max-streams", "2"]) as engine:
        client = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(client)
            streams = [uuid.uuid4() for _ in range(3)]
            for s in streams[:2]:
                client.send_frame(s, 0, 0, 0, sample_frames[0])
                assert client.recv(30_000).meta["kind"] == "result"
            client.send_frame(streams[2], 0, 0, 0, sample_frames[0])
            with pytest.raises(EngineError, match="refused the stream: .* is full: 2 streams open"):
                client.recv(30_000)
            client.send_control(wire.Kind.END, streams[0])  # a slot frees: the third stream gets in
            assert client.recv(30_000).meta["kind"] == "end"
            client.send_frame(streams[2], 0, 0, 0, sample_frames[0])
            assert client.recv(30_000).meta["face"]
            assert client.ping(10)["refused"] == 1
        finally:
            client.close()


@pytest.mark.timeout(300)
def test_streams_are_served_round_robin_and_queues_are_bounded(sample_frames):
    """A stream with many frames waiting does not hold back another: each round takes one frame per stream."""
    svc = EngineService("inproc://unused-fair")
    svc.warm_up()
    try:
        a, b = uuid.uuid4(), uuid.uuid4()
        parts = lambda s, i: wire.frame_message(  # noqa: E731
            wire.FrameHeader(wire.Kind.FRAME, s, i, 0, i * 33_333, *sample_frames[0].shape[:2]), sample_frames[i])
        assert all(svc.receive(("a", i), parts(a, i)) is None for i in range(svc.limits.max_queued))
        full = svc.receive(("a", 99), parts(a, 9))
        assert full.kind is wire.ReplyKind.REJECT and full.meta["reason"].startswith("stream queue full")
        assert svc.receive(("b", 0), parts(b, 0)) is None
        first = svc.step()
        assert [key for key, _ in first] == [("a", 0), ("b", 0)]
        assert all(r.meta["face"] for _, r in first)
        rest = [key for _ in range(svc.limits.max_queued - 1) for key, _ in svc.step()]
        assert rest == [("a", i) for i in range(1, svc.limits.max_queued)] and not svc.queues
    finally:
        svc.close_streams()
