"""``facemonitor bench``: throughput, per-stage latency and live latency on the sample video.

Every speed figure is a ratio or a distribution taken side by side in one run, because the machine
is shared and noisy; nothing here is a pass/fail timing test.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from calibration.scale import IrisScale
from engines import assets, create_runner
from engines.clip import OrtClipRunner
from monitor.capture.sources import read_rgb_frames
from monitor.engine.local import LocalEngine
from monitor.engine.options import CnnOptions
from monitor.measures.fatigue import FatigueTracker
from monitor.measures.frame import compute_measures
from monitor.measures.kernels import reference
from monitor.session.options import SessionOptions
from monitor.session.run import run_session
from monitor.transport import wire
from monitor.transport.client import EngineClient

TARGETS = {
    "pipeline_over_mediapipe": 0.8,  # whole pipeline fps ≥ 0.8 × MediaPipe alone
    "live_latency_p95_ms": 50.0,
    "live_dropped": 0,
    "kernels_ms_per_frame": 0.5,
    "first_result_s": 10.0,
}


def mediapipe_alone_fps(frames: list[np.ndarray], repeat: int, fps: float = 30.0) -> float:
    """Face Landmarker alone on already decoded RGB frames (VIDEO mode), in frames per second."""

    with create_runner("mediapipe") as runner:
        runner.infer(frames[0], 0)  # warm-up, not timed
        t = 1
        t0 = time.perf_counter()
        n = 0
        for _ in range(repeat):
            for f in frames:
                runner.infer(f, int(t * 1000 / fps))
                t += 1
                n += 1
        return n / (time.perf_counter() - t0)


def kernel_times_ms(frame_rgb: np.ndarray, frames: int = 1000) -> dict:
    """Warm per-frame time of every per-frame kernel (landmark measures, pose, scale and face size,
    eyelid and iris refinement, mouth-corner refinement, live fatigue update) on a real frame, with
    the numpy references' time beside it."""

    with create_runner("mediapipe") as runner:
        result = runner.infer(frame_rgb, 0)
    if not result.face:
        raise RuntimeError("the benchmark frame has no face")
    scale = IrisScale()
    trackers = [FatigueTracker(), FatigueTracker()]

    def one(i: int) -> None:
        m = compute_measures(result, scale, frame_rgb)
        for tr, side in zip(trackers, ("left", "right")):
            tr.update(i / 30.0, m[f"mrd1_{side}_mm"], m[f"eye_closed_{side}"])

    one(0)  # compile/load
    t0 = time.perf_counter()
    for i in range(frames):
        one(i + 1)
    numba_ms = (time.perf_counter() - t0) * 1e3 / frames
    pts, m = result.landmarks_px, result.matrix
    ref_trackers = [reference.FatigueReference(), reference.FatigueReference()]
    t0 = time.perf_counter()
    n_ref = max(1, frames // 20)
    for i in range(n_ref):
        reference.frame_measures(pts, m)
        reference.head_angles(m)
        reference.eyelids(frame_rgb, pts, m)
        reference.mouth_corners(frame_rgb, pts, m)
        reference.face_size(pts)
        for tr in ref_trackers:
            tr.update(i / 30.0, 3.0)
    numpy_ms = (time.perf_counter() - t0) * 1e3 / n_ref
    return {"numba_ms": round(numba_ms, 4), "numpy_reference_ms": round(numpy_ms, 4),
            "speedup": round(numpy_ms / numba_ms, 1)}


def run_bench(args) -> int:
    """The pipeline benchmark; its scratch store (without --store) is removed however it ends."""
    with tempfile.TemporaryDirectory(prefix="facemonitor-bench-") as scratch:
        return _run_bench(args, args.store or Path(scratch))


def _run_bench(args, store: Path) -> int:
    sample = assets.sample_path()
    print(f"sample: {sample.name}; store: {store}")
    frames, _ = read_rgb_frames(sample)

    print("1/4 MediaPipe Face Landmarker alone on decoded frames …", flush=True)
    mp_fps = mediapipe_alone_fps(frames, args.repeat)

    print("2/4 whole pipeline (capture → ZeroMQ → engine → kernels → store), record mode …", flush=True)
    t0 = time.monotonic()
    rec = run_session(SessionOptions(str(sample), store_root=store, repeat=args.repeat))
    whole_s = time.monotonic() - t0

    print("3/4 kernels, warm …", flush=True)
    kernels = kernel_times_ms(frames[0])

    print(f"4/4 live mode at the video's 30 fps for {args.live_seconds:.0f} s …", flush=True)
    repeat_live = max(1, math.ceil(args.live_seconds / (len(frames) / 30.0)) + 1)
    live = run_session(SessionOptions(str(sample), store_root=store, mode="live", realtime=True,
                                      repeat=repeat_live, max_seconds=args.live_seconds))

    stages = rec.stages.report()
    live_lat = live.stages.report()["latency"]
    figures = {
        "mediapipe_alone_fps": round(mp_fps, 1),
        "pipeline_fps": round(rec.processing_fps, 1),
        "pipeline_over_mediapipe": round(rec.processing_fps / mp_fps, 3),
        "pipeline_frames": rec.frames,
        "pipeline_wall_s": round(whole_s, 2),
        "first_result_s": round(rec.first_result_s or float("nan"), 2),
        "stages_ms": {k: v for k, v in stages.items() if k != "latency"},
        "record_latency_ms": stages["latency"],
        "kernels": kernels,
        "live_seconds": args.live_seconds,
        "live_frames": live.frames,
        "live_latency_ms": live_lat,
        "live_dropped": live.dropped_frames,
        "live_fps": round(live.processing_fps, 1),
    }
    checks = {
        "pipeline_over_mediapipe": figures["pipeline_over_mediapipe"] >= TARGETS["pipeline_over_mediapipe"],
        "live_latency_p95_ms": (live_lat["p95_ms"] or 1e9) <= TARGETS["live_latency_p95_ms"],
        "live_dropped": live.dropped_frames <= TARGETS["live_dropped"],
        "kernels_ms_per_frame": kernels["numba_ms"] <= TARGETS["kernels_ms_per_frame"],
        "first_result_s": (rec.first_result_s or 1e9) <= TARGETS["first_result_s"],
    }
    figures["targets_met"] = checks
    print()
    print(f"MediaPipe alone           {mp_fps:7.1f} fps")
    print(f"whole pipeline            {rec.processing_fps:7.1f} fps   ratio {figures['pipeline_over_mediapipe']:.2f}"
          f"  (target ≥ {TARGETS['pipeline_over_mediapipe']})")
    print(f"first result after start {figures['first_result_s']:7.2f} s     (target ≤ {TARGETS['first_result_s']:.0f} s)")
    print("per-stage latency (record mode)      p50 ms    p95 ms")
    for name, v in figures["stages_ms"].items():
        print(f"  {name:<33} {v['p50_ms']:>8.3f}  {v['p95_ms']:>8.3f}")
    print(f"kernels per frame, warm   {kernels['numba_ms']:.4f} ms (numpy reference {kernels['numpy_reference_ms']:.4f} ms,"
          f" ×{kernels['speedup']})  (target ≤ {TARGETS['kernels_ms_per_frame']} ms)")
    print(f"live capture→result       p50 {live_lat['p50_ms']:.1f} ms  p95 {live_lat['p95_ms']:.1f} ms over "
          f"{live.frames} frames, {live.dropped_frames} dropped  (target p95 ≤ {TARGETS['live_latency_p95_ms']:.0f} ms, 0 dropped)")
    print("targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    return 0


APP_TARGETS = {"preview_fps": 15.0, "analysed_over_input": 0.95}


def _count_mjpeg_frames(url: str, seconds: float) -> int:
    """Frames a viewer receives from the app's MJPEG preview in ``seconds``."""
    import urllib.request

    n = 0
    t_end = time.monotonic() + seconds
    with urllib.request.urlopen(url, timeout=10) as r:
        while time.monotonic() < t_end:
            line = r.readline()
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":")[1])
                r.readline()
                r.read(length)
                n += 1
    return n


