"""The app end to end in a real headless Chromium (Debian's, driven by Playwright): the short
protocol with the sample video as the camera, the results, the review tab, notes and exports; and
the browser's own (fake) camera over WebRTC feeding the same pipeline.

Set FACEMONITOR_SCREENSHOTS=DIR to keep a screenshot of each screen (docs/screenshots is made so).
"""

import os
import shutil
import time
import urllib.request
from pathlib import Path

import cv2
import pytest
from helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream"]
SHOTS = os.environ.get("FACEMONITOR_SCREENSHOTS")


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.jpg"), full_page=True, type="jpeg", quality=70)


@pytest.fixture
def app(tmp_path, sample_video):
    from monitor.app.core import AppConfig
    from monitor.app.launch import start_app

    port = free_port()
    core, server = start_app(AppConfig(store_root=tmp_path / "store", source=str(sample_video), protocol="short"),
                             "127.0.0.1", port)
    yield core, f"http://127.0.0.1:{port}"
    core.close()
    server.stop()


def _open(page, url: str) -> None:
    """Load the app (the MJPEG preview never finishes loading, so wait for the UI instead)."""
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#start").wait_for(timeout=90_000)


def _browser(p, extra=()):
    return p.chromium.launch(executable_path=CHROMIUM, args=FLAGS + list(extra), headless=True)


@pytest.mark.timeout(600)  # waits below are generous for a busy machine; they bound a hang, not a speed
def test_short_protocol_from_start_to_review(app):
    core, url = app
    with sync_api.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _open(page, url)
        assert "not a diagnostic device" in page.content()
        page.locator("#person input").fill("patient-7")
        page.locator("#person input").press("Enter")
        _shot(page, "1-setup")
        page.locator("#start").click()
        # the instructions change as the protocol runs: collect the steps the page shows
        seen, shown_prompts = [], set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = page.locator("#step-status")
            if status.count():
                step, phase = status.get_attribute("data-step"), status.get_attribute("data-phase")
                if step and (not seen or seen[-1] != step):
                    seen.append(step)
                    if len(seen) == 2:
                        _shot(page, "2-check-running")
                if phase in ("done", "aborted"):
                    break
            shown_prompts.add(page.locator("#instruction").inner_text())
            time.sleep(0.2)
        assert seen == ["neutral", "eyes_closed", "happiness", "gaze_left", "raising_eyebrows"]
        assert any("Close both eyes" in t for t in shown_prompts) and any("smile" in t for t in shown_prompts)
        # the live preview is a real MJPEG stream of the analysed frames
        assert page.evaluate("document.getElementById('live-preview').naturalWidth") == 640
        # the results tab opens by itself with this session
        sync_api.expect(page.locator("#results-text")).to_contain_text("Session ", timeout=120_000)
        sid = core.check.session_id
        text = page.locator("#results-text").inner_text()
        assert sid in text and "patient-7" in text and "Eye opening, left" in text
        assert page.locator("#results-steps").get_by_text("gaze_left").count() >= 1
        _shot(page, "3-results")
        # review: the session is listed, opens, takes a note, exports a PDF that is served
        page.get_by_role("tab", name="Review").click()
        page.locator("#review-refresh").click()
        sync_api.expect(page.locator("#review-sessions")).to_contain_text(sid, timeout=15_000)
        page.locator("#review-open").click()
        sync_api.expect(page.locator("#review-text")).to_contain_text(sid, timeout=15_000)
        page.locator("#note-text textarea").fill("Mild left ptosis late in gaze; recheck in a week.")
        page.locator("#note-save").click()
        sync_api.expect(page.locator("#review-notes")).to_contain_text("recheck in a week", timeout=10_000)
        page.locator("#review-pdf").click()
        link = page.locator("#review-links a")
        link.wait_for(timeout=30_000)
        href = link.get_attribute("href")
        assert href == f"/exports/{sid}.pdf"
        page.locator("#trend-person input").fill("patient-7")
        page.locator("#trend-person input").press("Enter")
        page.locator("#trend-show").click()
        sync_api.expect(page.locator("#trend-text")).to_contain_text("1 session(s) with eye opening, left",
                                                                      timeout=15_000)
        _shot(page, "4-review")
        browser.close()
    with urllib.request.urlopen(url + href) as r:
        assert r.read(5) == b"%PDF-"
    with core.store() as store:
        row = store.get_session(sid)
        assert row.status == "complete" and row.protocol == "short" and row.protocol_status == "done"
        steps = store.steps(sid)  # the sample never closes its eyes: that step is recorded as not performed
        assert [s["status"] for s in steps][:2] == ["done", "not_performed"] and steps[1]["performed"] is False
        assert all(s["status"] in ("done", "not_performed") for s in steps)
        assert store.notes(sid)[0]["text"].startswith("Mild left ptosis")
        assert row.video_path is None  # no opt-in, no video


def _fake_camera_file(sample_video, dest: Path, frames: int = 150) -> Path:
    """The sample video as a .y4m (I420) file for Chromium's fake camera."""
    cap = cv2.VideoCapture(str(sample_video))
    images = []
    while len(images) < frames:
        ok, img = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        images.append(img)
    h, w = images[0].shape[:2]
    with open(dest, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for img in images:
            f.write(b"FRAME\n" + cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes())
    return dest


@pytest.mark.timeout(600)
def test_browser_camera_feeds_the_pipeline_over_webrtc(app, tmp_path, sample_video):
    core, url = app
    fake = _fake_camera_file(sample_video, tmp_path / "camera.y4m")
    with sync_api.sync_playwright() as p:
        browser = _browser(p, ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake}"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _open(page, url)
        page.locator("#fm-cam-connect").click()
        page.locator("#fm-cam-status").get_by_text("connected").wait_for(timeout=60_000)
        deadline = time.monotonic() + 60
        while core.browser_feed.pushed < 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert core.browser_feed.pushed >= 30
        page.get_by_label("browser camera").check()
        page.locator("#keep-video input").check()  # this session opts in to keeping its raw video
        page.locator("#start").click()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (core.check is None or core.check.snapshot().frames < 60):
            time.sleep(0.5)
        snap = core.check.snapshot()
        assert snap.frames >= 60, snap
        # 640 px wide as sent; WebRTC lowers the resolution when the machine is busy (480, 320, …)
        assert snap.latest.get("face") and 160 <= snap.latest["image_width"] <= 640
        _shot(page, "5-browser-camera")
        page.locator("#stop").click()
        assert core.check.join(30)
        browser.close()
    with core.store() as store:
        row = store.get_session(core.check.session_id)
        assert row.source == "browser camera web" and row.frames_with_face >= 60
        assert row.protocol_status == "aborted"
    video = cv2.VideoCapture(row.video_path)  # the kept video is a playable H.264 file of the session
    kept = 0
    while video.read()[0]:
        kept += 1
    assert kept >= 0.9 * row.frames and video.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
