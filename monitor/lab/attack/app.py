"""Attacks on the app's HTTP side (issue 17): a real app on a loopback port, probed with a raw HTTP
client that sets any Host, Origin, Referer and body it likes, as a DNS-rebinding page or a foreign
site's form would. A probe's failure is a request that was served when it should have been refused
(a status below 400, or any CORS grant), or a note or upload that reached the store. The controls
check that the same requests from the page's own origin are still served.

Probes: ``foreign_host`` (rebinding and malformed Host names on the page, the session, note and
export routes), ``foreign_origin`` (``null``, other sites, other ports and schemes: GET, POST and
preflight), ``csrf_forms`` (form-like bodies with no or a foreign Origin/Referer, text/plain
WebRTC offers), ``cross_site_fetch`` (Sec-Fetch-Site cross-site/same-site), ``uploads``
(cross-origin, oversize and chunked uploads), and ``controls``.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path

from engines import assets
from monitor.lab.attack import Finding, scaled

AREA = "app"
REFUSED_FLOOR = 400
DROPPED = 599  # the server closed the connection without an answer (a refusal, not a served request)
READ_CAP = 1 << 20
FOREIGN_HOSTS = ("attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example:{port}",
                 "localhost.attacker.example", "127.0.0.1@attacker.example", "0.0.0.0:{port}", "127.1:{port}",
                 "[::ffff:7f00:1]:{port}", "localhost:{port}/x", "", "LOCALHOST.attacker.example:{port}")
FOREIGN_ORIGINS = ("null", "http://attacker.example", "http://127.0.0.1:{other}", "https://127.0.0.1:{port}",
                   "http://localhost.attacker.example:{port}", "http://127.0.0.1:{port}.attacker.example",
                   "file://", "http://[::1]:{other}", "chrome-extension://abc", "")
GET_ROUTES = ("/", "/gradio_api/info", "/gradio_api/config", "/exports/{export}", "/webrtc/status",
              "/live/preview.mjpg")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]   # lower-case names, the first of each
    body: bytes

    @property
    def served(self) -> bool:
        return self.status < REFUSED_FLOOR

    @property
    def grants_cors(self) -> bool:
        return any(k.startswith("access-control-allow-") for k in self.headers)


def http_request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                 timeout: float = 15.0) -> Reply:
    """One HTTP/1.1 request to 127.0.0.1:port with exactly these headers (``Host`` as given, or none when
    given as None), ``Connection: close`` and Content-Length for a body. With ``Expect: 100-continue``
    the body is sent only when the server asks for it. An endless MJPEG answer is not read; a
    connection closed without an answer is status DROPPED."""
    try:
        return _exchange(port, method, path, headers, body, timeout)
    except (ConnectionError, socket.timeout) as e:
        return Reply(DROPPED, {}, str(e).encode())


def _exchange(port, method, path, headers, body, timeout) -> Reply:
    h = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if body and "Content-Length" not in h and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall((head + "Connection: close\r\n\r\n").encode("latin-1"))
        if h.get("Expect", "").lower() == "100-continue":
            status, got, rest = _read_head(s, b"")
            if status != 100:  # answered before the body was asked for
                return _read_body(s, status, got, rest)
            s.sendall(body)
            return _finish(s, rest)
        if body:
            try:
                s.sendall(body)
            except ConnectionError:  # answered and closed while the body was still going out
                pass
        return _finish(s, b"")


def _read_head(s: socket.socket, buf: bytes) -> tuple[int, dict[str, str], bytes]:
    """The status and headers of the next response; the bytes after them."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before a response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return int(lines[0].split()[1]), headers, rest


def _finish(s: socket.socket, buf: bytes) -> Reply:
    status, headers, body = _read_head(s, buf)
    while status == 100:
        status, headers, body = _read_head(s, body)
    return _read_body(s, status, headers, body)


def _read_body(s: socket.socket, status: int, headers: dict[str, str], body: bytes) -> Reply:
    if headers.get("content-type", "").startswith("multipart/x-mixed-replace"):
        return Reply(status, headers, b"")
    while len(body) < READ_CAP:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        body += chunk
    if "chunked" in headers.get("transfer-encoding", ""):
        body = _unchunk(body)
    return Reply(status, headers, body)


