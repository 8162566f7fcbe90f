"""``facemonitor live``: live figures from a webcam, a stream, or (with no webcam) the sample video."""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque

from engines import assets
from monitor import DISCLAIMER
from monitor.capture.sources import open_capture, parse_source
from monitor.cli.common import session_options
from monitor.errors import SessionIncomplete, SourceError
from monitor.report.text import format_result
from monitor.session.options import StageTimes
from monitor.session.run import run_session


def _v(row: dict, key: str) -> str:
    v = row.get(key)
    return "  —  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:5.1f}"


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

    from monitor.report.overlay import draw_landmarks  # lazy: only with a display

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
    spec = parse_source(source)
    if spec.kind != "camera" or explicit:
        return source, False
    try:
        open_capture(spec).release()
        return source, False
    except SourceError:
        return str(assets.sample_path()), True


def run_live(args) -> int:
    explicit = args.source is not None
    source, fallback = resolve_live_source(args.source or "0", explicit)
    if fallback:
        print(f"no webcam at index 0; playing the sample video {assets.SAMPLE_VIDEO} instead",
              file=sys.stderr)
    print(DISCLAIMER, file=sys.stderr)
    progress = ProgressLine()
    preview = None if args.no_preview else _preview_callback()
    opts = session_options(args, source, mode="record" if args.record else "live", realtime=True,
                           max_seconds=args.seconds, on_result=progress, on_preview=preview)
    try:
        result = run_session(opts)
    except SessionIncomplete:
        progress.close()
        raise
    progress.close()
    print(format_result(result.as_json()))
    return 0
