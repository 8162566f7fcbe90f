"""``facemonitor models``: export the landmark networks to ONNX and check them against MediaPipe, or show
where an export is and what its manifest says."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines import BackendUnavailable
from engines.assets import sample_path
from monitor.cli.common import positive_int
from monitor.errors import AssetError, UsageError


def add_parser(sub) -> None:
    mo = sub.add_parser("models", help="the landmark networks as ONNX files (the onnx and tensorrt backends)")
    mos = mo.add_subparsers(dest="models_command", required=True)
    mx = mos.add_parser("export-onnx", help="convert face_landmarker.task's networks to ONNX and check them")
    mx.add_argument("--force", action="store_true", help="export again even if a whole export exists")
    mx.add_argument("--out", type=Path, help="folder (default: beside the cached model, keyed by its hash)")
    mx.add_argument("--frames", type=positive_int, default=72,
                    help="sample frames of the check against MediaPipe (default 72)")
    mx.set_defaults(run=run_export)
    mi = mos.add_parser("info", help="where the exported models are, their hashes and checks")
    mi.add_argument("--dir", type=Path, help="export folder (default: beside the cached model)")
    mi.set_defaults(run=run_info)


def sample_clip(frames: int):
    """The first ``frames`` frames of the sample video (RGB) and its frame rate."""
    from monitor.capture.sources import read_rgb_frames  # lazy: cv2

    out, fps = read_rgb_frames(sample_path(), frames)
    if not out:
        raise AssetError("the sample video gave no frames")
    return out, fps


def check_against_mediapipe(folder: Path, frames: int) -> dict:
    """Parity of the ONNX pipeline with the MediaPipe backend on the sample video, in each tracking mode."""
    from monitor.lab.parity import MEDIAPIPE_FOR_TRACKING, compare_backends  # lazy: numba, cv2 and the backends

    clip, fps = sample_clip(frames)
    out = {}
    for tracking in MEDIAPIPE_FOR_TRACKING:
        report = compare_backends(clip, fps, "onnx", tracking=tracking, models_dir=folder)
        out[tracking] = dict(report.as_dict(), passes=report.passes())
    return dict(out, video="single_face.mp4", passes=all(r["passes"] for r in out.values()))


def run_info(args: argparse.Namespace) -> int:
    from engines.facemesh.models import load_model_set  # lazy: cv2 (the export's detector and crops)

    try:
        models = load_model_set(args.dir)
    except BackendUnavailable as e:  # a missing or altered export
        raise UsageError(str(e)) from None
    print(json.dumps({"folder": str(models.folder), **models.manifest}, indent=2))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from engines.facemesh.models import MANIFEST, export_onnx  # lazy: cv2 (the export's detector and crops)
    from monitor.lab.parity import MEDIAPIPE_FOR_TRACKING  # lazy: numba, cv2 and the backends

    try:
        models = export_onnx(folder=args.out, force=args.force)
    except BackendUnavailable as e:  # export tools that cannot run
        raise UsageError(str(e)) from None
    print(f"exported to {models.folder}")
    check = check_against_mediapipe(models.folder, args.frames)
    manifest = dict(models.manifest, mediapipe_check=check)
    (models.folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for tracking in MEDIAPIPE_FOR_TRACKING:
        r = check[tracking]
        print(f"{tracking} tracking against MediaPipe on {r['frames']} sample frames: landmarks "
              f"{r['landmark_pct_iod_mean']:.3f}% of the intercanthal distance (mean), blendshapes ≤ "
              f"{r['blendshape_max_diff']:.3f}, series p95 {r['series_p95_diff_mm']:.3f} mm")
    if not check["passes"]:
        print("warning: the export does not meet the parity targets (docs/performance.md); see the manifest")
        return 1
    return 0
