"""What the app's HTTP side accepts, decided without I/O: the allowed Host names, same-origin checks
of Origin / Referer / Sec-Fetch-Site, the rule for state-changing requests, and body-size limits.

The server (monitor/app/server.py) reads these facts from each request and applies the verdict; this
module only decides. The rules (docs/app.md, "What the app accepts"):

- **Host**: the request's Host header names an allowed host (loopback names by default, any port);
  anything else — a DNS-rebinding name, a malformed or missing Host — is refused with 400.
- **Origin**: a request that carries an Origin must come from this very origin (scheme, host and
  port); ``null`` and every other origin are refused with 403. No response ever grants CORS.
- **Cross-site fetches**: ``Sec-Fetch-Site: cross-site`` or ``same-site`` is refused except for a plain
  top-level navigation (a link to the app).
- **State-changing methods** (anything but GET, HEAD, OPTIONS) also need positive proof when the
  body is one a foreign page could send without asking (a form's content types, or none): a
  same-origin Origin or Referer. JSON bodies make a browser ask first (a CORS preflight), which is
  never granted, so a foreign page cannot send them.
- **Bodies**: bounded by Content-Length (a chunked body is refused: the page never sends one);
  uploads (Gradio's upload route, or any multipart body) only when the page has a component that
  takes files.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the content types an HTML form (or a no-cors fetch) can send cross-origin without a preflight
SIMPLE_CONTENT_TYPES = frozenset({"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
UPLOAD_PATH = "/gradio_api/upload"
JSON_ONLY_PATHS = frozenset({"/webrtc/offer"})
DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$")
_PORT = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class Limits:
    """Request body bounds in bytes. ``upload_bytes`` 0 means the page takes no uploads (refused)."""
    body_bytes: int = 1 << 20          # any request but an upload: JSON events, the WebRTC offer
    upload_bytes: int = 0              # one upload request (the files plus the multipart framing)


@dataclass(frozen=True)
class HostPolicy:
    """The Host names the app answers to (normalized: lower case, no port, IPv6 without brackets)."""
    allowed: frozenset[str] = LOOPBACK_NAMES

    @classmethod
    def for_bind(cls, bind_host: str, extra: tuple[str, ...] = ()) -> "HostPolicy":
        """Loopback names, the address the app binds (unless it is a wildcard), and ``extra`` names.
        ValueError names an extra that is not a host name or address."""
        names = set(LOOPBACK_NAMES)
        bind = normal_name(bind_host)
        if bind and bind not in WILDCARD_BINDS:
            names.add(bind)
        for e in extra:
            n = normal_name(e)
            if n is None or n in WILDCARD_BINDS:
                raise ValueError(f"not a host name or address: {e!r}")
            names.add(n)
        return cls(frozenset(names))

    def allows(self, host_header: str | None) -> bool:
        parsed = split_host(host_header or "")
        return parsed is not None and parsed[0] in self.allowed


@dataclass(frozen=True)
class RequestFacts:
    """What the decision needs from one request (header values as sent, None when absent)."""
    method: str
    path: str
    scheme: str                        # http or https (ws/wss are mapped by the caller)
    host: str | None
    origin: str | None = None
    referer: str | None = None
    fetch_site: str | None = None      # Sec-Fetch-Site
    fetch_mode: str | None = None      # Sec-Fetch-Mode
    content_type: str | None = None
    content_length: str | None = None
    chunked: bool = False


@dataclass(frozen=True)
class Verdict:
    """``status`` 0 lets the request through; otherwise the HTTP status to refuse it with and why."""
    status: int = 0
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 0


ALLOW = Verdict()


def normal_name(name: str) -> str | None:
    """A host name or address in the form Host headers are compared in, or None when it is neither."""
    n = name.strip().lower().rstrip(".")
    if n.startswith("[") and n.endswith("]"):
        n = n[1:-1]
    if n in WILDCARD_BINDS:
        return n
    try:
        return str(ipaddress.ip_address(n))
    except ValueError:
        pass
    return n if _NAME.match(n) and len(n) <= 253 else None


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` from a Host header or an origin's authority; None when malformed (a user part,
    a path, spaces, a bad port)."""
    v = value.strip()
    if not v or any(c in v for c in "@/\\?# \t"):
        return None
    if v.startswith("["):
        close = v.find("]")
        if close < 0:
            return None
        name, rest = v[1:close], v[close + 1:]
        if name and ":" not in name:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif v.count(":") > 1:
        return None  # an IPv6 address must be bracketed in a Host header
    else:
        name, _, port_text = v.partition(":")
        port_text = port_text if ":" in v else None
    if port_text is not None and (not _PORT.match(port_text) or not 0 < int(port_text) < 65536):
        return None
    n = normal_name(name)
    if n is None or n in WILDCARD_BINDS:
        return None
    return n, int(port_text) if port_text is not None else None


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, name, port)`` of an Origin value or a Referer URL; None for ``null``, opaque or
    malformed values and schemes other than http(s)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return None
    hp = split_host(parts.netloc)
    if hp is None:
        return None
    return parts.scheme, hp[0], hp[1] if hp[1] is not None else DEFAULT_PORTS[parts.scheme]


