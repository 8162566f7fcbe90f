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


# ---- hardening (issue 17): malformed peers, CURVE keys, bounds ---------------------------------------

def _wait_for(check, seconds=5.0):
    deadline = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if check():
            return True
        deadline.wait(0.02)
    return check()


@pytest.mark.parametrize("message", [
    [B.READY, b"[1,2]"],  # READY whose JSON is not an object
    [B.READY, b"\xff\xfe not json"],
    [B.READY, b"{}", b"extra"],
    [B.REPLY, b"client", json.dumps({"v": 1, "kind": "end", "stream": {"a": 1}}).encode()],  # unhashable stream
    [B.REPLY, b"client", json.dumps({"v": 1, "kind": "result", "stream": "s", "frame": [1]}).encode()],
    [B.REPLY, b"client", b"not json"],
    [B.REPLY, b"client", json.dumps({"v": 1, "kind": "pong"}).encode()],
    [B.REPLY, b"client", *[b"x"] * 9],
    [B.REPLY],
    [b"NONSENSE", b"\0" * 100],
    [b""],
])
def test_broker_survives_every_malformed_engine_message_and_counts_it(broker, message):
    b, ctx, client = broker
    engine = FakeEngine(ctx, b.backend_endpoint)
    assert _wait_for(lambda: b.engines)
    engine.sock.send_multipart(message)
    c = client()
    assert _wait_for(lambda: b.stats.malformed >= 1 or message[0] == B.REPLY and len(message) == 1)
    pong = c.ping(5)  # the broker is still serving
    assert pong["broker"] is True and pong["malformed"] >= 1 or message == [B.REPLY]
    assert pong["engines"] == 1  # the engine that sent it stays registered (it is alive)


def test_broker_rejects_malformed_client_messages_and_keeps_serving(broker):
    b, ctx, client = broker
    c = client()
    stream = uuid.uuid4()
    for parts in ([frame_parts(stream)[0], b"x", b"y"], [b"\0" * wire.HEADER_BYTES], [b""]):
        c.send_raw(parts)
        assert c.recv(5000).kind is wire.ReplyKind.REJECT
    assert c.ping(5)["malformed"] == 3


def test_keys_command_writes_private_key_pairs(tmp_path):
    import os
    import stat

    from tests.helpers import run_cli

    folder = tmp_path / "k"
    r = run_cli("keys", "--dir", folder, timeout=60)
    assert r.returncode == 0, r.stderr
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(folder) == 0o700 and mode(folder / "authorized") == 0o700
    files = sorted(p.name for p in folder.glob("*.key*"))
    assert files == ["client.key", "client.key_secret", "server.key", "server.key_secret"]
    assert all(mode(p) == 0o600 for p in [*folder.glob("*.key*"), *(folder / "authorized").iterdir()])
    again = run_cli("keys", "--dir", folder, timeout=60)
    assert again.returncode == 2 and again.stderr.startswith("error:") and "--force" in again.stderr
    from monitor.transport.keys import load_client_keys, load_server_keys

    assert load_client_keys(folder).public in load_server_keys(folder).authorized


@pytest.mark.parametrize("command", [["engine", "--bind", "tcp://127.0.0.1:{port}"],
                                     ["engine", "--broker", "tcp://127.0.0.1:{port}"],
                                     ["broker", "--frontend", "tcp://127.0.0.1:{port}", "--backend", "ipc://{tmp}/b"]])
