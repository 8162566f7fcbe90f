"""The Photos tab: one photo, or a facial-palsy photo set (monitor/protocol/poses.py), into a session
exactly as ``facemonitor analyze PHOTO`` / ``analyze --photo-set`` make it. Photos come as uploads
(named after their poses, or with a poses.json / poses.csv manifest) or as camera snapshots taken
pose by pose. The session is then in the Review tab like any other.

``analyze_photos`` and ``keep_snapshot`` are the handlers, callable without a browser.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd

from monitor.app.core import AppCore
from monitor.app.outputs import Outputs, listen
from monitor.capture.photo_set import find_photo_set
from monitor.capture.still import is_image
from monitor.errors import FacemonitorError, SessionIncomplete
from monitor.protocol.poses import POSE_NAMES, POSES, pose_from_name
from monitor.report.photos import POSE_HEADERS, format_photo_set, pose_rows
from monitor.report.text import format_result
from monitor.session.options import SessionOptions
from monitor.session.result import SessionResult
from monitor.session.run import run_photo_set, run_session

POSE_GUIDE = "\n".join(f"- **{p.name}**: {p.instruction}" for p in POSES)


@dataclass(frozen=True)
class PhotosTab:
    files: gr.File
    person: gr.Textbox
    analyze: gr.Button
    camera: gr.Image
    pose: gr.Dropdown
    keep: gr.Button
    snapshots: gr.State  # pose name → RGB image
    snapshots_text: gr.Markdown
    analyze_snapshots: gr.Button
    text: gr.Markdown
    table: gr.Dataframe
    session_id: gr.State


@dataclass(frozen=True)
class PhotosShown:
    """What the tab shows after an analysis: the result's text, the per-pose table and the session."""

    text: str
    table: pd.DataFrame
    session_id: str | None


@dataclass(frozen=True)
class SnapshotKept:
    snapshots: dict
    snapshots_text: str


def _options(core: AppCore, source: str, person: str | None) -> SessionOptions:
    cfg = core.config
    return SessionOptions(source=source, store_root=core.store_root, backend=cfg.backend,
                          engine_endpoint=cfg.engine_endpoint, iris_mm=cfg.iris_mm,
                          person=(person or "").strip() or None)


def _shown(result: SessionResult, error: str | None = None) -> PhotosShown:
    r = result.as_json()
    text = format_photo_set(r) if result.photo_set is not None else format_result(r)
    head = f"**{error}**\n\n" if error else ""
    rows = pose_rows(result.summary, result.photo_set) if result.photo_set is not None else []
    return PhotosShown(f"{head}```text\n{text}\n```", pd.DataFrame(rows, columns=POSE_HEADERS), result.session_id)


def _failed(message: str) -> PhotosShown:
    return PhotosShown(f"**{message}**", pd.DataFrame(columns=POSE_HEADERS), None)


def _write_snapshots(snapshots: dict, folder: Path) -> list[Path]:
    paths = []
    for name, rgb in snapshots.items():
        path = folder / f"{name}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR)):
            raise FacemonitorError(f"could not write the snapshot of {name}")
        paths.append(path)
    return paths


def analyze_photos(core: AppCore, files: list | None, snapshots: dict | None = None,
                   person: str | None = None) -> PhotosShown:
    """Uploaded files (paths) or snapshots (pose → RGB image) into one session: one image whose
    name is no pose is a one-photo session; anything else is a photo set."""
    paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in (files or [])]
    if not paths and not snapshots:
        return _failed("Upload a photo or a photo set, or keep camera snapshots first.")
    try:
        with tempfile.TemporaryDirectory(prefix="facemonitor-photos-") as tmp:
            if snapshots and not paths:
                paths = _write_snapshots(snapshots, Path(tmp))
            if len(paths) == 1 and is_image(paths[0]) and pose_from_name(paths[0].stem) is None:
                return _shown(run_session(_options(core, str(paths[0]), person)))
            photos = find_photo_set(paths)
            return _shown(run_photo_set(_options(core, photos.source, person), photos))
    except SessionIncomplete as e:
        return _shown(e.result, str(e)) if e.result is not None else _failed(str(e))
    except FacemonitorError as e:
        return _failed(str(e))


def keep_snapshot(snapshots: dict | None, pose: str, image) -> SnapshotKept:
    """Keep the camera's current picture as the photo of ``pose``."""
    snapshots = dict(snapshots or {})
    if image is not None and pose in POSE_NAMES:
        snapshots[pose] = np.asarray(image)
    have = [n for n in POSE_NAMES if n in snapshots]
    text = f"Snapshots: {', '.join(have)}" if have else "No snapshots yet."
    if image is None:
        text = "Take a picture with the camera first. " + text
    return SnapshotKept(snapshots, text)


def build(core: AppCore) -> PhotosTab:
    with gr.Tab("Photos", id="photos"):
        gr.Markdown("Analyse **one photo**, or a **facial-palsy photo set**: up to eight photos named after "
                    "their poses (`rest.jpg`, `02_smile.png`, …) or listed in a `poses.json` / `poses.csv` "
                    "manifest. The eFace figures are estimates from landmarks, not a clinician's grade.")
        with gr.Accordion("The eight poses", open=False):
            gr.Markdown(POSE_GUIDE)
        person = gr.Textbox(label="Person (optional)")
        files = gr.File(label="Photos", file_count="multiple", file_types=["image", ".json", ".csv"])
        analyze = gr.Button("Analyse the photos", variant="primary")
        with gr.Accordion("Or take the poses with the camera", open=False):
            camera = gr.Image(sources=["webcam"], type="numpy", label="Camera")
            pose = gr.Dropdown(list(POSE_NAMES), value=POSE_NAMES[0], label="Pose")
            keep = gr.Button("Keep as this pose")
            snapshots_text = gr.Markdown("No snapshots yet.")
            analyze_snapshots = gr.Button("Analyse the snapshots")
        snapshots = gr.State({})
        text = gr.Markdown("", elem_id="photos-text")
        table = gr.Dataframe(label="Per pose", interactive=False, elem_id="photos-table")
        session_id = gr.State(None)
    tab = PhotosTab(files, person, analyze, camera, pose, keep, snapshots, snapshots_text, analyze_snapshots, text,
                    table, session_id)
    shown = Outputs(PhotosShown, text=text, table=table, session_id=session_id)
    listen(analyze.click, lambda f, p: analyze_photos(core, f, None, p), [files, person], shown)
    listen(analyze_snapshots.click, lambda s, p: analyze_photos(core, None, s, p), [snapshots, person], shown)
    listen(keep.click, keep_snapshot, [snapshots, pose, camera],
           Outputs(SnapshotKept, snapshots=snapshots, snapshots_text=snapshots_text))
    return tab
