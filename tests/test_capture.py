import threading
import time

import cv2
import numpy as np
import pytest
from helpers import write_video
from media_server import MediaServer, mjpeg_frames, serve_bytes, serve_mjpeg, serve_whole

from monitor.capture.mailbox import FrameMailbox
from monitor.capture.media_pass import MediaClock, PassTally
from monitor.capture.sources import MAX_FRAME_SIDE, Frame, SourceSpec, open_capture, parse_source
from monitor.capture.still import StillImage
from monitor.capture.thread import CaptureThread
from monitor.errors import SourceError
from monitor.lab.attack.media import cut, garble, vfr_times, write_timed_video


def frame(i):
    return Frame(i, time.monotonic_ns(), i * 33_333, np.zeros((2, 2, 3), np.uint8), 0.0)


@pytest.mark.fast
def test_parse_source():
    assert parse_source(0) == SourceSpec("camera", "0")
    assert parse_source("rtsp://host/x").kind == "url"
    assert parse_source("clip.mp4") == SourceSpec("file", "clip.mp4")
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        parse_source("ftp://x/y")


@pytest.mark.fast
def test_live_mailbox_keeps_the_newest_and_counts_drops():
    box, stop = FrameMailbox("live"), threading.Event()
    for i in range(5):
        box.put(frame(i), stop)
    assert box.get(0).frame_id == 4
    assert box.dropped_ids == [0, 1, 2, 3]


@pytest.mark.fast
def test_record_mailbox_blocks_a_file_reader_and_loses_nothing():
    box, stop = FrameMailbox("record", capacity=2), threading.Event()
    got = []

    def producer():
        for i in range(50):
            box.put(frame(i), stop)
        box.close()

    t = threading.Thread(target=producer)
    t.start()
    while not box.exhausted:
        f = box.get(0.1)
        if f:
            got.append(f.frame_id)
            time.sleep(0.001)
    t.join()
    assert got == list(range(50)) and box.dropped_ids == []


@pytest.mark.fast
def test_record_mailbox_for_a_device_drops_and_logs_when_full():
    box, stop = FrameMailbox("record", capacity=3, block=False), threading.Event()
    for i in range(5):
        box.put(frame(i), stop)
    assert box.dropped_ids == [3, 4]
    assert [box.get(0).frame_id for _ in range(3)] == [0, 1, 2]


class StuckCamera:
    """Stands in for a webcam driver (none exists on a test machine) that freezes or unplugs."""

    def __init__(self, mode):
        self.mode = mode
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.mode == "unplugged" and self.reads > 3:
            return False, None
        return True, np.full((8, 8, 3), 7 if self.mode == "frozen" else self.reads % 255, np.uint8)

    def get(self, prop):
        return 30.0

    def set(self, prop, value):
        return True

    def release(self):
        pass


@pytest.mark.fast
@pytest.mark.parametrize("mode, first_event", [("frozen", "source_frozen"), ("unplugged", "source_disconnected")])
def test_watchdog_reports_tries_to_reconnect_and_gives_up(mode, first_event):
    events = []
    box = FrameMailbox("live")
    t = CaptureThread(SourceSpec("camera", "9"), box, capture=StuckCamera(mode), frozen_after_s=0.3,
                      reconnect_every_s=0.05, give_up_after_s=1.0,
                      on_event=lambda kind, detail, fid: events.append(kind))
    t.start()
    t.join(10)
    assert not t.is_alive()
    kinds = list(dict.fromkeys(events))
    assert kinds[0] == first_event and kinds[-1] == "source_lost", events
    assert isinstance(t.error, SourceError), "a lost source ends the session as incomplete, not complete"


def test_file_source_frames_and_media_time(sample_video):
    box = FrameMailbox("record")
    t = CaptureThread(parse_source(str(sample_video)), box, repeat=2)
    t.start()
    ids, times = [], []
    while not box.exhausted:
        f = box.get(0.5)
        if f:
            ids.append(f.frame_id)
            times.append(f.t_media_us)
    t.join(5)
    assert ids == list(range(144))
    assert np.all(np.diff(times) > 0), "media time keeps rising across repeats"


@pytest.mark.fast
def test_a_written_video_is_read_whole_in_order_and_repeated(tmp_path):
    """record mode over a file made here: every frame once per repeat, ids and media time rising."""
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(8)]
    path = write_video(tmp_path / "v.mp4", frames, fps=25.0)
    box = FrameMailbox("record", capacity=2)
    t = CaptureThread(parse_source(str(path)), box, repeat=2)
    t.start()
    got = []
    while not box.exhausted:
        f = box.get(0.5)
        if f:
            got.append(f)
    t.join(5)
    assert not t.is_alive() and t.error is None and box.dropped_ids == []
    assert [f.frame_id for f in got] == list(range(16))
    assert np.all(np.diff([f.t_media_us for f in got]) > 0), "media time keeps rising across repeats"
    assert [f.t_media_us for f in got[:3]] == pytest.approx([0, 40_000, 80_000], abs=1000)
    # the pictures come back in order (the codec's rounding aside), and again on the second pass
    means = [float(f.image.mean()) for f in got]
    assert means[:8] == pytest.approx([20 * i for i in range(8)], abs=4) and means[8:] == pytest.approx(means[:8])


