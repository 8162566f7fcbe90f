"""``facemonitor models``: export the landmark networks to ONNX and check them against MediaPipe."""

from __future__ import annotations

import json

from monitor.errors import AssetError, UsageError


def sample_clip(frames: int):
    """The first ``frames`` frames of the sample video (RGB) and its frame rate."""
    from engines.assets import sample_path
    from monitor.capture.sources import read_rgb_frames

    out, fps = read_rgb_frames(sample_path(), frames)
    if not out:
        raise AssetError("the sample video gave no frames")
    return out, fps


def check_against_mediapipe(folder, frames: int) -> dict:
    """Parity of the ONNX pipeline with the MediaPipe backend on the sample video, in each tracking mode."""
    from monitor.lab.parity import MEDIAPIPE_FOR_TRACKING, compare_backends

    clip, fps = sample_clip(frames)
    out = {}
    for tracking in MEDIAPIPE_FOR_TRACKING:
        report = compare_backends(clip, fps, "onnx", tracking=tracking, models_dir=folder)
        out[tracking] = dict(report.as_dict(), passes=report.passes())
    return dict(out, video="single_face.mp4", passes=all(r["passes"] for r in out.values()))


def run_models(args) -> int:
    from engines import BackendUnavailable
    from engines.facemesh.models import MANIFEST, export_onnx, load_model_set

    try:
        if args.models_command == "info":
            models = load_model_set(args.dir)
            print(json.dumps({"folder": str(models.folder), **models.manifest}, indent=2))
            return 0
        models = export_onnx(folder=args.out, force=args.force)
    except BackendUnavailable as e:  # a missing or altered export, or export tools that cannot run
        raise UsageError(str(e)) from None
    print(f"exported to {models.folder}")
    check = check_against_mediapipe(models.folder, args.frames)
    manifest = dict(models.manifest, mediapipe_check=check)
    (models.folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    from monitor.lab.parity import MEDIAPIPE_FOR_TRACKING  # loaded by the check already

    for tracking in MEDIAPIPE_FOR_TRACKING:
        r = check[tracking]
        print(f"{tracking} tracking against MediaPipe on {r['frames']} sample frames: landmarks "
              f"{r['landmark_pct_iod_mean']:.3f}% of the intercanthal distance (mean), blendshapes ≤ "
              f"{r['blendshape_max_diff']:.3f}, series p95 {r['series_p95_diff_mm']:.3f} mm")
    if not check["passes"]:
        print("warning: the export does not meet the parity targets (docs/performance.md); see the manifest")
        return 1
    return 0
