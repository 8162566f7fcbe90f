"""MediaPipe Tasks Face Landmarker backend (CPU, XNNPACK)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.assets import model_path
from engines.base import BLENDSHAPE_NAMES, LandmarkResult, LandmarkRunner
from engines.native import native_stderr_silenced


class MediaPipeLandmarker(LandmarkRunner):
    """Face Landmarker in VIDEO mode: 478 landmarks, 52 blendshapes and the facial transformation
    matrix for up to ``max_faces`` faces, of which the largest is reported."""

    name = "mediapipe"

    def __init__(self, model_path: str | Path | None = None, max_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        super().__init__()
        self.model_path = model_path
        self.max_faces = max_faces
        self.min_detection_confidence = min_detection_confidence
        self.min_presence_confidence = min_presence_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self._landmarker = None
        self._warm = False

    def _activate(self) -> None:
        path = Path(self.model_path) if self.model_path else model_path()
        with native_stderr_silenced():
            self._create(path)
        self._warm = False

    def _create(self, path: Path) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=self.max_faces,
            min_face_detection_confidence=self.min_detection_confidence,
            min_face_presence_confidence=self.min_presence_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def _deactivate(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def _infer(self, rgb: np.ndarray, timestamp_ms: int) -> LandmarkResult:
        import mediapipe as mp

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._warm:
            result = self._landmarker.detect_for_video(image, int(timestamp_ms))
        else:  # the first inference logs from C++ too

            with native_stderr_silenced():
                result = self._landmarker.detect_for_video(image, int(timestamp_ms))
            self._warm = True
            names = tuple(c.category_name for c in result.face_blendshapes[0]) if result.face_blendshapes else None
            if names is not None and names != BLENDSHAPE_NAMES:
                raise RuntimeError("the model's blendshape names differ from engines.base.BLENDSHAPE_NAMES")
        faces = len(result.face_landmarks)
        if faces == 0:
            return LandmarkResult.no_face()
        norm = [np.array([(p.x, p.y, p.z) for p in face], np.float32) for face in result.face_landmarks]
        # the largest face by the area of its landmarks' bounding box
        areas = [np.ptp(n[:, 0]) * np.ptp(n[:, 1]) for n in norm]
        k = int(np.argmax(areas))
        pts = norm[k] * np.array([w, h, w], np.float32)
        blend = np.array([c.score for c in result.face_blendshapes[k]], np.float32)
        matrix = np.asarray(result.facial_transformation_matrixes[k], np.float32).reshape(4, 4)
        return LandmarkResult(faces, pts, blend, matrix)