@pytest.mark.fast
@pytest.mark.parametrize("case, message", [("missing", "no such file"), ("folder", "is a directory"),
                                           ("empty", r"file is empty \(0 bytes\)"), ("text", "not a readable video")])
def test_unreadable_files_say_why(tmp_path, case, message):
    path = tmp_path / f"{case}.mp4"
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a video\n")
    with pytest.raises(SourceError, match=message):
        open_capture(parse_source(str(path)))


@pytest.mark.fast
def test_open_capture_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_capture(SourceSpec("file", str(tmp_path / "x.mp4")))
    with pytest.raises(SourceError, match="camera 11: not found"):
        open_capture(SourceSpec("camera", "11"))


# -- bad media and streams (issue 17) ---------------------------------------------------------------


def drain(thread, box, join_s=20.0):
    """Start ``thread`` and collect what it hands out until it ends."""
    thread.start()
    got = []
    deadline = time.monotonic() + join_s
    while not box.exhausted and time.monotonic() < deadline:
        f = box.get(0.2)
        if f:
            got.append(f)
    thread.stop()
    thread.join(5)
    assert not thread.is_alive(), "the capture thread ends by itself"
    return got


def read_all(source, **kw):
    box = FrameMailbox("record")
    t = CaptureThread(parse_source(str(source)), box, **kw)
    return t, drain(t, box)


def small_sample(sample_frames, n):
    return [cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in sample_frames[:n]]


@pytest.mark.fast
def test_media_clock_follows_presentation_times_and_always_rises():
    clock = MediaClock(30.0)
    assert [clock.stamp(ms) for ms in (100.0, 110.0, 400.0)] == [0, 10_000, 300_000], "times from the first frame"
    assert clock.stamp(200.0) == 333_333, "a backward time (damage) moves one nominal frame on"
    assert clock.stamp(0.0) == 366_666 and clock.seen(400.0) and not clock.seen(401.0)
    clock.next_pass()
    assert clock.stamp(50.0) == 366_666 + 33_333, "a repeated file's next pass follows the last frame"


@pytest.mark.fast
def test_pass_tally_names_truncated_and_damaged_media():
    whole = PassTally(90, 30.0)
    for i in range(89):  # containers' counts are off by a frame or two: still whole
        whole.decoded_frame(i * 1000 / 30)
    assert not whole.failed_read() or whole.failed_in_a_row < 64
    assert whole.shortfall() is None
    cut = PassTally(90, 30.0)
    for i in range(7):
        cut.decoded_frame(i * 1000 / 30)
    assert cut.failed_read(), "frames are missing: read on, the damage may end"
    assert cut.shortfall().startswith("truncated media: 7 frames decoded of 90")
    damaged = PassTally(90, 30.0)
    for i in range(90):
        if i == 20:
            damaged.failed_read()
        damaged.decoded_frame(i * 1000 / 30)
    assert damaged.shortfall().startswith("damaged media: decoding failed after frame 20")
    vfr = PassTally(111, 30.0)  # a count estimated from the duration at the nominal rate: the times reach the end
    for t in np.linspace(0, 3650, 41):
        vfr.decoded_frame(t)
    assert vfr.shortfall() is None


@pytest.mark.fast
def test_one_frame_video_keeps_its_frame(tmp_path, sample_frames):
    t, got = read_all(write_video(tmp_path / "one.mp4", sample_frames[:1]))
    assert len(got) == 1 and t.error is None and t.shortfall is None


@pytest.mark.fast
def test_a_photo_named_mp4_is_read_as_the_photo_and_random_bytes_are_refused(tmp_path, sample_frames):
    photo = tmp_path / "photo.mp4"
    photo.write_bytes(cv2.imencode(".jpg", sample_frames[0])[1].tobytes())
    assert isinstance(open_capture(parse_source(str(photo))), StillImage)
    t, got = read_all(photo)
    assert len(got) == 1 and got[0].image.shape == sample_frames[0].shape and t.shortfall is None
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(SourceError, match="not a readable video"):
        open_capture(parse_source(str(noise)))


@pytest.mark.fast
def test_frames_above_the_maximum_size_are_downscaled_before_the_wire(tmp_path):
    path = tmp_path / "tall.png"
    cv2.imwrite(str(path), np.full((5000, 300, 3), 90, np.uint8))
    t, got = read_all(path)
    assert got[0].image.shape == (MAX_FRAME_SIDE, 246, 3)
    assert [e[1] for e in t.stats.events] == ["frame_downscaled"]


@pytest.mark.fast
def test_variable_frame_rate_times_come_from_the_container(tmp_path, sample_frames):
    pytest.importorskip("av")
    times = vfr_times(40, seed=3)
    path = write_timed_video(tmp_path / "vfr.mp4", small_sample(sample_frames, 40), times)
    t, got = read_all(path)
    assert len(got) == 40 and t.shortfall is None
    t_s = np.array([f.t_media_us for f in got]) / 1e6
    assert np.abs(t_s - times).max() < 0.002, "within a millisecond; a frame is at least 16 ms here"


