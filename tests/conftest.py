import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines import assets


@pytest.fixture(scope="session", autouse=True)
def curve_keys(tmp_path_factory) -> Path:
    """tcp endpoints need CURVE keys: one set for the whole run, found through FACEMONITOR_KEYS (engine
    processes started by the tests inherit it)."""
    from monitor.transport.keys import KEYS_ENV, make_keys

    folder = make_keys(tmp_path_factory.mktemp("keys") / "keys")
    old = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = str(folder)
    yield folder
    if old is None:
        os.environ.pop(KEYS_ENV, None)
    else:
        os.environ[KEYS_ENV] = old


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
