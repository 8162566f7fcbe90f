"""Silence the native libraries' own logging before they are imported.

OpenCV, FFmpeg and MediaPipe (glog/absl) print to stderr from C++; the CLI's contract is that errors
are one `error:` line, so their chatter is turned down unless FACEMONITOR_NATIVE_LOGS=1.
"""

import os

if os.environ.get("FACEMONITOR_NATIVE_LOGS") != "1":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_VIDEOIO_PRIORITY_OBSENSOR", "0")
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


import contextlib  # noqa: E402
import sys  # noqa: E402


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the duration (MediaPipe's C++ logging ignores the
    environment variables above and writes during model load and the first inference)."""
    if os.environ.get("FACEMONITOR_NATIVE_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