def run_app_bench(args) -> int:
    """The app benchmark; its scratch store (without --store) is removed however it ends."""
    with tempfile.TemporaryDirectory(prefix="facemonitor-bench-app-") as scratch:
        return _run_app_bench(args, args.store or Path(scratch))


def _run_app_bench(args, store: Path) -> int:
    """The app's live view while a check runs on the sample video at its own 30 fps: frames the
    preview delivers to a viewer per second, against frames analysed per second and the input rate."""
    import socket

    from monitor.app.core import AppConfig  # lazy: gradio and the app load only for bench --app
    from monitor.app.launch import start_app  # lazy: gradio and the app load only for bench --app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    core, server = start_app(AppConfig(store_root=store, source=str(assets.sample_path()), protocol="mg24"),
                             "127.0.0.1", port)
    try:
        check = core.start_check(protocol="mg24", person=None, keep_video=False)
        while check.snapshot().frames < 30:  # engine started and frames flowing
            if not check.running:
                raise RuntimeError(f"the check stopped: {check.error}")
            time.sleep(0.2)
        f0, t0 = check.snapshot().frames, time.monotonic()
        shown = _count_mjpeg_frames(f"http://127.0.0.1:{port}/live/preview.mjpg", args.app_seconds)
        span = time.monotonic() - t0
        analysed = check.snapshot().frames - f0
        encode_p95 = float(np.percentile(core.preview.encode_ms, 95)) if core.preview.encode_ms else float("nan")
        check.control("abort")
        check.join(30)
        dropped = check.result.dropped_frames if check.result else None
    finally:
        core.close()
        server.stop()
    input_fps = 30.0
    figures = {"seconds": round(span, 1), "input_fps": input_fps, "analysed_fps": round(analysed / span, 1),
               "preview_fps": round(shown / span, 1), "analysed_over_input": round(analysed / span / input_fps, 3),
               "preview_over_analysed": round(shown / max(analysed, 1), 3), "preview_encode_p95_ms": round(encode_p95, 2),
               "live_dropped_frames": dropped}
    figures["targets_met"] = {"preview_fps": figures["preview_fps"] >= APP_TARGETS["preview_fps"],
                              "analysed_over_input": figures["analysed_over_input"] >= APP_TARGETS["analysed_over_input"]}
    print(f"app live view over {figures['seconds']} s, sample video at {input_fps:.0f} fps:")
    print(f"  preview frames delivered  {figures['preview_fps']:6.1f} fps  (target ≥ {APP_TARGETS['preview_fps']:.0f})")
    print(f"  frames analysed           {figures['analysed_fps']:6.1f} fps  = {figures['analysed_over_input']:.3f} × input"
          f"  (target ≥ {APP_TARGETS['analysed_over_input']})")
    print(f"  preview / analysed        {figures['preview_over_analysed']:.3f};  encode p95 {figures['preview_encode_p95_ms']} ms;"
          f"  live-mode drops {dropped}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    return 0


def clip_inference_ms(model: Path, threads: int, n: int) -> dict:
    """ONNX Runtime on the CPU: one 64-frame clip at a time, warm, ``n`` clips."""

    with OrtClipRunner(model, "cpu", threads) as runner:
        info = runner.info
        clip = np.random.default_rng(0).integers(0, 256, (1, info.frames, info.size, info.size, 3), dtype=np.uint8)
        runner.infer(clip)
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            runner.infer(clip)
            ms.append((time.perf_counter() - t0) * 1e3)
    return {"threads": threads, "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "clips_per_s": round(1e3 / float(np.median(ms)), 2)}


CNN_TARGETS = {"landmark_fps_ratio": 0.95, "landmark_dropped_with_cnn": 0}


def cnn_starvation(without: dict, with_cnn: dict) -> dict:
    """Whether the live CNN starves the landmark path: landmark fps with ÷ without it and the landmark
    frames dropped at 30 fps with it, from two live runs of the same benchmark, against CNN_TARGETS."""
    ratio = round(with_cnn["fps"] / without["fps"], 3) if without["fps"] else None
    dropped = with_cnn["dropped"]
    return {"landmark_fps_without": without["fps"], "landmark_fps_with": with_cnn["fps"], "landmark_fps_ratio": ratio,
            "landmark_dropped_without": without["dropped"], "landmark_dropped_with_cnn": dropped,
            "targets_met": {"landmark_fps_ratio": ratio is not None and ratio >= CNN_TARGETS["landmark_fps_ratio"],
                            "landmark_dropped_with_cnn": dropped <= CNN_TARGETS["landmark_dropped_with_cnn"]}}


def run_cnn_bench(args) -> int:
    """The 3D-CNN benchmark; its scratch folder (model, and store without --store) is removed however it ends."""
    with tempfile.TemporaryDirectory(prefix="facemonitor-cnn-bench-") as scratch:
        return _run_cnn_bench(args, Path(scratch))


def _run_cnn_bench(args, work: Path) -> int:
    """The 3D-CNN's cost: clip inference alone, and the live rate it sustains beside the landmarks
    (same run: live sessions at the sample's 30 fps without and with the CNN)."""
    from monitor.lab.cnn.checkpoint import export_onnx  # lazy: torch loads only for bench --cnn

    sample = assets.sample_path()
    store = args.store or work / "store"
    model = work / f"{args.cnn_arch}-{args.cnn_frames}x{args.cnn_size}.onnx"
    print(f"exporting {args.cnn_arch} ({args.cnn_frames}×{args.cnn_size}, untrained weights: timing only) …", flush=True)
    export_onnx(model, args.cnn_arch, args.cnn_frames, args.cnn_size)
    print("1/3 clip inference alone, ONNX Runtime CPU …", flush=True)
    alone = {t: clip_inference_ms(model, t, args.cnn_clips) for t in (1, 2)}
    seconds = args.live_seconds
    repeat = max(1, math.ceil(seconds / (72 / 30.0)) + 1)
    runs = {}
    for i, (name, cnn) in enumerate((("without", None),
                                     ("with", CnnOptions(str(model), args.cnn_stride, "live", threads=1,
                                                         benchmark=True))), start=2):
        print(f"{i}/3 live mode at 30 fps for {seconds:.0f} s, {name} the CNN …", flush=True)
        r = run_session(SessionOptions(str(sample), store_root=store, mode="live", realtime=True, repeat=repeat,
                                       max_seconds=seconds, cnn=cnn))
        runs[name] = {"frames": r.frames, "fps": round(r.processing_fps, 2), "dropped": r.dropped_frames,
                      "latency_ms": r.stages.report()["latency"],
                      "cnn": (r.summary.cnn or {}).get("stats")}
    w, c = runs["without"], runs["with"]
    figures = {"model": {"arch": args.cnn_arch, "frames": args.cnn_frames, "size": args.cnn_size},
               "clip_inference_cpu": alone, "live": runs, "stride": args.cnn_stride,
               "landmark_fps_ratio": round(c["fps"] / w["fps"], 3) if w["fps"] else None,
               "latency_p95_ratio": round(c["latency_ms"]["p95_ms"] / w["latency_ms"]["p95_ms"], 2)
               if w["latency_ms"]["p95_ms"] else None, "starvation": cnn_starvation(w, c)}
    print()
    for t, a in alone.items():
        print(f"clip inference, {t} thread{'s' if t > 1 else ''}: p50 {a['p50_ms']} ms, p95 {a['p95_ms']} ms "
              f"({a['clips_per_s']} clips/s)")
    s = c["cnn"] or {}
    print(f"live beside the landmarks (own process, 1 thread, SCHED_IDLE, a clip due every {args.cnn_stride} frames): "
          f"{s.get('clips_per_s')} clips/s run, {s.get('skipped')} skipped for a newer clip")
    print(f"landmark path: {w['fps']} fps without, {c['fps']} fps with the CNN (ratio {figures['landmark_fps_ratio']}); "
          f"dropped {w['dropped']} / {c['dropped']}; latency p95 {w['latency_ms']['p95_ms']} / "
          f"{c['latency_ms']['p95_ms']} ms")
    met = figures["starvation"]["targets_met"]
    print(f"targets: landmark fps with ÷ without ≥ {CNN_TARGETS['landmark_fps_ratio']} "
          f"{'yes' if met['landmark_fps_ratio'] else 'NO'}; 0 landmark frames dropped at 30 fps with the CNN "
          f"{'yes' if met['landmark_dropped_with_cnn'] else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    return 0


def _stream_worker(endpoint: str, frames: list, seconds: float, out: dict) -> None:
    """One stream sending frames as fast as its credit window allows, for ``seconds``."""
    import uuid

    client = EngineClient(endpoint, window=2)
    stream = uuid.uuid4()
    sent: dict[int, int] = {}
    lat, batches = [], []
    i = 0
    t_end = time.monotonic() + seconds
    try:
        while time.monotonic() < t_end or client.in_flight:
            while client.has_credit and time.monotonic() < t_end:
                sent[i] = time.monotonic_ns()
                client.send_frame(stream, i, sent[i], int(i * 33_333), frames[i % len(frames)])
                i += 1
            reply = client.recv(30_000)
            if reply is None:
                raise RuntimeError("the engine stopped answering during the benchmark")
            if reply.meta.get("kind") == wire.ReplyKind.RESULT:
                lat.append((time.monotonic_ns() - sent.pop(reply.meta["frame"])) / 1e6)
                batches.append(reply.meta["timing"].get("batch", 1))
        client.send_control(wire.Kind.END, stream)
        client.recv(30_000)
    finally:
        client.close()
    out.update(frames=len(lat), fps=len(lat) / seconds, latency_ms=lat, batches=batches)


def streams_run(backend: str, frames: list, n_streams: int, seconds: float) -> dict:
    """N streams against one engine of ``backend``: per-stream fps and latency, mean batch size."""
    import threading

    with LocalEngine(backend) as engine:
        probe = EngineClient(engine.endpoint)
        try:
            engine.wait_ready(probe, 120)
        finally:
            probe.close()
        _stream_worker(engine.endpoint, frames[:8], 1.0, {})  # warm-up, not counted
        outs = [{} for _ in range(n_streams)]
        threads = [threading.Thread(target=_stream_worker, args=(engine.endpoint, frames, seconds, o))
                   for o in outs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lat = [x for o in outs for x in o["latency_ms"]]
    per = [o["fps"] for o in outs]
    return {"backend": backend, "streams": n_streams, "seconds": seconds,
            "total_fps": round(sum(per), 2), "per_stream_fps_mean": round(float(np.mean(per)), 2),
            "per_stream_fps_min": round(float(np.min(per)), 2),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 2),
            "mean_batch": round(float(np.mean([b for o in outs for b in o["batches"]])), 2)}


def run_streams_bench(args) -> int:
    """``facemonitor bench --streams N``: each backend in turn serves 1 and N streams in this run;
    the ratios against the first backend (MediaPipe) are the figures."""
    frames, _ = read_rgb_frames(assets.sample_path())
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    counts = sorted({1, args.streams})
    runs = [streams_run(b, frames, n, args.stream_seconds) for n in counts for b in backends]
    for r in runs:
        print(f"{r['backend']:>10} × {r['streams']} streams: {r['total_fps']:7.1f} fps in all, "
              f"{r['per_stream_fps_mean']:6.1f} per stream (min {r['per_stream_fps_min']:.1f}), latency p50 "
              f"{r['latency_p50_ms']:.1f} ms, p95 {r['latency_p95_ms']:.1f} ms, mean batch {r['mean_batch']:.2f}")
    ratios = {}
    for n in counts:
        base = next(r for r in runs if r["streams"] == n and r["backend"] == backends[0])
        for r in runs:
            if r["streams"] == n and r is not base:
                ratios[f"{r['backend']}_over_{base['backend']}_{n}_streams"] = round(r["total_fps"] / base["total_fps"], 3)
    for k, v in ratios.items():
        print(f"{k}: {v}")
    report = {"runs": runs, "ratios": ratios, "target_onnx_over_mediapipe": 0.75}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def cohort_folder(work: Path, copies: int) -> Path:
    """A folder of ``copies`` copies of the sample video, one subject each (a small cohort)."""
    folder = work / "cohort"
    folder.mkdir(parents=True, exist_ok=True)
    data = assets.sample_path().read_bytes()
    for i in range(copies):
        (folder / f"s{i:02d}_sample.mp4").write_bytes(data)
    return folder


def run_cohort_bench(args) -> int:
    """``facemonitor bench --cohort``: one cohort folder analysed whole-process with 1 and 2 local
    workers and with ``--ray local`` (2 workers), each into a fresh store; frames per second
    including start-up, as ratios against one worker, measured in this run."""
    from monitor.lab.cohort.run import CohortOptions, run_cohort  # lazy: lab.cohort imports the session stack

    work = Path(tempfile.mkdtemp(prefix="facemonitor-cohort-bench-"))
    try:
        folder = cohort_folder(work, args.cohort_recordings)
        runs = [("pool-1", {"workers": 1}), ("pool-2", {"workers": 2})]
        if importlib.util.find_spec("ray") is not None:
            runs.append(("ray-local-2", {"workers": 2, "ray": "local"}))
        figures = {}
        for name, kw in runs:
            print(f"{name}: {args.cohort_recordings} recordings …", flush=True)
            report = run_cohort(CohortOptions(folder, store_root=work / name, progress=False, **kw), log=lambda m: None)
            figures[name] = {"frames": report.frames, "seconds": report.seconds,
                             "frames_per_s": round(report.frames_per_s, 2), "failed": len(report.failed)}
        base = figures["pool-1"]["frames_per_s"]
        ratios = {f"{k}_over_pool-1": round(v["frames_per_s"] / base, 3) for k, v in figures.items() if base}
        if "ray-local-2" in figures and figures["pool-2"]["frames_per_s"]:
            ratios["ray-local-2_over_pool-2"] = round(figures["ray-local-2"]["frames_per_s"]
                                                      / figures["pool-2"]["frames_per_s"], 3)
        for k, v in figures.items():
            print(f"{k:<12} {v['frames']} frames in {v['seconds']:.1f} s = {v['frames_per_s']:.1f} frames/s "
                  f"({v['failed']} failed)")
        for k, v in ratios.items():
            print(f"{k}: {v}")
        if args.json:
            args.json.write_text(json.dumps({"runs": figures, "ratios": ratios,
                                             "recordings": args.cohort_recordings}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
