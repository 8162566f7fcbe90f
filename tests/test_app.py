"""The app's parts without a browser: quality checks, the HTTP routes' security, people, notes,
steps, trends and exports (the browser tests drive the whole app)."""

import base64
import urllib.error
import urllib.request

import numpy as np
import pytest
from helpers import free_port, run_cli

from monitor.app.server import export_file, is_loopback, read_credentials
from monitor.errors import StoreError, UsageError
from monitor.measures.quality import FaceLight, assess, face_light
from monitor.measures.summary import SessionSummary
from monitor.report.tables import TREND_MEASURES, session_values, step_table, trend
from monitor.report.writers import export_session
from monitor.store.db import Store


def _face(w=640, h=480, size=200.0):
    """Landmarks spread over a centred box of the given height (enough for the quality checks)."""
    rng = np.random.default_rng(0)
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0] = w / 2 + rng.uniform(-0.4, 0.4, 478) * size
    pts[:, 1] = h / 2 + rng.uniform(-0.5, 0.5, 478) * size
    pts[168, 0] = w / 2
    return pts


GOOD = {"face": True, "faces": 1, "yaw_deg": 2.0, "pitch_deg": -3.0, "roll_deg": 1.0, "mm_per_px": 11.7 / 20,
        "eye_status_left": "ok", "eye_status_right": "ok"}
LIT = FaceLight(140.0, 138.0, 142.0)


def test_a_good_frame_passes():
    q = assess(GOOD, LIT, _face(), (480, 640))
    assert q.ok and q.code == "" and q.prompt.startswith("Good")


@pytest.mark.parametrize("change, light, pts, code", [
    ({"face": False, "faces": 0}, LIT, None, "no_face"),
    ({"faces": 2}, LIT, _face(), "several_faces"),
    ({"yaw_deg": 20.0}, LIT, _face(), "turned"),
    ({"pitch_deg": -25.0}, LIT, _face(), "tilted_up_down"),
    ({"roll_deg": 18.0}, LIT, _face(), "tilted_sideways"),
    ({"mm_per_px": 11.7 / 8}, LIT, _face(), "too_far"),
    ({}, LIT, _face(size=470), "too_close"),
    ({}, LIT, _face(size=200) + np.array([250, 0, 0], np.float32), "cut_off"),
    ({}, FaceLight(30, 30, 30), _face(), "too_dark"),
    ({}, FaceLight(240, 240, 240), _face(), "too_bright"),
    ({}, FaceLight(120, 180, 60), _face(), "uneven_light"),
    ({"eye_status_left": "low_contrast", "eye_status_right": "out_of_frame"}, LIT, _face(), "eyes_covered"),
])
def test_each_problem_is_named_with_a_plain_prompt(change, light, pts, code):
    q = assess({**GOOD, **change}, light, pts, (480, 640))
    assert not q.ok and code in q.problems and q.prompt


def test_covered_eyes_are_not_a_problem_when_the_step_closes_them():
    row = {**GOOD, "eye_status_left": "low_contrast", "eye_status_right": "low_contrast"}
    assert assess(row, LIT, _face(), (480, 640), eyes_should_be_open=False).ok


def test_face_light_reads_each_half_of_the_face():
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, :320] = 60  # image left = the patient's right
    img[:, 320:] = 200
    light = face_light(img, _face())
    assert light.right == pytest.approx(60, abs=3) and light.left == pytest.approx(200, abs=3)
    assert assess(GOOD, light, _face(), (480, 640)).problems == ("uneven_light",)


# -- security of the HTTP side -----------------------------------------------------------------------

def test_exports_serve_only_plain_names_inside_the_folder(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "a.pdf").write_bytes(b"%PDF-")
    (tmp_path / "secret.sqlite3").write_bytes(b"x")
    assert export_file(exports, "a.pdf") == (exports / "a.pdf").resolve()
    for name in ("../secret.sqlite3", "..", ".a.pdf.tmp", "sub/a.pdf", "%2e%2e", "missing.pdf", "/etc/passwd", ""):
        assert export_file(exports, name) is None, name
    (exports / "link.pdf").symlink_to(tmp_path / "secret.sqlite3")
    assert export_file(exports, "link.pdf") is None