def test_a_tcp_endpoint_without_keys_refuses_to_start(tmp_path, command):
    from tests.helpers import free_port, run_cli

    args = [a.format(port=free_port(), tmp=tmp_path) for a in command]
    r = run_cli(*args, env={"FACEMONITOR_KEYS": str(tmp_path / "none")}, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert "facemonitor keys" in r.stderr


def test_a_client_without_keys_refuses_a_tcp_endpoint(tmp_path):
    from monitor.errors import EngineError

    with pytest.raises(EngineError, match="run `facemonitor keys`"):
        EngineClient("tcp://127.0.0.1:9", keys_dir=tmp_path)


@pytest.fixture
def tcp_broker():
    from tests.helpers import free_port

    ctx = zmq.Context()
    b = B.Broker(f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}", ctx=ctx)
    b.open()
    thread = threading.Thread(target=b.serve, daemon=True)
    thread.start()
    yield b, ctx
    b.stop()
    thread.join(5)
    ctx.destroy(linger=0)


class KeyedEngine(FakeEngine):
    """A stand-in engine on a tcp backend, presenting the given client key pair (or none)."""

    def __init__(self, ctx, endpoint, keys, name="fake:1"):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            self.sock.curve_publickey, self.sock.curve_secretkey, self.sock.curve_serverkey = keys
        self.sock.connect(endpoint)
        self.sock.send_multipart([B.READY, json.dumps({"engine": name, "backend": "fake"}).encode()])


def test_curve_keeps_out_engines_and_clients_without_the_right_key(tcp_broker, curve_keys, tmp_path):
    from monitor.transport.keys import load_client_keys, make_keys

    b, ctx = tcp_broker
    real = load_client_keys(curve_keys)
    stranger = load_client_keys(make_keys(tmp_path / "other"))  # a valid key pair, not authorized here
    fakes = [KeyedEngine(ctx, b.backend_endpoint, None, "nokey:1"),
             KeyedEngine(ctx, b.backend_endpoint, (stranger.public, stranger.secret, real.server_public), "wrong:1"),
             KeyedEngine(ctx, b.backend_endpoint, (real.public, real.secret, stranger.server_public), "badserver:1")]
    c = EngineClient(b.frontend_endpoint, ctx=ctx)
    threading.Event().wait(1.0)
    pong = c.ping(5)  # the right key gets in
    assert pong["engines"] == 0 and not b.engines, "an engine without the right keys registered"
    assert pong["denied"] >= 1
    c.send_frame(uuid.uuid4(), 0, 0, 0, np.zeros((4, 5, 3), np.uint8))
    assert c.recv(1500) is None and c.resent >= 1  # resent while no engine is there; none of the fakes gets it
    for fake in fakes:  # none of them received a frame
        assert not fake.sock.poll(200) or fake.sock.recv_multipart()[0] != B.REQUEST
    wrong = EngineClient(b.frontend_endpoint, ctx=ctx, keys_dir=tmp_path / "other")  # stranger's client key
    with pytest.raises(Exception, match="did not answer"):
        wrong.ping(2)
    good = KeyedEngine(ctx, b.backend_endpoint, (real.public, real.secret, real.server_public), "good:1")
    assert _wait_for(lambda: b.engines) and [r.name for r in b.engines.values()] == ["good:1"]
    good.sock.close(0)


@pytest.mark.parametrize("forged_keys", [False, True])
def test_a_client_never_accepts_a_reply_from_a_server_without_the_real_key(curve_keys, tmp_path, forged_keys):
    """A forged engine bound where the client expects its engine (plain, or with CURVE keys of its own)
    gets no frame, and the result it sends never reaches the caller."""
    from monitor.transport.keys import load_server_keys, make_keys
    from tests.helpers import free_port

    ctx = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = ctx.socket(zmq.ROUTER)
    if forged_keys:
        forged = load_server_keys(make_keys(tmp_path / "forged"))
        server.curve_secretkey, server.curve_publickey, server.curve_server = forged.secret, forged.public, True
    server.bind(endpoint)
    c = EngineClient(endpoint, ctx=ctx)
    try:
        stream = uuid.uuid4()
        c.send_frame(stream, 0, 0, 0, np.zeros((4, 5, 3), np.uint8))
        if server.poll(1500):  # only a broken client gets this far: answer with a forged measurement
            who = server.recv_multipart()[0]
            server.send_multipart([who, *wire.Reply({"kind": "result", "stream": str(stream), "frame": 0,
                                                     "measures": {"eye_aperture_left_mm": 99.0}}).parts()])
        reply = c.recv(1500)
        assert reply is None, f"the client accepted a forged reply: {reply.meta}"
    finally:
        ctx.destroy(linger=0)


def test_message_with_too_many_parts_is_refused_as_a_whole_and_the_engine_keeps_serving(curve_keys):
    from monitor.engine.options import EngineLimits
    from tests.helpers import free_port

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    svc = EngineService(endpoint, ctx=ctx, limits=EngineLimits(max_pixels=64 * 64))
    ready = threading.Event()
    t = threading.Thread(target=svc.serve, kwargs={"ready": ready.set}, daemon=True)
    t.start()
    assert ready.wait(10)
    c = EngineClient(endpoint, ctx=ctx)
    try:
        c.send_raw([frame_parts(uuid.uuid4())[0], *[b"\0" * 10_000] * 41])  # each part allowed, the whole not
        reply = c.recv(5000)
        assert reply.kind is wire.ReplyKind.REJECT and reply.meta["reason"].startswith("message too large (42 parts")
        big = wire.FrameHeader(wire.Kind.FRAME, uuid.uuid4(), 0, 0, 0, 100, 100, wire.PixelFormat.GRAY8)
        c.send_raw([big.pack(), b"\0" * 10_000])  # 100x100 over the 64x64 limit: refused from its header
        reply = c.recv(5000)
        assert reply.kind is wire.ReplyKind.REJECT and "over the engine's limit" in reply.meta["reason"]
        pong = c.ping(5)
        assert pong["rejected"] == 2 and pong["streams"] == 0 and pong["limits"]["max_pixels"] == 64 * 64
    finally:
        svc.stop()
        t.join(5)
        ctx.destroy(linger=0)


def test_client_resends_what_the_broker_lost_until_an_engine_answers_then_gives_up_within_its_budget(broker):
    b, ctx, _ = broker
    c = EngineClient(b.frontend_endpoint, ctx=ctx, resend_budget_s=20.0)
    try:
        assert c.ping(5)["engines"] == 0
        stream, image = uuid.uuid4(), np.zeros((4, 5, 3), np.uint8)
        c.send_frame(stream, 0, 0, 0, image)
        assert c.recv(700) is None and c.resent >= 1  # "no engine": sent again, not reported
        engine = FakeEngine(ctx, b.backend_endpoint)
        assert _wait_for(lambda: b.engines)
        for _ in range(40):  # the client resends while it waits; the engine answers the broker's heartbeats
            assert c.recv(100) is None
            if engine.sock.poll(0):
                who, parts = engine.request()  # the frame reached the engine that joined
                break
        assert wire.decode_frame(parts)[0].frame_id == 0
        engine.reply(who, {"kind": "result", "stream": str(stream), "frame": 0, "engine": "fake:1", "face": False})
        result = c.recv(5000)
        assert result.kind is wire.ReplyKind.RESULT and result.meta["frame"] == 0 and c.in_flight == 0
        engine.sock.close(0)  # the engine dies; the broker drops it after its liveness
        assert _wait_for(lambda: not b.engines, 10)
        c.resend_budget_s = 2.0
        c.send_frame(stream, 1, 0, 0, image)
        lost = c.recv(10_000)  # the budget runs out: now it is reported
        assert lost.kind is wire.ReplyKind.LOST and lost.meta["frame"] == 1 and c.in_flight == 0
        resent = c.resent
        c.send_frame(stream, 2, 0, 0, image)
        lost = c.recv(1000)  # and later frames are reported at once, until a result comes again
        assert lost.kind is wire.ReplyKind.LOST and lost.meta["frame"] == 2 and c.resent == resent
    finally:
        c.close()
