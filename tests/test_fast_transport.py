"""The engine's and the broker's answers to everything but a frame to analyse, without a model: the engine
service's message handling called directly, and a broker over in-process ZeroMQ sockets with a stand-in
engine that speaks the broker protocol."""

import json
import threading
import uuid

import numpy as np
import pytest
import zmq

from monitor import __version__
from monitor.engine.service import EngineService
from monitor.transport import broker as B
from monitor.transport import wire
from monitor.transport.client import EngineClient

pytestmark = pytest.mark.fast


def frame_parts(stream, frame_id=0, h=4, w=5):
    header = wire.FrameHeader(wire.Kind.FRAME, stream, frame_id, 0, frame_id * 33_333, h, w)
    return wire.frame_message(header, np.zeros((h, w, 3), np.uint8))


# ---- the engine service, called directly (no sockets, no runner) ----------------------------------

@pytest.fixture
def service():
    return EngineService("inproc://unused", backend="mediapipe")


def test_engine_rejects_malformed_messages_and_counts_them_by_reason(service):
    stream = uuid.uuid4()
    bad = [
        ([b"garbage"], f"header is 7 bytes, expected {wire.HEADER_BYTES}"),
        ([b"\0" * wire.HEADER_BYTES], "bad magic"),
        ([b"FMF" + b"\x01" * (wire.HEADER_BYTES - 3)], "unknown message kind 257"),
        ([frame_parts(stream)[0], b"\0" * 59], "pixel buffer is 59 bytes, header says 60"),
        ([frame_parts(stream)[0]], "frame message has 1 parts, expected 2"),
        ([wire.FrameHeader(wire.Kind.PING, stream).pack(), b"x"], "PING message has 2 parts, expected 1"),
        ([], "empty message"),
    ]
    replies = service.handle_many([parts for parts, _ in bad])
    assert [r.meta["reason"] for r in replies] == [reason for _, reason in bad]
    assert all(r.kind is wire.ReplyKind.REJECT for r in replies)
    assert [r.meta["rejected_total"] for r in replies] == list(range(1, len(bad) + 1))
    assert service.stats.rejected == len(bad) and service.stats.frames == 0 and not service.streams
    assert service.stats.reject_reasons == {"header": 1, "bad": 1, "unknown": 1, "pixel": 1, "frame": 1, "PING": 1,
                                            "empty": 1}


def test_engine_answers_a_ping_with_its_id_and_state_and_ends_an_unknown_stream(service):
    ping, stream = uuid.uuid4(), uuid.uuid4()
    pong, reject, end = service.handle_many([[wire.FrameHeader(wire.Kind.PING, ping).pack()], [b"x" * 3],
                                             [wire.FrameHeader(wire.Kind.END, stream).pack()]])
    assert pong.kind is wire.ReplyKind.PONG and pong.meta["ping"] == str(ping)
    assert pong.meta["version"] == __version__ and pong.meta["backend"] == "mediapipe"
    assert pong.meta["engine"] == service.name and pong.meta["frames"] == 0 and pong.meta["rejected"] == 0
    assert pong.meta["streams"] == 0 and pong.meta["cnn"] is None
    assert reject.kind is wire.ReplyKind.REJECT  # replies keep the order of the messages
    assert end.kind is wire.ReplyKind.END and end.meta["stream"] == str(stream)
    assert (end.meta["frames"], end.meta["frames_with_face"], end.meta["rejected"]) == (0, 0, 1)
    assert service.handle([wire.FrameHeader(wire.Kind.PING, ping).pack()]).meta["rejected"] == 1
    back = wire.Reply.from_parts([bytes(memoryview(p)) for p in pong.parts()])
    assert back.meta == dict(pong.meta, v=wire.VERSION, has_face_arrays=False)  # a pong survives the wire


# ---- a broker on in-process sockets ----------------------------------------------------------------

