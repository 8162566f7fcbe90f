"""What the app's HTTP side accepts (issue 17): the pure decisions of monitor/app/guard.py, then a real
app on a loopback port probed with a raw HTTP client that sets any Host, Origin and body (as a
DNS-rebinding page or a foreign site's form would), and the app attack suite at a small scale."""

import asyncio
import json
import time

import pytest

from monitor.app.guard import HostPolicy, Limits, RequestFacts, decide, origin_of, same_origin, split_host
from monitor.lab.attack.app import (DROPPED, call_endpoint, files_under, http_request, multipart, start_target)

# -- the pure decisions --------------------------------------------------------------------------------------


@pytest.mark.fast
def test_loopback_names_with_any_port_and_nothing_else():
    p = HostPolicy()
    for ok in ("127.0.0.1", "127.0.0.1:7860", "localhost:1", "LOCALHOST:7860", "localhost.:80", "[::1]:7860", "[::1]"):
        assert p.allows(ok), ok
    for bad in (None, "", "attacker.example", "attacker.example:7860", "127.0.0.1.attacker.example", "0.0.0.0:7860",
                "localhost.attacker.example", "127.0.0.1@attacker.example", "localhost:7860/x", "127.1:7860",
                "localhost:99999", "localhost:", "::1", "[::1", "[::ffff:7f00:1]:80", "local host", "localhost :7860"):
        assert not p.allows(bad), bad


@pytest.mark.fast
def test_the_bound_address_and_extra_names_are_added_but_never_a_wildcard():
    p = HostPolicy.for_bind("192.168.1.4", ("Monitor.Lan.", "[fe80::1]"))
    assert p.allows("192.168.1.4:7860") and p.allows("monitor.lan") and p.allows("[fe80::1]:7860")
    assert p.allows("localhost:7860") and not p.allows("192.168.1.5:7860")
    assert HostPolicy.for_bind("0.0.0.0").allowed == HostPolicy().allowed
    for bad in ("", "0.0.0.0", "a b", "x@y"):
        with pytest.raises(ValueError):
            HostPolicy.for_bind("127.0.0.1", (bad,))
    assert split_host("[::1]:80") == ("::1", 80) and split_host("Example.ORG") == ("example.org", None)


@pytest.mark.fast
def test_same_origin_means_scheme_host_and_port_of_the_request():
    assert origin_of("http://127.0.0.1:7860") == ("http", "127.0.0.1", 7860)
    assert origin_of("https://localhost/page?x=1") == ("https", "localhost", 443)
    for bad in ("null", "", "file://", "chrome-extension://abc", "http://", "http://a@b", "javascript:alert(1)"):
        assert origin_of(bad) is None, bad
    assert same_origin("http://127.0.0.1:7860", "http", "127.0.0.1:7860")
    assert same_origin("http://localhost:7860/x/y", "http", "localhost:7860")
    assert same_origin("http://localhost", "http", "localhost:80")
    for origin, scheme, host in (("http://127.0.0.1:7861", "http", "127.0.0.1:7860"),
                                 ("https://127.0.0.1:7860", "http", "127.0.0.1:7860"),
                                 ("http://localhost:7860", "http", "127.0.0.1:7860"),
                                 ("null", "http", "127.0.0.1:7860"),
                                 ("http://127.0.0.1:7860", "http", None)):
        assert not same_origin(origin, scheme, host), (origin, scheme, host)


def _facts(method="GET", path="/", **kw):
    return RequestFacts(method=method, path=path, scheme="http", host=kw.pop("host", "127.0.0.1:7860"), **kw)


OWN = "http://127.0.0.1:7860"