@pytest.mark.fast
@pytest.mark.parametrize("damage, kind", [("cut", "source_truncated"), ("garbage", "source_damaged")])
def test_truncated_or_damaged_video_reports_the_missing_frames(tmp_path, sample_frames, damage, kind):
    pytest.importorskip("av")
    good = write_timed_video(tmp_path / "good.mp4", small_sample(sample_frames, 60), np.arange(60) / 30)
    bad = cut(good, tmp_path / "bad.mp4", 0.4) if damage == "cut" else garble(good, tmp_path / "bad.mp4", 0.4, 0.2)
    t, got = read_all(bad)
    assert 0 < len(got) < 60 and t.error is None
    assert t.shortfall and "decoded of 60 the container lists" in t.shortfall
    assert [e[1] for e in t.stats.events] == [kind]
    assert np.all(np.diff([f.t_media_us for f in got]) > 0)
    t, got = read_all(good)
    assert len(got) == 60 and t.shortfall is None and t.stats.events == []


def recording(tmp_path, sample_frames, n=30):
    pytest.importorskip("av")
    frames = small_sample(sample_frames, n)
    path = write_timed_video(tmp_path / "rec.mp4", frames, np.arange(n) / 30)
    return path.read_bytes(), [float(f.mean()) for f in frames]


@pytest.mark.fast
@pytest.mark.timeout(60)
@pytest.mark.parametrize("dropped", [False, True], ids=["whole", "dropped-halfway"])
def test_a_finite_http_recording_ends_when_it_ends_and_is_never_replayed(tmp_path, sample_frames, dropped):
    data, means = recording(tmp_path, sample_frames)
    whole = serve_bytes(data)
    half = serve_bytes(data, limit=len(data) * 3 // 4)  # the connection drops after some frames
    with MediaServer(lambda req, n: (half if dropped and n == 0 else whole)(req, n)) as server:
        t, got = read_all(server.url, give_up_after_s=10, reconnect_every_s=0.1)
    assert t.error is None and len(got) == 30, "every frame once: none replayed, none lost"
    assert [f.frame_id for f in got] == list(range(30))
    assert [float(f.image.mean()) for f in got] == pytest.approx(means, abs=3), "in order"
    assert t.stats.reconnects == int(dropped) and server.hits <= 2 + 2 * dropped
    assert [f.t_media_us for f in got][:3] == pytest.approx([0, 33_333, 66_667], abs=1000)
    assert t.stats.events[-1][1] == "source_ended"


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_a_live_stream_that_starts_over_ends_instead_of_replaying():
    with MediaServer(serve_mjpeg(mjpeg_frames(12))) as server:
        t, got = read_all(server.url, give_up_after_s=10, reconnect_every_s=0.1)
    assert t.error is None and len(got) == 12 and server.hits == 2
    assert [e[1] for e in t.stats.events][-1] == "source_ended"


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_an_http_source_that_opens_but_never_decodes_is_refused_at_once(sample_video):
    # the sample keeps its index at the end: without byte ranges a player cannot reach it
    with MediaServer(serve_whole(sample_video.read_bytes())) as server:
        with pytest.raises(SourceError, match="no frame could be decoded"):
            open_capture(parse_source(server.url))
    assert server.hits <= 3


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_a_stream_that_stops_decoding_backs_off_and_gives_up_within_the_bound(sample_video):
    live, dead = serve_mjpeg(mjpeg_frames(5)), serve_whole(sample_video.read_bytes())
    with MediaServer(lambda req, n: (live if n == 0 else dead)(req, n)) as server:
        t, got = read_all(server.url, give_up_after_s=2.0, reconnect_every_s=0.1, reconnect_max_s=0.8)
    # it gave up (the old reader reconnected for ever; the test's timeout bounds a hang)
    assert len(got) == 5 and isinstance(t.error, SourceError) and "no frames for 2 s" in str(t.error)
    tries = np.diff(server.times[1:])
    assert server.hits <= 20, f"{server.hits} connections: reconnects back off"
    assert tries.max() >= 0.35 and tries.max() > 3 * tries.min(), "the wait between tries grows"
    kinds = [e[1] for e in t.stats.events]
    assert kinds[0] == "source_disconnected" and kinds[-1] == "source_lost"


@pytest.mark.timeout(60)
def test_a_live_stream_that_stalls_is_reported_and_given_up():
    with MediaServer(serve_mjpeg(mjpeg_frames(5), hang_s=40)) as server:
        t0 = time.monotonic()
        t, got = read_all(server.url, give_up_after_s=2.0, reconnect_every_s=0.1)
        took = time.monotonic() - t0
    assert len(got) == 5 and isinstance(t.error, SourceError)
    kinds = [e[1] for e in t.stats.events]
    assert kinds[0] == "source_stalled" and kinds[-1] == "source_lost", kinds
    # noticed after the read timeout (5 s) and given up 2 s later, not when the server lets go (40 s);
    # the margin is wide so that a busy machine cannot fail it
    assert took < 30, "the stall is noticed within the read timeout, not when the server lets go"
