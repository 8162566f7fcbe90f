"""The facial transformation matrix from landmarks: MediaPipe's face-geometry method, re-implemented.

The canonical face (468 vertices, metric units) and the weights of the 33 landmarks that anchor the
fit are read from ``geometry_pipeline_metadata_landmarks.binarypb`` inside face_landmarker.task. The
landmarks are taken into a perspective camera's space (vertical field of view 63°, near plane 1),
their depth scale estimated in two passes, and the canonical face fitted to them by a weighted
similarity (Procrustes) solve; the matrix maps canonical → camera, OpenGL axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.facemesh.protowire import ProtoError, fields

VERTICAL_FOV_DEG = 63.0
NEAR = 1.0
MESH_LANDMARKS = 468
_VERTEX_FLOATS = 5  # x, y, z, u, v


@dataclass(frozen=True)
class CanonicalFace:
    vertices: np.ndarray  # (3, 468) float64, metric
    weights: np.ndarray  # (468,) float64, zero outside the Procrustes basis

    @classmethod
    def from_bytes(cls, data: bytes) -> "CanonicalFace":
        vertices: list[float] = []
        basis: list[tuple[int, float]] = []
        for number, wtype, value in fields(data):
            if number == 1 and wtype == 2:  # canonical_mesh
                for n, w, v in fields(value):
                    if n == 3:  # vertex_buffer, packed or not
                        vertices.extend(np.frombuffer(v, "<f4").tolist() if w in (2, 5) else ())
            elif number == 2 and wtype == 2:  # procrustes_landmark_basis
                ref = {n: v for n, _, v in fields(value)}
                if 1 not in ref or 2 not in ref:
                    raise ProtoError("a Procrustes basis entry lacks its landmark id or weight")
                basis.append((int(ref[1]), float(np.frombuffer(ref[2], "<f4")[0])))
        if len(vertices) != MESH_LANDMARKS * _VERTEX_FLOATS or not basis:
            raise ProtoError(f"expected {MESH_LANDMARKS} canonical vertices and a landmark basis, "
                             f"got {len(vertices) // _VERTEX_FLOATS} vertices and {len(basis)} basis entries")
        v = np.asarray(vertices, np.float64).reshape(MESH_LANDMARKS, _VERTEX_FLOATS)[:, :3].T.copy()
        w = np.zeros(MESH_LANDMARKS)
        for idx, weight in basis:
            if not 0 <= idx < MESH_LANDMARKS:
                raise ProtoError(f"basis landmark {idx} is outside the mesh")
            w[idx] = weight
        return cls(v, w)

    @classmethod
    def from_file(cls, path: Path) -> "CanonicalFace":
        return cls.from_bytes(Path(path).read_bytes())


def weighted_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The 4×4 similarity (scale·rotation, translation) that best maps source (3, N) onto target
    (3, N) in weighted least squares, with a proper rotation."""
    w = weights / weights.sum()
    mu_s = source @ w
    mu_t = target @ w
    cs = source - mu_s[:, None]
    ct = target - mu_t[:, None]
    cov = (ct * w) @ cs.T
    u, _, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u @ vt) < 0:
        d[2] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float(np.sum((rot @ cs) * ct * w)) / float(np.sum(cs * cs * w))
    m = np.eye(4)
    m[:3, :3] = scale * rot
    m[:3, 3] = mu_t - scale * rot @ mu_s
    return m


class FaceGeometry:
    """Landmarks (normalised image coordinates, z scaled as x) → facial transformation matrix."""

    def __init__(self, canonical: CanonicalFace) -> None:
        self.canonical = canonical

    def _scale(self, points: np.ndarray) -> float:
        m = weighted_similarity(self.canonical.vertices, points, self.canonical.weights)
        return float(np.linalg.norm(m[:3, 0]))

    def matrix(self, landmarks_norm: np.ndarray, width: int, height: int) -> np.ndarray:
        h_near = 2.0 * NEAR * math.tan(0.5 * math.radians(VERTICAL_FOV_DEG))
        w_near = width * h_near / height
        s = np.asarray(landmarks_norm[:MESH_LANDMARKS], np.float64).T.copy()
        s[0] = s[0] * w_near - w_near / 2  # screen, origin at the centre, y up
        s[1] = (1.0 - s[1]) * h_near - h_near / 2
        s[2] = s[2] * w_near
        depth_offset = float(s[2].mean())

        def metric(scale: float) -> np.ndarray:
            p = s.copy()
            p[2] = (p[2] - depth_offset + NEAR) / scale
            p[0] *= p[2] / NEAR
            p[1] *= p[2] / NEAR
            p[2] = -p[2]
            return p

        flipped = s.copy()
        flipped[2] = -flipped[2]
        first = self._scale(flipped)
        second = self._scale(metric(first))
        pose = weighted_similarity(self.canonical.vertices, metric(first * second), self.canonical.weights)
        return pose.astype(np.float32)