@pytest.mark.fast
@pytest.mark.parametrize("facts, status", [
    (_facts(), 0),
    (_facts(host="attacker.example:7860"), 400),
    (_facts(host=None), 400),
    (_facts(origin="null"), 403),
    (_facts(origin="http://attacker.example"), 403),
    (_facts(origin=OWN), 0),
    (_facts(fetch_site="cross-site", fetch_mode="no-cors"), 403),
    (_facts(fetch_site="same-site", fetch_mode="cors"), 403),
    (_facts(fetch_site="cross-site", fetch_mode="navigate"), 0),        # following a link to the app
    (_facts("POST", fetch_site="cross-site", fetch_mode="navigate"), 403),  # a foreign form posting
    (_facts(fetch_site="same-origin", fetch_mode="cors"), 0),
    (_facts("POST", "/gradio_api/queue/join", content_type="application/json", origin=OWN), 0),
    (_facts("POST", "/gradio_api/queue/join", content_type="application/json"), 0),  # no browser can send this cross-origin
    (_facts("POST", "/gradio_api/queue/join", content_type="text/plain"), 403),
    (_facts("POST", "/gradio_api/queue/join", content_type="text/plain", referer=OWN + "/"), 0),
    (_facts("POST", "/gradio_api/queue/join", content_type="application/json", referer="http://attacker.example/"), 403),
    (_facts("DELETE", "/x"), 403),
    (_facts("POST", "/webrtc/offer", content_type="text/plain; charset=utf-8", origin=OWN), 415),
    (_facts("POST", "/webrtc/offer", content_type="application/json", origin=OWN), 0),
    (_facts("POST", "/gradio_api/call/x", content_type="application/json", origin=OWN, content_length="1048577"), 413),
    (_facts("POST", "/gradio_api/call/x", content_type="application/json", origin=OWN, content_length="-1"), 400),
    (_facts("POST", "/gradio_api/call/x", content_type="application/json", origin=OWN, chunked=True), 411),
    (_facts("POST", "/gradio_api/upload", content_type="multipart/form-data", origin=OWN, content_length="10"), 403),
    (_facts("POST", "/gradio_api/process_recording", content_type="multipart/form-data; boundary=b", origin=OWN,
            content_length="10"), 403),  # files by another route: still an upload the page does not take
])
def test_decide(facts, status):
    assert decide(HostPolicy(), Limits(), facts).status == status


@pytest.mark.fast
def test_decide_bounds_uploads_where_the_page_takes_files():
    limits = Limits(upload_bytes=1000)
    up = dict(method="POST", path="/gradio_api/upload", content_type="multipart/form-data; boundary=b", origin=OWN)
    assert decide(HostPolicy(), limits, _facts(**up, content_length="1000")).allowed
    assert decide(HostPolicy(), limits, _facts(**up, content_length="1001")).status == 413
    other = {**up, "path": "/gradio_api/component_server"}
    assert decide(HostPolicy(), limits, _facts(**other, content_length="1000")).allowed
    assert decide(HostPolicy(), limits, _facts(**other, content_length="1001")).status == 413
    assert decide(HostPolicy(), limits, _facts(**{**up, "origin": "http://attacker.example"},
                                               content_length="10")).status == 403


@pytest.mark.fast
def test_the_allowed_names_come_from_the_bind_address_and_the_environment(monkeypatch):
    from monitor.app.launch import host_policy
    from monitor.errors import UsageError

    monkeypatch.setenv("FACEMONITOR_APP_HOSTS", "monitor.lan, 10.0.0.7")
    p = host_policy("127.0.0.1")
    assert p.allows("monitor.lan:7860") and p.allows("10.0.0.7") and not p.allows("attacker.example")
    monkeypatch.setenv("FACEMONITOR_APP_HOSTS", "bad name")
    with pytest.raises(UsageError, match="FACEMONITOR_APP_HOSTS"):
        host_policy("127.0.0.1")


# -- a real app on loopback ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def target(tmp_path_factory):
    core, server, t = start_target(tmp_path_factory.mktemp("appsec"))
    yield t
    core.close()
    server.stop()


def _api_with_first_parameter(port: int, name: str) -> list[str]:
    info = json.loads(http_request(port, "GET", "/gradio_api/info").body)
    return [api.lstrip("/") for api, spec in info["named_endpoints"].items()
            if spec["parameters"] and spec["parameters"][0]["parameter_name"] == name]


def _exports(t) -> set[str]:
    return {p.name for p in (t.core.store_root / "exports").iterdir()}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example:{port}",
                                  "localhost@attacker.example:{port}", "0.0.0.0:{port}"])
