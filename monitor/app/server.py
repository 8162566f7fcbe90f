"""``facemonitor app``: the HTTP side — the Gradio UI mounted on a FastAPI app with three routes of
our own, authentication, and the server thread.

Routes beside the UI:
- ``GET /live/preview.mjpg``: the live preview as an MJPEG stream (multipart/x-mixed-replace): the
  newest encoded frame each time there is one; a slow viewer skips frames, the session never waits.
- ``GET /exports/{name}``: a file from the store's ``exports/`` folder, and nothing else (names are
  checked, no paths; traversal gets 404).
- ``POST /webrtc/offer``: the browser's camera over WebRTC (aiortc); its frames enter the same
  capture thread → ZeroMQ → engine pipeline as any camera (source ``browser:web``).

Security: the server binds 127.0.0.1 by default; any other address needs credentials
(``--auth-file`` or FACEMONITOR_APP_AUTH, ``user:password``), checked as HTTP Basic auth on every
route, UI included; there is never a public share link. Before anything else, ``GuardMiddleware``
applies monitor/app/guard.py's verdict to every request and WebSocket: allowed Host names only,
no cross-origin or cross-site requests, form-like state changes only with a same-origin Origin or
Referer, bounded bodies, and no CORS header in any response.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import logging
import os
import re
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Request  # Request at module level: route signatures are resolved from these names
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from monitor.app.guard import HostPolicy, Limits, RequestFacts, Verdict, decide
from monitor.errors import UsageError

EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
BOUNDARY = "frame"
log = logging.getLogger(__name__)
UPLOAD_MAX_BYTES = 16 << 20     # one file the page takes (Gradio's max_file_size)
UPLOAD_FRAMING_BYTES = 64 << 10  # the multipart framing around it
UPLOAD_REQUEST_FILES = 9  # files one request may carry: a photo set's eight poses and its manifest
# the Gradio components a browser can send files through
FILE_COMPONENTS = ("File", "Files", "Image", "ImageEditor", "Sketchpad", "Paint", "ImageMask", "Video", "Audio",
                   "UploadButton", "Gallery", "Model3D", "MultimodalTextbox", "ImageSlider", "SimpleImage")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_credentials(auth_file: Path | None) -> tuple[str, str] | None:
    """``user:password`` from the file, else from FACEMONITOR_APP_AUTH; None when neither is set."""
    text = None
    if auth_file is not None:
        try:
            text = Path(auth_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read auth file {auth_file}: {e}") from None
    elif os.environ.get("FACEMONITOR_APP_AUTH"):
        text = os.environ["FACEMONITOR_APP_AUTH"].strip()
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or len(password) < 8:
        raise UsageError("credentials must be 'user:password' with a password of at least 8 characters")
    return user, password


def export_file(exports_dir: Path, name: str) -> Path | None:
    """The export called ``name``, or None: only plain names of files directly in exports_dir."""
    if not EXPORT_NAME.match(name) or ".." in name:
        return None
    root = exports_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def build_http_app(core, blocks, credentials: tuple[str, str] | None, head: str = "",
                   hosts: HostPolicy | None = None) -> FastAPI:
    """The FastAPI app: our routes, Basic auth on everything when credentials are given, the Gradio
    page mounted at /, and the guard in front of it all (``hosts``: loopback names when None)."""
    import gradio as gr

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if credentials is not None:
        add_basic_auth(app, credentials)
    add_preview_route(app, core.preview)
    add_exports_route(app, core.store_root / "exports")
    add_webrtc_routes(app, core.browser_feed)
    takes_files = page_takes_files(blocks)
    app = gr.mount_gradio_app(app, blocks, path="/", allowed_paths=[], show_error=True, head=head,
                              max_file_size=UPLOAD_MAX_BYTES)
    # the Photos tab sends a whole set (the eight poses and a manifest) in one request
    limits = Limits(upload_bytes=UPLOAD_REQUEST_FILES * UPLOAD_MAX_BYTES + UPLOAD_FRAMING_BYTES if takes_files else 0)
    app.add_middleware(GuardMiddleware, hosts=hosts or HostPolicy(), limits=limits)  # outermost: runs first
    return app


def page_takes_files(blocks) -> bool:
    """Whether any component of the page lets the browser send a file (else uploads are refused)."""
    import gradio as gr

    kinds = tuple(k for k in (getattr(gr, n, None) for n in FILE_COMPONENTS) if isinstance(k, type))
    return any(isinstance(c, kinds) and getattr(c, "interactive", None) is not False
               for c in blocks.blocks.values())


class GuardMiddleware:
    """ASGI middleware: each request or WebSocket gets monitor/app/guard.py's verdict before anything
    else sees it; a refused one gets its status and one line, and the app never sees it. Responses
    lose every Access-Control-* header (the page is same-origin and needs none). ``refused`` counts
    refusals by status."""

    def __init__(self, app, hosts: HostPolicy, limits: Limits) -> None:
        self.app, self.hosts, self.limits = app, hosts, limits
        self.refused: dict[int, int] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        verdict = decide(self.hosts, self.limits, request_facts(scope))
        if not verdict.allowed:
            self.refused[verdict.status] = self.refused.get(verdict.status, 0) + 1
            log.warning("refused %s %s: %s", scope.get("method", "WEBSOCKET"), scope.get("path", ""), verdict.reason)
            return await _refuse(scope, send, verdict)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        async def send_without_cors(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                                  if not k.lower().startswith(b"access-control-")]}
            await send(message)

        await self.app(scope, receive, send_without_cors)


def request_facts(scope) -> RequestFacts:
    """The headers the guard decides on, from an ASGI scope (the first of each; ws/wss as http/https)."""
    headers: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    method = scope.get("method", "GET").upper()
    return RequestFacts(method=method, path=scope.get("path", ""), scheme=scheme, host=headers.get("host"),
                        origin=headers.get("origin"), referer=headers.get("referer"),
                        fetch_site=headers.get("sec-fetch-site"), fetch_mode=headers.get("sec-fetch-mode"),
                        content_type=headers.get("content-type"), content_length=headers.get("content-length"),
                        chunked="chunked" in headers.get("transfer-encoding", "").lower())


async def _refuse(scope, send, verdict: Verdict) -> None:
    if scope["type"] == "websocket":  # closing before accepting answers the handshake with 403
        await send({"type": "websocket.close", "code": 1008})
        return
    body = f"error: {verdict.reason}\n".encode()
    await send({"type": "http.response.start", "status": verdict.status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def add_basic_auth(app: FastAPI, credentials: tuple[str, str]) -> None:
    """Every request, the page and its API included, needs these credentials (HTTP Basic)."""
    expected = "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()

    @app.middleware("http")
    async def basic_auth(request: Request, call_next):
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response("authentication required", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="facemonitor"'})
        return await call_next(request)


def add_preview_route(app: FastAPI, preview) -> None:
    """``GET /live/preview.mjpg``: the encoder's newest JPEG each time there is a newer one."""

    @app.get("/live/preview.mjpg")
    async def live_preview(request: Request):
        async def frames():
            seq = -1
            while not await request.is_disconnected():
                seq, jpeg = await asyncio.to_thread(preview.wait_newer, seq, 1.0)
                if jpeg:
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                           .encode() + jpeg + b"\r\n")

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})