def _unchunk(data: bytes) -> bytes:
    out, i = b"", 0
    while i < len(data):
        line_end = data.find(b"\r\n", i)
        if line_end < 0:
            break
        size = int(data[i:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[line_end + 2:line_end + 2 + size]
        i = line_end + 2 + size + 2
    return out


def call_endpoint(port: int, api_name: str, data: list, headers: dict[str, str] | None = None) -> Reply:
    """Gradio's two-step call: POST /gradio_api/call/NAME (JSON), then GET its event stream (the handler
    runs); the GET's reply, or the POST's when that was refused."""
    h = {"Content-Type": "application/json", **(headers or {})}
    posted = http_request(port, "POST", f"/gradio_api/call/{api_name}", h, json.dumps({"data": data}).encode())
    if not posted.served:
        return posted
    event = json.loads(posted.body)["event_id"]
    return http_request(port, "GET", f"/gradio_api/call/{api_name}/{event}",
                        {k: v for k, v in h.items() if k != "Content-Type"})


def multipart(name: str, payload: bytes, boundary: str = "fmboundary") -> tuple[str, bytes]:
    """A multipart/form-data body with one file field ``files``: (content type, body)."""
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def files_under(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


@dataclass
class Target:
    """The app under attack: its port, core, a seeded session and an export file."""
    port: int
    core: object
    sid: str
    export: str

    def fill(self, template: str) -> str:
        return template.format(port=self.port, other=self.port + 1 if self.port < 65535 else 1, export=self.export)

    def own_origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notes(self) -> int:
        with self.core.store() as store:
            return len(store.notes(self.sid))


def seed(core) -> tuple[str, str]:
    """A session with a person in the app's store, and one export file: (session id, export name)."""
    from monitor.store.db import Store  # lazy: pyarrow (the store's series)

    with Store(core.store_root) as store:
        sid = store.create_session("file", "live", "mediapipe", "p-attack")
        store.exports_dir.mkdir(parents=True, exist_ok=True)
        (store.exports_dir / f"{sid}.csv").write_text("frame,t_s\n0,0.0\n")
    return sid, f"{sid}.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_target(workdir: Path):
    """A real app on a free loopback port over a store in ``workdir``: (core, server, Target)."""
    from monitor.app.core import AppConfig  # lazy: numba, cv2, zmq (the session)
    from monitor.app.launch import start_app  # lazy: gradio, fastapi

    port = free_port()
    config = AppConfig(store_root=workdir / "store", source=str(assets.sample_path("single_face.mp4", progress=False)),
                       protocol="short")
    core, server = start_app(config, "127.0.0.1", port)
    sid, export = seed(core)
    return core, server, Target(port, core, sid, export)


def _count(name: str, replies: list[tuple[str, Reply]], bad, measured: str = "") -> Finding:
    """A Finding: ``bad(reply)`` marks a failure; the first few failures are described."""
    failed = [(what, r) for what, r in replies if bad(r)]
    detail = "; ".join(f"{what} → {r.status}{' +CORS' if r.grants_cors else ''}" for what, r in failed[:3])
    return Finding(AREA, name, len(replies), len(failed), measured, detail)


def probe_foreign_host(t: Target, n: int) -> Finding:
    """Every GET route and the session, note and export calls under Host names that are not ours."""
    replies = []
    for i, host in enumerate(islice(cycle(FOREIGN_HOSTS), n)):
        h = {"Host": t.fill(host)}
        kind = i % (len(GET_ROUTES) + 3)
        if kind < len(GET_ROUTES):
            path = t.fill(GET_ROUTES[kind])
            replies.append((f"GET {path} Host={h['Host']!r}", http_request(t.port, "GET", path, h)))
        else:
            api, data = [("on_refresh", ["", "", "", "", ""]), ("on_open", [t.sid]),
                         ("on_note", [t.sid, "attacker", "forged note"])][kind - len(GET_ROUTES)]
            replies.append((f"call {api} Host={h['Host']!r}", call_endpoint(t.port, api, data, h)))
    return _count("foreign_host", replies, lambda r: r.served or r.grants_cors)


def probe_foreign_origin(t: Target, n: int) -> Finding:
    """GET, JSON POST and CORS preflight from origins that are not the page's own."""
    replies = []
    for i, origin in enumerate(islice(cycle(FOREIGN_ORIGINS), n)):
        h = {"Origin": t.fill(origin)}
        kind = i % 3
        if kind == 0:
            replies.append((f"GET info Origin={h['Origin']!r}", http_request(t.port, "GET", "/gradio_api/info", h)))
        elif kind == 1:
            replies.append((f"note Origin={h['Origin']!r}",
                            call_endpoint(t.port, "on_note", [t.sid, "attacker", "forged note"], h)))
        else:
            h.update({"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
            replies.append((f"preflight Origin={h['Origin']!r}",
                            http_request(t.port, "OPTIONS", "/gradio_api/queue/join", h)))
    return _count("foreign_origin", replies, lambda r: r.served or r.grants_cors)


def probe_csrf_forms(t: Target, n: int) -> Finding:
    """What a foreign page's form or no-cors fetch can send: simple content types with no Origin, or
    with a foreign Referer, to the note call, Gradio's queue and the WebRTC offer."""
    offer = json.dumps({"sdp": "v=0\r\n", "type": "offer"}).encode()
    note = json.dumps({"data": [t.sid, "attacker", "forged note"]}).encode()
    cases = [("/webrtc/offer", "text/plain", {}, offer),
             ("/webrtc/offer", "text/plain", {"Origin": "http://attacker.example"}, offer),
             ("/webrtc/offer", "application/x-www-form-urlencoded", {"Referer": "http://attacker.example/x"}, offer),
             ("/gradio_api/call/on_note", "text/plain", {}, note),
             ("/gradio_api/call/on_note", "text/plain", {"Referer": "http://attacker.example/"}, note),
             ("/gradio_api/call/on_note", "application/json", {"Referer": "http://127.0.0.1.attacker.example/"}, note),
             ("/gradio_api/queue/join", "text/plain", {}, note),
             ("/gradio_api/run/on_note", "application/x-www-form-urlencoded", {}, note)]
    replies = []
    for path, ctype, extra, body in islice(cycle(cases), n):
        h = {"Content-Type": ctype, **extra}
        replies.append((f"POST {path} {ctype} {extra}", http_request(t.port, "POST", path, h, body)))
    return _count("csrf_forms", replies, lambda r: r.served or r.grants_cors)


def probe_cross_site_fetch(t: Target, n: int) -> Finding:
    """Requests a foreign page makes from its own context (Sec-Fetch-Site cross-site or same-site)."""
    cases = [("GET", "/exports/{export}", "cross-site", "no-cors"), ("GET", "/live/preview.mjpg", "cross-site", "no-cors"),
             ("GET", "/gradio_api/info", "same-site", "cors"), ("POST", "/", "cross-site", "navigate")]
    replies = []
    for method, path, site, mode in islice(cycle(cases), n):
        h = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode}
        replies.append((f"{method} {t.fill(path)} {site}/{mode}", http_request(t.port, method, t.fill(path), h)))
    return _count("cross_site_fetch", replies, lambda r: r.served or r.grants_cors)


def probe_uploads(t: Target, n: int) -> Finding:
    """Uploads the app must refuse: cross-origin, oversize (beyond the Photos tab's bound) and chunked;
    a failure is a request served or a file written into the store."""
    cache = Path(t.core.store_root) / "app-cache"
    before = files_under(cache)
    ctype, small = multipart("x.bin", b"\0" * 4096)
    cases = [({"Origin": "http://attacker.example"}, small, None),
             ({"Origin": "null"}, small, None),
             ({"Origin": t.own_origin(), "Expect": "100-continue"}, b"\0" * (64 << 20), str(64 << 20)),
             ({"Origin": t.own_origin(), "Transfer-Encoding": "chunked"}, b"0\r\n\r\n", None)]
    paths = ("/gradio_api/upload", "/gradio_api/process_recording", "/gradio_api/component_server")
    replies = []
    for i, (extra, body, length) in enumerate(islice(cycle(cases), n)):
        h = {"Content-Type": ctype, **extra}
        if length:
            h["Content-Length"] = length
        path = paths[(i // len(cases)) % len(paths)]
        replies.append((f"upload {path} {extra} {len(body)} B", http_request(t.port, "POST", path, h, body)))
    written = files_under(cache) - before
    f = _count("uploads", replies, lambda r: r.served)
    return Finding(f.area, f.probe, f.attempts, f.failures + max(0, written), f"{written} files written", f.detail)


def probe_controls(t: Target, n: int) -> Finding:
    """The page's own requests still work: the page, a listing, a note and the export, under each
    loopback name; a refused control is a failure (the guard broke the app)."""
    own = [f"127.0.0.1:{t.port}", f"localhost:{t.port}"]
    replies = []
    for i, host in enumerate(islice(cycle(own), n)):
        h = {"Host": host, "Origin": f"http://{host}"}
        kind = i % 3
        if kind == 0:
            replies.append((f"GET / {host}", http_request(t.port, "GET", "/", {"Host": host})))
        elif kind == 1:
            replies.append((f"GET export {host}", http_request(t.port, "GET", f"/exports/{t.export}", {"Host": host})))
        else:
            replies.append((f"note {host}", call_endpoint(t.port, "on_note", [t.sid, "control", f"note {i}"], h)))
    return _count("controls", replies, lambda r: not r.served or r.grants_cors)


def attack(workdir: Path, scale: float) -> list[Finding]:
    core, server, t = start_target(workdir)
    guard_log = logging.getLogger("monitor.app.server")
    level = guard_log.level
    guard_log.setLevel(logging.ERROR)  # the refusals are the point here: counted, not logged one by one
    try:
        findings = [probe_foreign_host(t, scaled(200, scale, len(FOREIGN_HOSTS))),
                    probe_foreign_origin(t, scaled(150, scale, 6)),
                    probe_csrf_forms(t, scaled(80, scale, 8)),
                    probe_cross_site_fetch(t, scaled(40, scale, 4)),
                    probe_uploads(t, scaled(20, scale, 4))]
        forged = t.notes()
        controls = probe_controls(t, scaled(30, scale, 3))
        findings.append(controls)
        findings.append(Finding(AREA, "forged_notes", 1, int(forged > 0), f"{forged} notes from refused requests"))
        return findings
    finally:
        guard_log.setLevel(level)
        core.close()
        server.stop()