def same_origin(url: str, scheme: str, host_header: str | None) -> bool:
    """Whether ``url`` (an Origin or Referer) is this server's own origin as the request names it."""
    theirs = origin_of(url)
    ours = split_host(host_header or "")
    if theirs is None or ours is None or scheme not in DEFAULT_PORTS:
        return False
    return theirs == (scheme, ours[0], ours[1] if ours[1] is not None else DEFAULT_PORTS[scheme])


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decide(policy: HostPolicy, limits: Limits, r: RequestFacts) -> Verdict:
    """Whether to serve the request: the Host, then where it comes from, then its body."""
    if not policy.allows(r.host):
        return Verdict(400, f"host {r.host!r} is not one this app answers to (see FACEMONITOR_APP_HOSTS)")
    if r.origin is not None and not same_origin(r.origin, r.scheme, r.host):
        return Verdict(403, f"cross-origin request from {r.origin!r} refused")
    if r.fetch_site in ("cross-site", "same-site") and not (r.method in SAFE_METHODS and r.fetch_mode == "navigate"):
        return Verdict(403, f"{r.fetch_site} request refused")
    if r.method not in SAFE_METHODS:
        verdict = _state_change(r)
        if not verdict.allowed:
            return verdict
    return _body(limits, r)


def _state_change(r: RequestFacts) -> Verdict:
    """A POST/PUT/DELETE/…: JSON where the route takes JSON; a form-like body needs a same-origin
    Origin or Referer."""
    kind = media_type(r.content_type)
    if r.path in JSON_ONLY_PATHS and kind != "application/json":
        return Verdict(415, f"{r.path} takes application/json")
    if r.origin is None and r.referer is not None and not same_origin(r.referer, r.scheme, r.host):
        return Verdict(403, "cross-origin request (by its Referer) refused")
    if kind in SIMPLE_CONTENT_TYPES and r.origin is None and r.referer is None:
        return Verdict(403, "a form-like request needs a same-origin Origin or Referer header")
    return ALLOW


def is_upload(r: RequestFacts) -> bool:
    """Gradio's upload route, or any other request carrying files (a multipart body: Gradio's
    component server and recording routes take them too)."""
    return r.path.rstrip("/") == UPLOAD_PATH or media_type(r.content_type) == "multipart/form-data"


def body_limit(limits: Limits, r: RequestFacts) -> int:
    """The most bytes the request may carry (0: no body accepted)."""
    return limits.upload_bytes if is_upload(r) else limits.body_bytes


def _body(limits: Limits, r: RequestFacts) -> Verdict:
    limit = body_limit(limits, r)
    if limit == 0 and r.method not in SAFE_METHODS:
        return Verdict(403, "this page takes no uploads")
    if r.chunked:
        return Verdict(411, "a request body needs a Content-Length")
    if r.content_length is None:
        return ALLOW
    if not r.content_length.strip().isdigit():
        return Verdict(400, "bad Content-Length")
    if int(r.content_length) > limit:
        return Verdict(413, f"request body over {limit} bytes")
    return ALLOW
