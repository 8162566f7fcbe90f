"""``facemonitor bench --whole-process``: ``analyze`` as a user runs it, one whole process per run
(start-up, engine process, model load, kernels, store), beside MediaPipe alone in the same run.

Per backend and repeat: wall seconds, CPU seconds (this process's children, engine included, from
``resource.getrusage``), frames per second over the wall time, and the time from process start to
the first result (``first_result_s`` in ``analyze --json``). Each figure is given as min / median /
max over the repeats; a figure whose spread is wide is flagged: the machine was busy, so its ratios
are uncertain. The runs alternate (MediaPipe alone, then each backend) so that a busy spell hits
every one of them.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUSY_SPREAD = 0.15  # (max − min) / median above this: the machine was busy during the repeats
TARGETS = {"first_result_s": 1.5, "mediapipe_over_alone": 0.85, "onnx_wall_speedup": 1.0, "onnx_cpu_per_frame": 1.0}


@dataclass(frozen=True)
class Spread:
    """One figure over the repeats of a run."""

    min: float
    median: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Spread":
        v = [float(x) for x in values if x is not None and np.isfinite(x)]
        if not v:
            raise ValueError("a spread needs at least one finite value")
        return cls(min(v), float(np.median(v)), max(v), len(v))

    @property
    def relative(self) -> float:
        """(max − min) / median: 0 when every repeat agreed."""
        return (self.max - self.min) / self.median if self.median else float("inf")

    def as_dict(self, digits: int = 3) -> dict:
        return {"min": round(self.min, digits), "median": round(self.median, digits),
                "max": round(self.max, digits), "n": self.n}


def spread_warning(name: str, spread: Spread, limit: float = BUSY_SPREAD) -> str | None:
    """A warning line when the repeats of ``name`` disagree by more than ``limit`` of their median
    (the machine was busy); None when they agree or there was only one repeat (nothing to judge)."""
    if spread.n < 2 or spread.relative <= limit:
        return None
    return (f"warning: {name} varied by {spread.relative:.0%} over {spread.n} repeats "
            f"({spread.min:.3g}–{spread.max:.3g}): the machine was busy; its ratios are uncertain")


def ratio_table(runs: dict[str, dict[str, Spread]], base: str) -> dict[str, dict[str, float]]:
    """Ratios of medians against run ``base``, per figure both have: ``fps`` (higher is faster) as
    run ÷ base; ``wall_s`` as base ÷ run (a speed-up: above 1 is faster); ``cpu_s_per_frame`` and
    ``first_result_s`` as run ÷ base (below 1 costs less)."""
    invert = {"wall_s"}
    out: dict[str, dict[str, float]] = {}
    for name, figures in runs.items():
        if name == base:
            continue
        row = {}
        for key, spread in figures.items():
            ref = runs[base].get(key)
            if ref is None or not ref.median or not spread.median:
                continue
            row[key] = round(ref.median / spread.median if key in invert else spread.median / ref.median, 3)
        out[f"{name} / {base}"] = row
    return out


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's ended and waited-for children and theirs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def analyze_process(video: Path, backend: str, store: Path, timeout_s: float = 600) -> dict:
    """One ``facemonitor analyze VIDEO --json`` process: wall and CPU seconds, frames, frames per
    second, time from its start to its first result."""
    cmd = [sys.executable, "-m", "monitor", "analyze", str(video), "--json", "--backend", backend,
           "--store", str(store)]
    cpu0, t0 = children_cpu_s(), time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall, cpu = time.monotonic() - t0, children_cpu_s() - cpu0
    if r.returncode != 0:
        raise RuntimeError(f"analyze --backend {backend} failed: {r.stderr.strip()[-300:]}")
    out = json.loads(r.stdout)
    frames = int(out["frames"])
    return {"wall_s": wall, "cpu_s": cpu, "frames": frames, "fps": frames / wall,
            "cpu_s_per_frame": cpu / max(frames, 1), "first_result_s": out.get("first_result_s")}


def mediapipe_alone(frames: list[np.ndarray], fps: float = 30.0) -> dict:
    """The Face Landmarker alone over decoded frames in this process (VIDEO mode, one warm-up frame
    not counted): frames per second and CPU seconds per frame."""
    from engines import create_runner  # lazy: mediapipe loads only when this figure is measured

    with create_runner("mediapipe") as runner:
        runner.infer(frames[0], 0)
        t0, c0 = time.perf_counter(), time.process_time()
        for i, f in enumerate(frames, start=1):
            runner.infer(f, int(i * 1000 / fps))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"fps": len(frames) / wall, "cpu_s_per_frame": cpu / len(frames)}


def long_video(work: Path, sample: Path, frames: int) -> Path:
    """The sample played over and over into one video of ``frames`` frames (what a user analyses:
    a recording longer than the 2.4 s sample)."""
    import cv2  # lazy: OpenCV loads only when the video is written

    cap = cv2.VideoCapture(str(sample))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    clip = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        clip.append(frame)
    cap.release()
    if not clip:
        raise RuntimeError(f"{sample} has no frames")
    path = work / f"sample-{frames}.mp4"
    h, w = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        writer.write(clip[i % len(clip)])
    writer.release()
    return path


def whole_process_runs(video: Path, backends: list[str], repeats: int, store: Path, log=print) -> dict:
    """MediaPipe alone and ``analyze`` per backend, alternated, ``repeats`` times: the figures of
    every run as spreads, the ratios against MediaPipe alone and against the first backend, and the
    warnings of figures whose repeats disagree."""
    from monitor.capture.sources import read_rgb_frames  # lazy: cv2 loads only when the benchmark runs

    decoded, _ = read_rgb_frames(video)
    samples: dict[str, dict[str, list]] = {"mediapipe-alone": {"fps": [], "cpu_s_per_frame": []}}
    for b in backends:
        samples[b] = {k: [] for k in ("wall_s", "cpu_s", "fps", "cpu_s_per_frame", "first_result_s")}
    for rep in range(repeats):
        log(f"repeat {rep + 1}/{repeats}: MediaPipe alone on {len(decoded)} decoded frames …")
        for k, v in mediapipe_alone(decoded).items():
            samples["mediapipe-alone"][k].append(v)
        order = backends if rep % 2 == 0 else backends[::-1]
        for b in order:
            log(f"repeat {rep + 1}/{repeats}: analyze --backend {b} (whole process) …")
            got = analyze_process(video, b, store / f"{b}-{rep}")
            for k in samples[b]:
                samples[b][k].append(got[k])
    runs = {name: {k: Spread.of(v) for k, v in figs.items() if any(x is not None for x in v)}
            for name, figs in samples.items()}
    ratios = ratio_table({n: {k: s for k, s in f.items() if k in ("fps", "cpu_s_per_frame")} for n, f in runs.items()},
                         "mediapipe-alone")
    if len(backends) > 1:
        ratios.update(ratio_table({b: runs[b] for b in backends}, backends[0]))
    warnings = [w for name, figs in runs.items() for key, s in figs.items()
                if (w := spread_warning(f"{name} {key}", s)) is not None]
    return {"frames": len(decoded), "repeats": repeats, "runs": {n: {k: s.as_dict() for k, s in f.items()}
                                                                  for n, f in runs.items()},
            "ratios": ratios, "warnings": warnings}


def format_report(report: dict) -> list[str]:
    """The report as the lines ``bench --whole-process`` prints."""
    lines = [f"whole process, {report['frames']} frames, {report['repeats']} repeats (min / median / max):"]
    for name, figs in report["runs"].items():
        cells = [f"{k} {v['min']:.3g} / {v['median']:.3g} / {v['max']:.3g}" for k, v in figs.items()]
        lines.append(f"  {name:<16} " + ";  ".join(cells))
    for pair, row in report["ratios"].items():
        lines.append(f"  {pair:<30} " + ",  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    lines += report["warnings"]
    return lines


def run_whole_process_bench(args) -> int:
    """``facemonitor bench --whole-process``: the figures above on the sample played into a video of
    ``--whole-frames`` frames, for each of ``--backends``; scratch files are removed however it ends."""
    import tempfile

    from engines import assets  # lazy: the sample is fetched only when the benchmark runs

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="facemonitor-bench-whole-") as scratch:
        work = Path(scratch)
        video = long_video(work, assets.sample_path(), args.whole_frames)
        report = whole_process_runs(video, backends, args.whole_repeats, args.store or work / "store")
    report["targets"] = TARGETS
    print()
    for line in format_report(report):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"figures written to {args.json}")
    return 0
