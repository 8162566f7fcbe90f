"""The face-landmark pipeline around the three networks, for any inference backend.

Per frame and stream: the face region comes from the previous frame's landmarks (tracking) or, when
there is none or tracking is lost, from the detector; the region is cropped upright into the
landmark network, its 478 points projected back to the image, the blendshape network fed the 146
points it takes, and the transformation matrix fitted (``geometry``). Frames of several streams go
through the landmark network as one batch.

``Inference`` is the only part that differs between ONNX Runtime (CPU/CUDA) and TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engines.base import LandmarkResult
from engines.facemesh import detector, roi
from engines.facemesh.blendshapes import blendshape_input
from engines.facemesh.geometry import FaceGeometry
from engines.facemesh.smoothing import OneEuroSmoother

LANDMARK_SIZE = 256


class Inference(Protocol):
    """Raw network calls. Inputs are float32 NHWC; batch sizes are the caller's."""

    name: str

    def detect(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 128, 128, 3) in [-1, 1] → regressors (896, 16), score logits (896,)."""

    def landmarks(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 256, 256, 3) in [0, 1] → points (B, 478, 3) in crop pixels, presence logits (B,)."""

    def blendshapes(self, x: np.ndarray) -> np.ndarray:
        """(1, 146, 2) pixel coordinates → (52,) scores."""


@dataclass
class Track:
    """One stream's tracking state."""

    rect: roi.RotatedRect | None = None  # where to look on the next frame
    smoother: OneEuroSmoother = field(default_factory=OneEuroSmoother)
    faces: int = 0  # faces the detector found when it last ran
    since_detect: int = 0
    detections: int = 0  # how often the detector ran (for the benchmark and tests)
    frames: int = 0


@dataclass(frozen=True)
class PipelineOptions:
    min_detection: float = 0.5
    min_presence: float = 0.5
    # Each mode reproduces one configuration of MediaPipe's face landmarker in video mode:
    # "detector" (default) is MediaPipe looking for more than one face, as the mediapipe backend does:
    # the detector places the region on every frame (the previous frame's landmarks place it when the
    # detector finds nothing there) and landmarks are not smoothed.
    # "landmarks" is MediaPipe tracking one face: the region follows the previous frame's landmarks,
    # the detector runs only when tracking is lost, and the landmarks are smoothed over time
    # (``smoothing``). The detector also runs every ``recount_every`` frames, only to count faces.
    tracking: str = "detector"
    recount_every: int = 30

    def __post_init__(self) -> None:
        if self.tracking not in ("landmarks", "detector"):
            raise ValueError(f"tracking must be 'landmarks' or 'detector', got {self.tracking!r}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -80, 80)))


@dataclass
class FaceMeshPipeline:
    inference: Inference
    geometry: FaceGeometry
    options: PipelineOptions = field(default_factory=PipelineOptions)

    def _detect(self, track: Track, rgb: np.ndarray) -> roi.RotatedRect | None:
        x, pad = detector.letterbox(rgb)
        regressors, scores = self.inference.detect(x[None])
        found = detector.decode(regressors, scores, pad, self.options.min_detection)
        track.faces, track.since_detect = len(found), 0
        track.detections += 1
        if not found:
            return None
        best = max(found, key=lambda d: d.area)
        h, w = rgb.shape[:2]
        return roi.rect_from_detection(best.box, best.keypoints, w, h, (detector.RIGHT_EYE, detector.LEFT_EYE))

    def _landmarks(self, frames: list[np.ndarray], rects: list[roi.RotatedRect]) -> tuple[list, np.ndarray]:
        crops = np.stack([roi.crop(f, r, LANDMARK_SIZE) for f, r in zip(frames, rects)]).astype(np.float32)
        crops *= 1.0 / 255.0
        points, presence = self.inference.landmarks(crops)
        projected = [roi.project(p, r, LANDMARK_SIZE, (f.shape[1], f.shape[0])) for p, r, f in zip(points, rects, frames)]
        return projected, _sigmoid(presence)

    def process(self, tracks: list[Track], frames: list[np.ndarray], timestamps_ms: list[int]) -> list[LandmarkResult]:
        """One frame for each of several streams (each stream at most once per call)."""
        if len({id(t) for t in tracks}) != len(tracks):
            raise ValueError("a stream can have only one frame in a batch")
        opts = self.options
        rects: list[roi.RotatedRect | None] = []
        for track, rgb in zip(tracks, frames):
            track.frames += 1
            track.since_detect += 1
            if track.rect is None:
                track.rect = self._detect(track, rgb)
            elif opts.tracking == "detector":
                found = self._detect(track, rgb)
                if found is not None and found.iou(track.rect) > 0.5:  # the same face: its detection frames it
                    track.rect = found
            elif opts.recount_every and track.since_detect >= opts.recount_every:
                self._detect(track, rgb)  # counts faces; the tracked region stays
            rects.append(track.rect)
        points: list[np.ndarray | None] = [None] * len(tracks)
        todo = [i for i, r in enumerate(rects) if r is not None]
        for attempt in range(2):  # a lost track gets the detector at once, on the same frame
            if not todo:
                break
            got, presence = self._landmarks([frames[i] for i in todo], [rects[i] for i in todo])
            retry = []
            for i, pts, p in zip(todo, got, presence):
                if p >= opts.min_presence:
                    points[i] = pts
                    continue
                tracks[i].rect = None
                tracks[i].smoother.reset()
                if attempt == 0 and tracks[i].since_detect > 0:  # the region came from tracking
                    rect = self._detect(tracks[i], frames[i])
                    if rect is not None:
                        rects[i] = tracks[i].rect = rect
                        retry.append(i)
            todo = retry
        return [self._finish(track, rgb, pts, t) for track, rgb, pts, t in zip(tracks, frames, points, timestamps_ms)]

    def _finish(self, track: Track, rgb: np.ndarray, pts: np.ndarray | None, timestamp_ms: int) -> LandmarkResult:
        """The next frame's region, then smoothing, blendshapes and the matrix for one stream's face."""
        if pts is None:
            track.rect = None
            track.smoother.reset()
            return LandmarkResult.no_face()
        track.rect = roi.rect_from_landmarks(pts)  # from the landmarks as the network gave them
        if self.options.tracking == "landmarks":
            pts = track.smoother.apply(pts, int(timestamp_ms) * 1000)
        h, w = rgb.shape[:2]
        blend = np.asarray(self.inference.blendshapes(blendshape_input(pts)), np.float32).reshape(52)
        matrix = self.geometry.matrix(pts / np.array([w, h, w], np.float32), w, h)
        return LandmarkResult(max(1, track.faces), pts.astype(np.float32), blend, matrix)