def test_a_foreign_host_gets_nothing(target, host):
    t, h = target, {"Host": target.fill(host)}
    notes, exports = t.notes(), _exports(t)
    for path in ("/", "/gradio_api/info", "/gradio_api/config", f"/exports/{t.export}", "/webrtc/status",
                 "/live/preview.mjpg"):
        r = http_request(t.port, "GET", path, h)
        assert r.status == 400 and not r.grants_cors and t.sid not in r.body.decode("latin-1"), (path, r.status)
    for api, data in (("on_refresh", ["", "", "", "", ""]), ("on_open", [t.sid]),
                      ("on_note", [t.sid, "attacker", "forged"])):
        r = call_endpoint(t.port, api, data, h)
        assert r.status == 400 and r.body.startswith(b"error: host"), (api, r.status, r.body[:200])
    for api in ("lambda_8", "lambda_9", "lambda_10"):  # the exports (also refused when the names move)
        assert call_endpoint(t.port, api, [t.sid], h).status == 400
    assert t.notes() == notes and _exports(t) == exports


@pytest.mark.timeout(180)
def test_the_page_s_own_requests_still_work(target):
    t = target
    for host in (f"127.0.0.1:{t.port}", f"localhost:{t.port}", f"[::1]:{t.port}"):
        r = http_request(t.port, "GET", "/", {"Host": host})
        assert r.status == 200 and b"facemonitor" in r.body, host
    own = {"Origin": t.own_origin(), "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    listed = call_endpoint(t.port, "on_refresh", ["p-attack", "", "", "", ""], own)
    assert listed.status == 200 and t.sid in listed.body.decode()
    before = t.notes()
    r = call_endpoint(t.port, "on_note", [t.sid, "Dr A", "seen in clinic"], own)
    assert r.status == 200 and b"seen in clinic" in r.body and t.notes() == before + 1
    posted = http_request(t.port, "POST", "/gradio_api/call/on_refresh", {**own, "Content-Type": "application/json"},
                          json.dumps({"data": ["", "", "", "", ""]}).encode())
    assert posted.status == 200 and not posted.grants_cors  # same-origin needs no CORS, so none is ever granted
    exported = [api for api in _api_with_first_parameter(t.port, "sid")
                if b".json" in call_endpoint(t.port, api, [t.sid], own).body]
    assert exported and f"{t.sid}.json" in _exports(t)
    got = http_request(t.port, "GET", f"/exports/{t.sid}.json", {"Referer": t.own_origin() + "/"})
    assert got.status == 200 and t.sid in got.body.decode() and not got.grants_cors


@pytest.mark.timeout(180)
@pytest.mark.parametrize("origin", ["null", "http://attacker.example", "http://127.0.0.1:{other}",
                                    "https://127.0.0.1:{port}", "http://localhost:{port}"])
def test_foreign_and_null_origins_get_no_cors_and_cannot_post(target, origin):
    t, o = target, target.fill(origin)
    notes = t.notes()
    for host in (f"127.0.0.1:{t.port}", "attacker.example"):
        r = http_request(t.port, "GET", "/gradio_api/info", {"Host": host, "Origin": o})
        assert r.status in (400, 403) and not r.grants_cors, (host, r.status, r.headers)
        pre = http_request(t.port, "OPTIONS", "/gradio_api/queue/join",
                           {"Host": host, "Origin": o, "Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "content-type"})
        assert pre.status in (400, 403) and not pre.grants_cors, (host, pre.status, pre.headers)
    r = call_endpoint(t.port, "on_note", [t.sid, "attacker", "forged"], {"Origin": o})
    assert r.status == 403 and not r.grants_cors
    join = http_request(t.port, "POST", "/gradio_api/queue/join", {"Origin": o, "Content-Type": "application/json"},
                        json.dumps({"data": [t.sid, "attacker", "forged"], "fn_index": 0, "session_hash": "x"}).encode())
    assert join.status == 403 and t.notes() == notes


async def _camera_then_hostile_offer(t):
    """A real WebRTC camera (aiortc, as the page would connect), then a foreign page's text/plain
    offer; returns the hostile reply and the frames the feed got before and after it."""
    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    offer = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
    reply = await asyncio.to_thread(http_request, t.port, "POST", "/webrtc/offer",
                                    {"Content-Type": "application/json", "Origin": t.own_origin()}, offer)
    assert reply.status == 200, reply.body
    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(reply.body)))
    feed = t.core.browser_feed
    deadline = time.monotonic() + 30
    while feed.pushed < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    hostile = [await asyncio.to_thread(http_request, t.port, "POST", "/webrtc/offer",
                                       {"Content-Type": "text/plain", **extra}, offer)
               for extra in ({"Origin": "http://attacker.example"}, {"Origin": "null"}, {},
                             {"Referer": "http://attacker.example/page"})]
    after = feed.pushed
    deadline = time.monotonic() + 30
    while feed.pushed < after + 10 and time.monotonic() < deadline and pc.connectionState == "connected":
        await asyncio.sleep(0.1)
    state, frames = pc.connectionState, feed.pushed - after
    await pc.close()
    return hostile, state, frames


@pytest.mark.timeout(180)
def test_a_cross_origin_text_plain_offer_does_not_touch_the_camera(target):
    hostile, state, frames = asyncio.run(_camera_then_hostile_offer(target))
    assert [r.status for r in hostile] == [403, 403, 415, 415] and not any(r.grants_cors for r in hostile)
    assert state == "connected" and frames >= 10  # the camera that was connected kept sending frames


@pytest.mark.timeout(180)
def test_cross_origin_uploads_are_refused_and_nothing_is_written(target):
    # the app takes photos (the Photos tab), so a same-origin upload within the bound is served (below)
    t = target
    cache = t.core.store_root / "app-cache"
    before = files_under(cache)
    ctype, body = multipart("big.bin", b"\0" * (8 << 20))
    for origin in ("http://attacker.example", "null"):
        r = http_request(t.port, "POST", "/gradio_api/upload",
                         {"Content-Type": ctype, "Origin": origin, "Expect": "100-continue"}, body)
        assert r.status == 403 and not r.grants_cors, (origin, r.status)
    assert files_under(cache) == before


@pytest.fixture(scope="module")
def upload_page(target):
    """A page with a file input (as the photo upload has), served with the app's HTTP side and guard."""
    import gradio as gr

    from monitor.app.server import AppServer, build_http_app
    from monitor.lab.attack.app import free_port

    with gr.Blocks() as blocks:
        gr.File(label="photo")
    port = free_port()
    server = AppServer(build_http_app(target.core, blocks, None), "127.0.0.1", port).start()
    yield port
    server.stop()


@pytest.mark.timeout(180)
def test_uploads_are_bounded_where_the_page_takes_files(target, upload_page):
    from monitor.app.server import UPLOAD_MAX_BYTES

    port, cache = upload_page, target.core.store_root / "app-cache"
    own = {"Origin": f"http://127.0.0.1:{port}", "Expect": "100-continue"}
    before = files_under(cache)
    ctype, small = multipart("photo.jpg", b"\xff\xd8" + b"\0" * 1000)
    r = http_request(port, "POST", "/gradio_api/upload", {"Content-Type": ctype, **own}, small)
    assert r.status == 200 and files_under(cache) == before + 1  # the page's own upload is kept
    ctype, big = multipart("big.jpg", b"\0" * (UPLOAD_MAX_BYTES + 1))
    for headers in (own, {**own, "Origin": "http://attacker.example"}, {**own, "Origin": "null"}):
        r = http_request(port, "POST", "/gradio_api/upload", {"Content-Type": ctype, **headers}, big)
        assert r.status in (403, 413, DROPPED) and r.status != 200, headers
    ctype, small2 = multipart("x.jpg", b"\0" * 100)
    r = http_request(port, "POST", "/gradio_api/upload", {"Content-Type": ctype, "Origin": "http://attacker.example"},
                     small2)
    assert r.status == 403
    assert files_under(cache) == before + 1


@pytest.mark.timeout(240)
def test_the_app_attack_suite_finds_nothing_at_a_small_scale(tmp_path):
    from monitor.lab.attack.app import attack

    findings = attack(tmp_path, 0.05)
    assert {f.probe for f in findings} >= {"foreign_host", "foreign_origin", "csrf_forms", "uploads", "controls"}
    assert sum(f.attempts for f in findings) >= 30
    assert [(f.probe, f.detail) for f in findings if f.failures] == []
