from pathlib import Path

import cv2
import numpy as np
import pytest

from engines import assets


@pytest.fixture(scope="session")
def sample_video() -> Path:
    return assets.sample_path("single_face.mp4", progress=False)


@pytest.fixture(scope="session")
def sample():
    """Fetch any named sample: sample('no_face.mp4')."""
    return lambda name: assets.sample_path(name, progress=False)


@pytest.fixture(scope="session")
def sample_frames(sample_video) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample_video))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    return frames


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"
