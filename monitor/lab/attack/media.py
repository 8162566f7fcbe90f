"""Attack area `media`: a corpus of bad media (truncated, garbage in the middle, zero bytes, random
bytes, a photo renamed .mp4, huge pictures, a one-frame video, variable frame rate) through the real
`facemonitor analyze` command, against one engine started for the run.

A failure is a crash (a traceback, or an exit code other than 0 and 2), an error that is not one
`error:` line, a session ended `complete` from media that lost frames, a refusal that still created
a session, or a `complete` session with the wrong number of frames or (variable frame rate) times more
than one frame off. The corpus makers are public: the capture tests build their media with them.
"""

from __future__ import annotations

import fractions
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines import assets
from monitor.engine.local import LocalEngine
from monitor.lab.attack import Finding, scaled
from monitor.store.db import Store
from monitor.transport.client import EngineClient

ANALYZE_TIMEOUT_S = 120


def write_timed_video(path: Path, frames: list[np.ndarray], times_s: list[float] | np.ndarray,
                      codec: str = "mpeg4") -> Path:
    """An MP4 with each BGR frame shown at its own presentation time (a variable frame rate when the
    times are uneven), its index at the front (``faststart``) so that a cut copy still opens. Needs
    PyAV (installed with the app's WebRTC dependencies)."""
    import av  # lazy: PyAV is needed only to make such media

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream(codec, rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for image, t in zip(frames, times_s):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), fractions.Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def write_cv2_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """An MP4 written by OpenCV (its index at the end, so a cut copy does not open)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def cut(src: Path, dst: Path, keep: float) -> Path:
    """The first ``keep`` share of a file's bytes (an interrupted copy or download)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def garble(src: Path, dst: Path, start: float, length: float, seed: int = 0) -> Path:
    """A copy with random bytes over ``length`` of the file from ``start`` (shares of its size)."""
    data = bytearray(src.read_bytes())
    a, n = int(len(data) * start), int(len(data) * length)
    data[a:a + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def vfr_times(n: int, seed: int = 0) -> np.ndarray:
    """``n`` uneven presentation times (frame gaps of 1/60 to 1/5 s), from 0."""
    gaps = np.random.default_rng(seed).choice([1 / 60, 1 / 30, 1 / 10, 1 / 5], n - 1)
    return np.round(np.concatenate([[0.0], np.cumsum(gaps)]), 3)


@dataclass(frozen=True)
class Case:
    """One corpus file and the outcomes that are right for it."""

    probe: str
    path: Path
    allowed: frozenset  # of "complete", "incomplete", "refused"
    frames: int | None = None  # a complete session must have this many frames
    times_s: tuple | None = None  # ... and these media times (within one frame)


def sample_frames(count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(assets.sample_path("single_face.mp4", progress=False)))
    frames = []
    while len(frames) < count:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def corpus(workdir: Path, scale: float) -> list[Case]:
    """The bad media, written into ``workdir``; ``scale`` sets how many cut and garbled variants."""
    frames = sample_frames(30)
    good = write_timed_video(workdir / "good.mp4", frames, np.arange(len(frames)) / 30)
    refused, lost = frozenset({"refused"}), frozenset({"incomplete", "refused"})
    cases = [Case("zero bytes", _write(workdir / "zero.mp4", b""), refused),
             Case("random bytes", _write(workdir / "random.mp4", np.random.default_rng(1).bytes(50_000)), refused),
             Case("text named .mp4", _write(workdir / "text.mp4", b"not a video\n" * 100), refused),
             Case("one-frame video", write_cv2_video(workdir / "one.mp4", frames[:1]), frozenset({"complete"}), 1),
             Case("photo renamed .mp4", _jpeg(workdir / "photo.mp4", frames[0]), frozenset({"complete"}), 1),
             Case("huge picture (8000 px)", _huge_png(workdir / "huge.png", frames[0]), frozenset({"complete"}), 1),
             Case("cut video, index at the end", cut(write_cv2_video(workdir / "late.mp4", frames),
                                                     workdir / "late-cut.mp4", 0.5), lost)]
    times = vfr_times(len(frames))
    cases.append(Case("variable frame rate", write_timed_video(workdir / "vfr.mp4", frames, times),
                      frozenset({"complete"}), len(frames), tuple(times)))
    for i in range(scaled(3, scale)):
        keep = 0.3 + 0.5 * i / max(1, scaled(3, scale))
        cases.append(Case(f"cut video ({keep:.0%} kept)", cut(good, workdir / f"cut{i}.mp4", keep), lost))
        cases.append(Case(f"garbage in the middle ({i})", garble(good, workdir / f"garbled{i}.mp4", 0.3 + 0.1 * i,
                                                                 0.2, seed=i), lost))
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _jpeg(path: Path, image: np.ndarray) -> Path:
    return _write(path, cv2.imencode(".jpg", image)[1].tobytes())


def _huge_png(path: Path, face: np.ndarray) -> Path:
    """A face photo enlarged to 8000 px on its long side (downscaled before the wire, analysed as one frame)."""
    h, w = face.shape[:2]
    big = cv2.resize(face, (8000, round(8000 * h / w)) if w >= h else (round(8000 * w / h), 8000))
    cv2.imwrite(str(path), big)
    return path


def classify(rc: int, stdout: str, stderr: str) -> tuple[str, dict | None]:
    """The outcome of one `analyze --json` run: complete, incomplete, refused, or crash."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    if "Traceback" in stderr or rc not in (0, 2) or (rc == 2 and len(errors) != 1):
        return "crash", None
    out = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    if rc == 0:
        return ("complete" if out and out.get("status") == "complete" else "crash"), out
    return ("incomplete" if out else "refused"), out


def check(case: Case, outcome: str, out: dict | None, sessions_added: int) -> str | None:
    """What was wrong with one run, or None."""
    if outcome not in case.allowed:
        return f"{case.probe}: {outcome}, expected {'/'.join(sorted(case.allowed))}"
    if outcome == "refused" and sessions_added:
        return f"{case.probe}: refused, yet a session was created"
    if outcome == "complete" and case.frames is not None and out["frames"] != case.frames:
        return f"{case.probe}: complete with {out['frames']} frames, expected {case.frames}"
    if outcome == "complete" and case.times_s is not None:
        import pyarrow.parquet as pq  # lazy: pyarrow, only to read the series back

        t = np.asarray(pq.read_table(out["series_path"]).column("t_s").to_pylist())
        if len(t) != len(case.times_s) or np.abs(t - np.asarray(case.times_s)).max() > 1 / 30:
            return f"{case.probe}: t_s off the presentation times by more than one frame"
    return None


def analyze(path: Path, endpoint: str, store: Path) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "monitor", "analyze", str(path), "--json", "--engine", endpoint,
           "--store", str(store), "--source-timeout", "10"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=ANALYZE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -9, "", "Traceback: analyze hung past its bound"
    return r.returncode, r.stdout, r.stderr


def attack(workdir: Path, scale: float, log: Callable[[str], None] = lambda _m: None) -> list[Finding]:
    """Every corpus file through `analyze`, against one engine started here."""
    cases = corpus(workdir, scale)
    store = workdir / "store"
    engine = LocalEngine(log_dir=workdir / "logs")
    client = EngineClient(engine.endpoint)
    findings = []
    try:
        engine.wait_ready(client, timeout_s=120)
        for case in cases:
            t0 = time.monotonic()
            before = _session_count(store)
            outcome, out = classify(*analyze(case.path, engine.endpoint, store))
            problem = check(case, outcome, out, _session_count(store) - before)
            log(f"media: {case.probe}: {outcome} in {time.monotonic() - t0:.1f} s")
            findings.append(Finding("media", case.probe, 1, int(problem is not None), outcome, problem or ""))
    finally:
        client.close()
        engine.stop()
    return _merged(findings)


def _session_count(store: Path) -> int:
    if not store.exists():
        return 0
    with Store(store) as s:
        return len(s.list_sessions(limit=100_000))


def _merged(findings: list[Finding]) -> list[Finding]:
    """Variants of one probe (cut at several points, say) as one row."""
    rows: dict[str, Finding] = {}
    for f in findings:
        key = f.probe.split(" (")[0] if f.probe.startswith(("cut video (", "garbage in the middle")) else f.probe
        old = rows.get(key)
        if old is None:
            rows[key] = Finding("media", key, f.attempts, f.failures, f.measured, f.detail)
        else:
            outcomes = sorted(set(old.measured.split(", ")) | {f.measured})
            rows[key] = Finding("media", key, old.attempts + 1, old.failures + f.failures, ", ".join(outcomes),
                                "; ".join(d for d in (old.detail, f.detail) if d))
    return list(rows.values())
