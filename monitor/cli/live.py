"""``facemonitor live``: live figures from a webcam, a stream, or (with no webcam) the sample video,
on one status line, then the session's result."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path

from engines import assets
from monitor import DISCLAIMER
from monitor.cli.analyze import load_session_stack, start_engine_early
from monitor.cli.common import add_session_args, positive_float, session_options
from monitor.errors import SessionIncomplete, SourceError
from monitor.report.numbers import fmt
from monitor.session.options import StageTimes


def add_parser(sub) -> None:
    lv = sub.add_parser("live", help="live figures from a webcam (the sample video when there is none)")
    lv.add_argument("--source",
                    help="camera index, file or URL (default: camera 0, or the sample video if there is none)")
    lv.add_argument("--seconds", type=positive_float, help="stop after this many seconds")
    lv.add_argument("--record", action="store_true", help="record mode: no frame dropped (default: live, newest wins)")
    lv.add_argument("--no-preview", action="store_true", help="no preview window even where a display exists")
    add_session_args(lv)
    lv.set_defaults(run=run_live)


def _v(row: dict, key: str) -> str:
    """A figure of the status line, 5 characters wide."""

    return f"{fmt(row.get(key), missing='  —  '):>5}"


class ProgressLine:
    """One status line, rewritten in place on a terminal, printed once a second otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.t0: float | None = None
        self.frames = 0
        self.latencies: deque[float] = deque(maxlen=90)  # the last ~3 s at 30 fps

    def __call__(self, row: dict) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        self.frames += 1
        self.latencies.append(row["latency_ms"])
        if now - self.last < (0.25 if self.tty else 1.0):
            return
        self.last = now
        fps = (self.frames - 1) / max(1e-6, now - self.t0)
        p95 = StageTimes.pct(self.latencies, 95)
        text = (f"t {row['t_s']:6.1f} s | {fps:5.1f} fps | face {'yes' if row['face'] else 'no '} | "
                f"eye aperture L {_v(row, 'eye_aperture_left_mm')} R {_v(row, 'eye_aperture_right_mm')} mm | "
                f"MRD1 L {_v(row, 'mrd1_left_mm')} R {_v(row, 'mrd1_right_mm')} mm | "
                f"yaw {_v(row, 'yaw_deg')}° | latency p95 {p95:4.0f} ms")
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _preview_callback():
    """A preview window where a display exists, else None."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return None
    import cv2

    from monitor.report.overlay import draw_landmarks  # lazy: cv2, only with a display

    def show(image, landmarks) -> None:
        view = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if landmarks is not None:
            draw_landmarks(view, landmarks)
        cv2.imshow("facemonitor (not a diagnostic device)", view)
        cv2.waitKey(1)

    try:
        cv2.namedWindow("facemonitor (not a diagnostic device)")
    except cv2.error:
        return None
    return show


def resolve_live_source(source: str, explicit: bool) -> tuple[str, bool]:
    """The source to use and whether it is the sample video standing in for a missing webcam."""
    from monitor.capture.sources import open_capture, parse_source  # lazy: cv2

    spec = parse_source(source)
    if spec.kind != "camera" or explicit:
        return source, False
    try:
        open_capture(spec).release()
        return source, False
    except SourceError:
        return str(assets.sample_path()), True


def video_length_s(source: str) -> float | None:
    """A video file's length in seconds (frames ÷ frame rate), or None for a camera, a stream, a photo
    or a file that does not say."""
    import cv2

    from monitor.capture.sources import parse_source  # lazy: cv2
    from monitor.capture.still import IMAGE_SUFFIXES  # lazy: cv2

    spec = parse_source(source)
    if spec.kind != "file" or Path(spec.value).suffix.lower() in IMAGE_SUFFIXES:
        return None
    cap = cv2.VideoCapture(spec.value)
    try:
        frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return frames / fps if frames > 0 and fps > 0 else None


def ended_note(source: str, seconds: float | None) -> str | None:
    """"the video ended after 2.4 s", when a video file ends before ``--seconds`` (or without it)."""
    length = video_length_s(source)
    if length is None or (seconds is not None and length >= seconds):
        return None
    return f"the video ended after {length:.1f} s" + (f", before --seconds {seconds:g}" if seconds else "")


def run_live(args: argparse.Namespace) -> int:
    explicit = args.source is not None
    source, fallback = resolve_live_source(args.source or "0", explicit)
    progress = ProgressLine()
    preview = None if args.no_preview else _preview_callback()
    opts = session_options(args, source, mode="record" if args.record else "live", realtime=True,
                           max_seconds=args.seconds, on_result=progress, on_preview=preview)
    if fallback:
        print(f"no webcam at index 0; playing the sample video {assets.SAMPLE_VIDEO} instead",
              file=sys.stderr)
    print(DISCLAIMER, file=sys.stderr)
    engine = start_engine_early(opts)
    format_result, run_session = load_session_stack(engine)
    try:
        result = run_session(opts, engine)  # stops the engine, however it ends
    except SessionIncomplete:
        progress.close()
        raise
    progress.close()
    note = ended_note(source, args.seconds)
    if note:
        print(note, file=sys.stderr)
    print(format_result(result.as_json()))
    return 0
