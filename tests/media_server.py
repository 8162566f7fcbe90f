"""A real HTTP server on loopback for stream tests: it serves recordings (with byte ranges), a live
MJPEG stream, or bytes that never decode, and counts the connections it was asked for."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

Handler = Callable[[http.server.BaseHTTPRequestHandler, int], None]  # (request, connection number from 0)


class MediaServer:
    """``with MediaServer(handler) as s: s.url`` — ``s.hits`` counts the requests served."""

    def __init__(self, handler: Handler, path: str = "/media") -> None:
        self.hits = 0
        self.times: list[float] = []  # time.monotonic() of each request
        server = self

        class Request(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802  (the stdlib's name)
                n = server.hits
                server.hits += 1
                server.times.append(time.monotonic())
                try:
                    handler(self, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Request)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def __enter__(self) -> MediaServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve_bytes(data: bytes, limit: int | None = None) -> Handler:
    """A recording served whole (byte ranges honoured, so a player can seek), or only its first
    ``limit`` bytes before the connection closes (a dropped download)."""

    def handle(req: http.server.BaseHTTPRequestHandler, n: int) -> None:
        start = 0
        rng = req.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0] or 0)
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("Content-Type", "video/mp4")
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(len(body)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        req.wfile.write(body if limit is None else body[: max(0, limit - start)])

    return handle


def serve_whole(data: bytes) -> Handler:
    """A file served in one piece, byte ranges ignored (``http.server``'s way): a player cannot seek."""

    def handle(req: http.server.BaseHTTPRequestHandler, n: int) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "video/mp4")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    return handle


def mjpeg_frames(count: int, size: tuple[int, int] = (64, 48)) -> list[bytes]:
    """``count`` distinct JPEG pictures (each a different grey with a moving bar)."""
    out = []
    for i in range(count):
        img = np.full((size[1], size[0], 3), (40 + 9 * i) % 256, np.uint8)
        img[:, (4 * i) % size[0]] = 255
        out.append(cv2.imencode(".jpg", img)[1].tobytes())
    return out


def serve_mjpeg(pictures: list[bytes], hang_s: float = 0.0) -> Handler:
    """A live MJPEG stream (multipart/x-mixed-replace) that sends ``pictures`` from the first on each
    connection, then closes it (as a camera server restarting a finite clip would), or first keeps it
    open sending nothing for ``hang_s`` (a stalled camera)."""

    def handle(req: http.server.BaseHTTPRequestHandler, n: int) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
        req.end_headers()
        for jpg in pictures:
            req.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg))
            req.wfile.write(jpg + b"\r\n")
        req.wfile.flush()
        time.sleep(hang_s)

    return handle
