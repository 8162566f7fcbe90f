import threading
import time

import numpy as np
import pytest
from helpers import write_video

from monitor.capture.mailbox import FrameMailbox
from monitor.capture.sources import Frame, SourceSpec, open_capture, parse_source
from monitor.capture.thread import CaptureThread
from monitor.errors import SourceError


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