def test_loopback_and_credentials(tmp_path, monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    monkeypatch.delenv("FACEMONITOR_APP_AUTH", raising=False)
    assert read_credentials(None) is None
    monkeypatch.setenv("FACEMONITOR_APP_AUTH", "clinic:longenough")
    assert read_credentials(None) == ("clinic", "longenough")
    for bad in ("nopassword", "u:short", ":password123"):
        (tmp_path / "auth").write_text(bad)
        with pytest.raises(UsageError):
            read_credentials(tmp_path / "auth")


def test_the_app_refuses_another_address_without_credentials(tmp_path):
    from monitor.app.core import AppConfig
    from monitor.app.launch import start_app

    with pytest.raises(UsageError, match="--auth-file"):
        start_app(AppConfig(store_root=tmp_path), "0.0.0.0", 7999)


def _get(url, auth=None):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_off_loopback_every_route_needs_the_password_and_nothing_but_exports_is_served(tmp_path, sample_video):
    from monitor.app.core import AppConfig
    from monitor.app.launch import start_app

    port = free_port()
    core, server = start_app(AppConfig(store_root=tmp_path / "s", source=str(sample_video), protocol="short"),
                             "0.0.0.0", port, credentials=("clinic", "longenough"))
    try:
        base = f"http://127.0.0.1:{port}"
        (core.store_root / "exports").mkdir(exist_ok=True)
        (core.store_root / "exports" / "r.csv").write_text("a,b\n")
        for path in ("/", "/exports/r.csv", "/webrtc/status", "/gradio_api/info"):
            assert _get(base + path)[0] == 401, path
            assert _get(base + path, "clinic:wrong-password")[0] == 401, path
        assert _get(base + "/", "clinic:longenough")[0] == 200
        assert _get(base + "/exports/r.csv", "clinic:longenough") == (200, b"a,b\n")
        db = core.store_root / "facemonitor.sqlite3"
        for path in ("/exports/..%2Ffacemonitor.sqlite3", "/exports/%2e%2e%2ffacemonitor.sqlite3",
                     f"/gradio_api/file={db}", "/gradio_api/file=/etc/passwd", "/exports/../facemonitor.sqlite3"):
            status, body = _get(base + path, "clinic:longenough")
            assert status in (403, 404) and b"SQLite" not in body, path
    finally:
        core.close()
        server.stop()


# -- store: people, steps, notes --------------------------------------------------------------------------

def test_people_notes_and_steps(tmp_path):
    from monitor.protocol.definitions import SHORT
    from monitor.protocol.run import ProtocolRun

    with Store(tmp_path) as store:
        assert store.add_person("p-01") == "p-01"
        for bad in ("", "Jane Doe", "a/b", "x" * 41):
            with pytest.raises(StoreError):
                store.add_person(bad)
        sid = store.create_session("file", "live", "mediapipe", "p-01")
        run = ProtocolRun(SHORT)
        run.start(0.0)
        run.skip(1.0)
        store.save_steps(sid, run.records)
        store.set_protocol(sid, "short", "aborted")
        assert [s["status"] for s in store.steps(sid)][:2] == ["skipped", "pending"]
        store.add_note(sid[:12], "  looks tired  ", "Dr A")
        with pytest.raises(StoreError):
            store.add_note(sid, "   ")
        with pytest.raises(StoreError):
            store.add_note("nosuchsession", "text")
        assert store.notes(sid) == [{"at": store.notes(sid)[0]["at"], "author": "Dr A", "text": "looks tired"}]
        assert store.people() == ["p-01"]
        row = store.get_session(sid)
        assert (row.protocol, row.protocol_status) == ("short", "aborted")
        assert [r.id for r in store.list_sessions(person="p-01", protocol="short")] == [sid]
        assert store.list_sessions(person="someone-else") == []
        assert store.list_sessions(since="2999-01-01") == []


def test_an_older_store_gains_the_new_columns(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "facemonitor.sqlite3")
    db.executescript("CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, finished_at TEXT,"
                     " status TEXT NOT NULL, source TEXT NOT NULL, mode TEXT NOT NULL, backend TEXT NOT NULL,"
                     " person TEXT, pid INTEGER, host TEXT, frames INTEGER NOT NULL DEFAULT 0,"
                     " frames_with_face INTEGER NOT NULL DEFAULT 0, dropped_frames INTEGER NOT NULL DEFAULT 0,"
                     " processing_fps REAL, series_path TEXT, summary TEXT, error TEXT);"
                     "INSERT INTO sessions (id, created_at, status, source, mode, backend) VALUES"
                     " ('old', '2026-01-01', 'complete', 'f', 'record', 'mediapipe');")
    db.close()
    with Store(tmp_path) as store:
        row = store.get_session("old")
        assert row.protocol is None and row.video_path is None


# -- trends and the deterioration flag ----------------------------------------------------------------------

class _Row:
    def __init__(self, sid, day, aperture):
        self.id, self.created_at = sid, f"2026-11-{day:02d}T08:00:00"
        self.summary = SessionSummary.from_dict({"neutral_medians": {"eye_aperture_left_mm": aperture}})


def test_trend_flags_a_worsening_beyond_the_threshold_against_the_baseline():
    rows = [_Row("a", 1, 9.0), _Row("b", 2, 8.7), _Row("c", 3, 7.9), _Row("d", 4, 9.4), _Row("e", 5, 8.3)]
    points = trend(rows, "eye_aperture_left_mm")
    assert [p.change for p in points] == [0.0, -0.3, -1.1, 0.4, -0.7]
    assert [p.flagged for p in points] == [False, False, True, False, False]
    # against a named baseline session (the person's stored baseline)
    assert [p.flagged for p in trend(rows, "eye_aperture_left_mm", baseline_session="d")] == \
        [False, False, True, False, True]
    assert TREND_MEASURES["mouth_asymmetry_mm"].worse == 1


def test_session_values_and_step_table_from_a_summary():
    summary = SessionSummary.from_dict({
        "neutral_medians": {"commissure_height_left_mm": 60.0, "commissure_height_right_mm": 58.5, "mrd1_left_mm": 3.1},
        "steps": {"gaze_left": {"frames": 10, "medians": {"eye_aperture_left_mm": 8.0},
                                "fatigue": {s: {"eye_aperture": {"drop_mm": d}} for s, d in
                                            (("left", 1.4), ("right", 0.2))}},
                  "happiness": {"frames": 5, "expression": {"frames": 5, "emotions_p95": {
                      "happiness": {"both": 0.61}}}}}})
    v = session_values(summary)
    assert v == {"mrd1_left_mm": 3.1, "mouth_asymmetry_mm": 1.5, "fatigue_drop_mm": 1.4}
    rows = step_table(summary, [{"step": "gaze_left", "status": "done", "counted_s": 30.0, "attempts": 2,
                                 "quality_lost_s": 1.0},
                                {"step": "happiness", "status": "done", "counted_s": 8.0, "attempts": 1,
                                 "quality_lost_s": 0.0}])
    assert rows[0]["eye_aperture_left_mm"] == 8.0 and rows[0]["fatigue_drop_left_mm"] == 1.4
    assert rows[1]["expression_strength"] == 0.61


def test_exports_are_written_into_the_exports_folder(tmp_path, sample_video):
    from monitor.protocol.steps import parse_steps
    from monitor.session.options import SessionOptions
    from monitor.session.run import run_session

    r = run_session(SessionOptions(source=str(sample_video), store_root=tmp_path,
                                   step_at=parse_steps("0,1.2,neutral\n1.2,2.4,happiness")))
    with Store(tmp_path) as store:
        store.add_note(r.session_id, "Dysarthria − noted", "Dr B")
        pdf = export_session(store, r.session_id, "pdf")
        assert pdf.parent == store.exports_dir and pdf.read_bytes()[:5] == b"%PDF-"
        js = export_session(store, r.session_id, "json")
        assert b'"step_table"' in js.read_bytes()
        csv = export_session(store, r.session_id, "csv")
        assert csv.read_text().splitlines()[0].startswith('"frame"')
        with pytest.raises(ValueError):
            export_session(store, r.session_id, "docx")


def test_illustrations_move_the_mesh_the_way_each_step_asks():
    from monitor.app import illustration as I
    from monitor.protocol import steps as S

    neutral = I.pose(S.NEUTRAL)
    # gaze left (the patient's left) moves both irises toward image right, unmirrored
    assert (I.pose("gaze_left")[[468, 473], 0] > neutral[[468, 473], 0] + 1).all()
    assert (I.pose("gaze_up")[[468, 473], 1] < neutral[[468, 473], 1] - 1).all()
    # closing the right eye hides only the right iris (468)
    closed = I.pose(S.RIGHT_EYE_CLOSED)
    assert np.isnan(closed[468]).all() and np.isfinite(closed[473]).all()
    assert I.pose(S.RAISING_EYEBROWS)[105, 1] < neutral[105, 1] - 3  # brows up
    assert I.pose("happiness")[291, 1] < neutral[291, 1] - 3  # mouth corners up
    drawings = {s: I.draw(s) for s in S.ALL_STEPS}
    assert all(d.shape == (I.SIZE, I.SIZE, 3) for d in drawings.values())
    assert all((drawings[s] != drawings[S.NEUTRAL]).any() for s in S.ALL_STEPS if s != S.NEUTRAL)
    assert (I.draw("gaze_left", mirror=True) == drawings["gaze_left"][:, ::-1]).all()


@pytest.mark.parametrize("args, message", [
    (["--protocol", "long"], "unknown protocol 'long'"),
    (["--protocol", "missing.toml"], "cannot read protocol file missing.toml"),
    (["--host", "0.0.0.0"], "--auth-file"),
    (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
    (["--source", "ftp://example.org/x"], "unsupported URL scheme"),
    (["--port", "70000"], "--port must be 1–65535"),
])
def test_app_command_refuses_bad_input_with_one_line(tmp_path, args, message):
    r = run_cli("app", *args, store=tmp_path, env={"FACEMONITOR_APP_AUTH": ""}, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith(("W0000", "I0000"))]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.stderr
