"""Attacks on the transport: the engine and the broker fuzzed with malformed messages, engines killed
and the broker restarted under running sessions, abandoned streams soaked with the engine's memory
measured, oversize messages, and engines or servers without the right CURVE key.

Everything runs on loopback (tcp with CURVE keys made in the work folder) and ipc, with real engine
processes and a real broker. A failure is: a component that died or stopped answering, a session
that ended ``complete`` with fewer results than the frames it sent, a frame or reply that reached a
peer without the right key, or memory that grew past the bound.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import zmq

from engines import assets
from monitor.engine.local import LocalEngine
from monitor.errors import EngineError, FacemonitorError
from monitor.lab.attack import Finding, scaled
from monitor.session.options import SessionOptions
from monitor.session.run import run_session
from monitor.store.db import Store
from monitor.transport import broker as B
from monitor.transport import wire
from monitor.transport.client import EngineClient
from monitor.transport.keys import KEYS_ENV, load_client_keys, make_keys

AREA = "transport"
LEAK_BOUND_MB = 200.0


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def _keys(workdir: Path):
    """CURVE keys for this run, found by this process and the engines it starts through FACEMONITOR_KEYS."""
    old = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = str(make_keys(workdir / "keys", force=True))
    try:
        yield Path(os.environ[KEYS_ENV])
    finally:
        if old is None:
            os.environ.pop(KEYS_ENV, None)
        else:
            os.environ[KEYS_ENV] = old


def _malformed_messages(rng: random.Random, n: int) -> list[list[bytes]]:
    """Messages an engine or a broker's frontend must reject: random bytes, bad headers, wrong part
    counts, wrong kinds, absurd sizes."""
    stream = uuid.uuid4()
    good = wire.FrameHeader(wire.Kind.FRAME, stream, 0, 0, 0, 8, 8).pack()
    makers = [
        lambda: [rng.randbytes(rng.randrange(0, 200))],
        lambda: [rng.randbytes(wire.HEADER_BYTES)],
        lambda: [b"FMF\x01" + rng.randbytes(wire.HEADER_BYTES - 4)],
        lambda: [good, rng.randbytes(rng.choice([0, 1, 191, 193, 400]))],  # the frame needs 192 bytes
        lambda: [good],
        lambda: [good, b"\0" * 192, b"extra"],
        lambda: [wire.FrameHeader(wire.Kind.PING, stream).pack(), b"x"],
        lambda: [b"FMF\x01\x09" + b"\0" * (wire.HEADER_BYTES - 5)],
        lambda: [b"FMX" + good[3:], b"\0" * 192],
        lambda: [rng.randbytes(8) for _ in range(rng.randrange(3, 12))],
    ]
    return [rng.choice(makers)() for _ in range(n)]


def probe_engine_fuzz(workdir: Path, scale: float) -> Finding:
    """Malformed messages to a real engine process over tcp: each must be answered with a reject, and the
    engine must keep answering pings and analysing frames."""
    n = scaled(400, scale, 10)
    rng = random.Random(17)
    failures, detail = 0, ""
    with LocalEngine(log_dir=workdir, bind=f"tcp://127.0.0.1:{_port()}") as engine:
        client = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(client)
            for parts in _malformed_messages(rng, n):
                client.send_raw(parts)
                reply = client.recv(10_000)
                if reply is None or reply.kind is not wire.ReplyKind.REJECT:
                    failures += 1
                    detail = detail or f"{len(parts)}-part message answered with {reply and reply.meta}"
            client.send_frame(uuid.uuid4(), 0, 0, 0, np.zeros((32, 32, 3), np.uint8))
            ok = (r := client.recv(30_000)) is not None and r.kind is wire.ReplyKind.RESULT and engine.alive()
            failures += not ok
        finally:
            client.close()
    return Finding(AREA, "engine fuzz (malformed messages)", n + 1, failures,
                   detail=detail or ("" if not failures else "engine stopped analysing"))


def probe_broker_fuzz(workdir: Path, scale: float) -> Finding:
    """Malformed messages on both broker sockets (from key holders: outsiders never get that far); the
    broker must count them and keep serving."""
    n = scaled(300, scale, 10)
    rng = random.Random(18)
    ctx = zmq.Context()
    broker = B.Broker(f"tcp://127.0.0.1:{_port()}", f"tcp://127.0.0.1:{_port()}", ctx=ctx)
    broker.open()
    thread = threading.Thread(target=broker.serve, daemon=True)
    thread.start()
    keys = load_client_keys()
    engine = ctx.socket(zmq.DEALER)
    engine.setsockopt(zmq.LINGER, 0)
    engine.curve_publickey, engine.curve_secretkey = keys.public, keys.secret
    engine.curve_serverkey = keys.server_public
    engine.connect(broker.backend_endpoint)
    client = EngineClient(broker.frontend_endpoint, ctx=ctx)
    failures = 0
    try:
        engine_junk = [[B.READY, b"[1,2]"], [B.READY, rng.randbytes(50)], [B.HEARTBEAT, b"x"], [b"WHAT"],
                       [B.REPLY, b"c", b'{"v":1,"kind":"end","stream":{"a":1}}'], [B.REPLY, b"c", b"{"],
                       [B.REPLY, b"c", b'{"v":1,"kind":"result","stream":"s","frame":"x"}'], [B.REPLY]]
        for i in range(n):
            engine.send_multipart(engine_junk[i % len(engine_junk)] if i % 2 else
                                  [rng.randbytes(rng.randrange(1, 64)) for _ in range(rng.randrange(1, 6))])
        for parts in _malformed_messages(rng, n):
            client.send_raw(parts)
            failures += client.recv(10_000) is None  # rejected, or (a valid header) lost for want of engines
        pong = client.ping(10)
        failures += not thread.is_alive()
        measured = f"{pong['malformed']} counted as malformed"
    except EngineError as e:
        failures += 1
        measured = f"broker stopped answering: {e}"
    finally:
        broker.stop()
        thread.join(5)
        ctx.destroy(linger=0)
    return Finding(AREA, "broker fuzz (both sockets)", 2 * n, failures, measured=measured)


def _start_broker(front: str, back: str) -> tuple[B.Broker, threading.Thread]:
    broker = B.Broker(front, back, ctx=zmq.Context.instance())
    deadline = time.monotonic() + 10
    while True:  # a previous broker's sockets close in ZeroMQ's I/O thread
        try:
            broker.open()
            break
        except EngineError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    thread = threading.Thread(target=broker.serve, daemon=True)
    thread.start()
    return broker, thread


def _engine_process(back: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor", "engine", "--broker", back], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _session_check(store_root: Path, result, frames_sent: int) -> str:
    """'' when the session is honest: complete only with every frame's result."""
    if result.status != "complete":
        return ""
    with Store(store_root) as store:
        rows = store.read_series(result.session_id).num_rows
    if result.status == "complete" and rows < frames_sent:
        return f"complete with {rows} of {frames_sent} frames"
    return ""