def add_exports_route(app: FastAPI, exports_dir: Path) -> None:
    """``GET /exports/{name}``: a file directly in the exports folder, else 404."""

    @app.get("/exports/{name}")
    async def exports(name: str):
        path = export_file(exports_dir, name)
        if path is None:
            return Response("not found", status_code=404)
        return FileResponse(path, filename=path.name)


def add_webrtc_routes(app: FastAPI, feed) -> None:
    """``POST /webrtc/offer`` (the browser's camera, one at a time, into ``feed``) and ``GET /webrtc/status``."""
    peers: set = set()

    @app.post("/webrtc/offer")
    async def webrtc_offer(request: Request):
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        try:
            body = await request.json()
            offer = RTCSessionDescription(sdp=str(body["sdp"]), type=str(body["type"]))
        except Exception:
            return JSONResponse({"error": "expected JSON {sdp, type}"}, status_code=400)
        for old in list(peers):  # one browser camera at a time: a new one replaces the old
            await old.close()
            peers.discard(old)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback/LAN: no STUN server is asked
        peers.add(pc)
        _feed_from(pc, feed, peers)
        try:
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:
            await pc.close()
            peers.discard(pc)
            return JSONResponse({"error": f"bad offer: {e}"}, status_code=400)
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    @app.get("/webrtc/status")
    async def webrtc_status():
        return {"peers": len(peers), "frames": feed.pushed}


def _feed_from(pc, feed, peers: set) -> None:
    """The peer's video frames (BGR) into the feed; the peer leaves ``peers`` when its connection ends."""
    from aiortc.mediastreams import MediaStreamError

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            feed.push(frame.to_ndarray(format="bgr24"))

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            asyncio.ensure_future(consume(track))

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState in ("failed", "closed"):
            await pc.close()
            peers.discard(pc)


class AppServer:
    """uvicorn in a thread: ``start()`` returns once it listens; ``stop()`` shuts it down."""

    def __init__(self, http_app, host: str, port: int, ssl: tuple[Path, Path] | None = None) -> None:
        import uvicorn

        kwargs = {}
        if ssl is not None:
            kwargs = {"ssl_certfile": str(ssl[0]), "ssl_keyfile": str(ssl[1])}
        self.server = uvicorn.Server(uvicorn.Config(http_app, host=host, port=port, log_level="warning",
                                                    access_log=False, **kwargs))
        self.thread = threading.Thread(target=self.server.run, name="app-server", daemon=True)
        self.host, self.port = host, port

    def start(self, timeout: float = 30.0) -> "AppServer":
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive():
                raise UsageError(f"the app could not listen on {self.host}:{self.port} (is the port in use?)")
            if time.monotonic() - t0 > timeout:
                raise UsageError(f"the app did not start listening within {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