class FakeEngine:
    """A DEALER on the broker's backend that announces itself and answers what it is asked, by hand."""

    def __init__(self, ctx, endpoint, name="fake:1"):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.sock.send_multipart([B.READY, json.dumps({"engine": name, "backend": "fake"}).encode()])

    def request(self, timeout_ms=10_000):
        """The next REQUEST: (client identity, frame message parts). Heartbeats met on the way are
        answered, as a live engine does."""
        while self.sock.poll(timeout_ms):
            parts = self.sock.recv_multipart()
            if parts[0] == B.REQUEST:
                return parts[1], parts[2:]
            self.sock.send(B.HEARTBEAT)
        raise AssertionError("the broker forwarded nothing")

    def reply(self, client, meta):
        self.sock.send_multipart([B.REPLY, client, *wire.Reply(meta).parts()])


@pytest.fixture
def broker():
    ctx = zmq.Context()
    tag = uuid.uuid4().hex
    b = B.Broker(f"inproc://front-{tag}", f"inproc://back-{tag}", ctx=ctx)
    b.open()
    thread = threading.Thread(target=b.serve, daemon=True)
    thread.start()
    clients = []

    def client():
        c = EngineClient(b.frontend_endpoint, ctx=ctx)
        clients.append(c)
        return c

    yield b, ctx, client
    b.stop()
    thread.join(5)
    ctx.destroy(linger=0)  # the clients' and stand-in engines' sockets too, whatever the test left open


def test_broker_without_engines_answers_itself(broker):
    b, _, client = broker
    c = client()
    pong = c.ping(5)
    assert pong["broker"] is True and pong["engines"] == 0 and pong["engine_names"] == [] and pong["backend"] is None
    stream = uuid.uuid4()
    c.send_raw(frame_parts(stream, 3))
    lost = c.recv(5000)
    assert lost.kind is wire.ReplyKind.LOST and lost.meta["frame"] == 3
    assert lost.meta["reason"] == "no engine is connected to the broker" and b.stats.lost == 1
    c.send_control(wire.Kind.END, stream)
    end = c.recv(5000)
    assert end.kind is wire.ReplyKind.END and end.meta["frames"] == 0 and end.meta["stream"] == str(stream)
    c.send_raw([b"short"])
    reject = c.recv(5000)
    assert reject.kind is wire.ReplyKind.REJECT and reject.meta["reason"].startswith("header is 5 bytes")
    assert c.in_flight == 0  # every message was answered: the credit is back


def test_broker_routes_a_stream_to_its_engine_and_reports_its_frames_lost_when_it_goes_silent(broker):
    b, ctx, client = broker
    engine = FakeEngine(ctx, b.backend_endpoint)
    c = client()
    for _ in range(200):  # the READY travels through the broker's poll loop
        if b.engines:
            break
        threading.Event().wait(0.02)
    engine.sock.send(B.HEARTBEAT)
    pong = c.ping(5)
    assert pong["engines"] == 1 and pong["engine_names"] == ["fake:1"] and pong["backend"] == "fake"
    stream = uuid.uuid4()
    c.send_raw(frame_parts(stream, 0))
    who, parts = engine.request()
    header, pixels = wire.decode_frame(parts)  # the frame passes through unchanged
    assert header.stream == stream and header.frame_id == 0 and pixels.shape == (4, 5, 3)
    engine.reply(who, {"kind": "result", "stream": str(stream), "frame": 0, "engine": "fake:1", "face": False})
    result = c.recv(10_000)
    assert result.kind is wire.ReplyKind.RESULT and result.meta["engine"] == "fake:1"
    assert b.owner[str(stream)] in b.engines and b.stats.frames == 1
    c.send_raw(frame_parts(stream, 1))  # the engine takes it and then goes silent
    engine.request()
    lost = c.recv(int(B.LIVENESS * B.HEARTBEAT_S * 1000) + 10_000)
    assert lost is not None and lost.kind is wire.ReplyKind.LOST and lost.meta["frame"] == 1
    assert lost.meta["engine"] == "fake:1" and "stopped answering" in lost.meta["reason"]
    for _ in range(100):  # the broker thread answers the lost frames first, then forgets the engine's streams
        if str(stream) not in b.owner:
            break
        threading.Event().wait(0.02)
    assert b.stats.engines_lost == 1 and not b.engines and str(stream) not in b.owner