def _disrupted_session(video: Path, store: Path, broker_box: dict, disrupt, frames_sent: int) -> str:
    results: list = []
    box: dict = {}
    opts = SessionOptions(str(video), store_root=store, engine_endpoint=broker_box["broker"].frontend_endpoint,
                          realtime=True, on_result=results.append)
    t = threading.Thread(target=lambda: box.update(result=run_session(opts)), daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(results) < 15 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    disrupt()
    t.join(120)
    if "result" not in box:
        return "session did not end" if t.is_alive() else "session raised"
    return _session_check(store, box["result"], frames_sent)


def probe_kill_and_restart(workdir: Path, scale: float) -> list[Finding]:
    """Sessions through a broker while engines are killed (and replaced) and while the broker restarts."""
    rounds = scaled(2, scale)
    video = assets.sample_path("single_face.mp4", progress=False)
    cap = cv2.VideoCapture(str(video))
    frames_sent = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    front, back = f"tcp://127.0.0.1:{_port()}", f"tcp://127.0.0.1:{_port()}"
    box: dict = {}
    box["broker"], box["thread"] = _start_broker(front, back)
    log = open(workdir / "engines.log", "ab")
    procs = [_engine_process(back, log) for _ in range(2)]
    kills, restarts = [0, ""], [0, ""]
    try:
        _wait_engines(box["broker"], 2, 120)
        for i in range(rounds):
            def kill_all():
                for p in procs:
                    p.kill()
                procs[:] = [_engine_process(back, log) for _ in range(2)]

            why = _disrupted_session(video, workdir / "store", box, kill_all, frames_sent)
            kills = [kills[0] + bool(why), kills[1] or why]
            _wait_engines(box["broker"], 2, 120)

            def restart():
                box["broker"].stop()
                box["thread"].join(5)
                box["broker"], box["thread"] = _start_broker(front, back)

            why = _disrupted_session(video, workdir / "store", box, restart, frames_sent)
            restarts = [restarts[0] + bool(why), restarts[1] or why]
            _wait_engines(box["broker"], 2, 120)
    finally:
        box["broker"].stop()
        box["thread"].join(5)
        for p in procs:
            p.kill()
            p.wait(10)
        log.close()
    return [Finding(AREA, "every engine killed mid-session (then replaced)", rounds, kills[0], detail=kills[1]),
            Finding(AREA, "broker restarted mid-session", rounds, restarts[0], detail=restarts[1])]


def _wait_engines(broker: B.Broker, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(broker.engines) < n:
        if time.monotonic() > deadline:
            raise EngineError(f"only {len(broker.engines)} of {n} engines joined the broker")
        time.sleep(0.1)


def probe_stream_leak(workdir: Path, scale: float) -> Finding:
    """Streams opened and abandoned (as a client killed with -9 leaves them): after the idle expiry the
    engine must hold none, and its memory must not have grown past the bound."""
    n = scaled(1000, scale, 20)
    blank = np.zeros((64, 64, 3), np.uint8)
    extra = ["--stream-idle-s", "0.2", "--max-streams", "64"]
    with LocalEngine(log_dir=workdir, extra_args=extra) as engine:
        client = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(client)
            for _ in range(10):  # the first streams load what every later one shares (caches, pools)
                client.send_frame(uuid.uuid4(), 0, 0, 0, blank)
                client.recv(30_000)
            _wait_no_streams(client)
            rss0 = _rss_mb(engine.pid)
            refused = 0
            for i in range(0, n, client.window):
                for _ in range(min(client.window, n - i)):
                    client.send_frame(uuid.uuid4(), 0, 0, 0, blank)
                while client.in_flight:
                    try:
                        client.recv(30_000)
                    except EngineError:  # full for a moment: idle streams expire twice per idle time
                        refused += 1
            pong = _wait_no_streams(client)
            grown = _rss_mb(engine.pid) - rss0
        finally:
            client.close()
    failures = int(pong["streams"] != 0) + int(grown > LEAK_BOUND_MB) + int(engine.proc.returncode not in (0, None))
    return Finding(AREA, "abandoned streams (idle expiry 0.2 s)", n, failures,
                   measured=f"engine RSS {grown:+.0f} MB after {n} streams; {pong['expired']} expired, "
                            f"{refused} refused while full",
                   detail="" if not failures else f"{pong['streams']} streams still open, RSS {grown:+.0f} MB")


def _wait_no_streams(client: EngineClient, seconds: float = 30.0) -> dict:
    deadline = time.monotonic() + seconds
    while (pong := client.ping(10))["streams"] and time.monotonic() < deadline:
        time.sleep(0.5)
    return pong


def probe_oversize(workdir: Path, scale: float) -> Finding:
    """Messages over the bounds: many parts, frames larger than allowed, parts over ZMQ_MAXMSGSIZE."""
    n = scaled(10, scale, 2)
    failures, detail = 0, ""
    with LocalEngine(log_dir=workdir, extra_args=["--max-pixels", str(1024 * 1024)]) as engine:
        client = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(client)
            rss0 = _rss_mb(engine.pid)
            header = wire.FrameHeader(wire.Kind.FRAME, uuid.uuid4(), 0, 0, 0, 2048, 2048, wire.PixelFormat.GRAY8)
            for _ in range(n):
                for parts in ([header.pack(), *[b"\0" * (1 << 20)] * 40],  # 41 parts of 1 MiB each
                              [header.pack(), b"\0" * (2048 * 2048)]):  # a frame over --max-pixels
                    client.send_raw(parts)
                    reply = client.recv(30_000)
                    if reply is None or reply.kind is not wire.ReplyKind.REJECT:
                        failures += 1
                        detail = detail or f"{len(parts)} parts answered with {reply and reply.meta}"
            rogue = EngineClient(engine.endpoint)  # one part over ZMQ_MAXMSGSIZE: ZeroMQ drops it (and the peer)
            rogue.send_raw([header.pack(), b"\0" * (8 << 20)])
            rogue.close()
            pong = client.ping(30)
            grown = _rss_mb(engine.pid) - rss0
            failures += int(pong["streams"] != 0)
        finally:
            client.close()
    return Finding(AREA, "oversize messages", 2 * n + 1, failures, detail=detail,
                   measured=f"engine RSS {grown:+.0f} MB after {2 * n} oversize messages")


def probe_keys(workdir: Path, scale: float) -> Finding:
    """Engines and clients without the right CURVE key: nothing registers, no frame reaches them, and no
    forged reply reaches a client."""
    n = scaled(20, scale, 2)
    stranger = load_client_keys(make_keys(workdir / "stranger", force=True))
    real = load_client_keys()
    ctx = zmq.Context()
    broker = B.Broker(f"tcp://127.0.0.1:{_port()}", f"tcp://127.0.0.1:{_port()}", ctx=ctx)
    broker.open()
    thread = threading.Thread(target=broker.serve, daemon=True)
    thread.start()
    failures = 0
    try:
        fakes = []
        for i in range(n):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            if i % 2:
                s.curve_publickey, s.curve_secretkey, s.curve_serverkey = (stranger.public, stranger.secret,
                                                                           real.server_public)
            s.connect(broker.backend_endpoint)
            s.send_multipart([B.READY, b'{"engine": "fake"}'])
            fakes.append(s)
        client = EngineClient(broker.frontend_endpoint, ctx=ctx)
        time.sleep(1.0)
        client.send_frame(uuid.uuid4(), 0, 0, 0, np.zeros((8, 8, 3), np.uint8))
        client.recv(500)
        failures += len(broker.engines)
        failures += sum(bool(s.poll(100)) for s in fakes)
        forged = EngineClient(broker.frontend_endpoint, ctx=ctx, keys_dir=workdir / "stranger")
        try:
            forged.ping(2)
            failures += 1
        except EngineError:
            pass
    finally:
        broker.stop()
        thread.join(5)
        ctx.destroy(linger=0)
    return Finding(AREA, "engines and clients without the right key", n + 1, failures)


def attack(workdir: Path, scale: float) -> list[Finding]:
    findings: list[Finding] = []
    with _keys(workdir):
        for probe in (probe_keys, probe_broker_fuzz, probe_engine_fuzz, probe_oversize, probe_stream_leak):
            findings.append(_guard(probe, workdir, scale))
        try:
            findings.extend(probe_kill_and_restart(workdir, scale))
        except FacemonitorError as e:
            findings.append(Finding(AREA, "kill and restart loops", 1, 1, detail=str(e)))
    return findings


def _guard(probe, workdir: Path, scale: float) -> Finding:
    """A probe that could not run is a failure, with the reason."""
    try:
        return probe(workdir, scale)
    except (FacemonitorError, OSError, zmq.ZMQError) as e:
        return Finding(AREA, probe.__name__.removeprefix("probe_"), 1, 1, detail=f"{type(e).__name__}: {e}")
