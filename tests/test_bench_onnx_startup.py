"""What the ONNX backend costs as users run it: sessions that do not spin, one landmark thread by
default, and networks loaded once per engine process (not again for the spare runner or a new stream)."""

from __future__ import annotations

import uuid

import pytest

from engines.facemesh.models import LandmarkModelError, load_model_set


@pytest.fixture(scope="module")
def exported():
    try:
        return load_model_set()
    except LandmarkModelError as e:
        pytest.skip(f"no exported ONNX models here ({e}); test_onnx_backend.py exports them")


@pytest.mark.timeout(120)
def test_onnx_sessions_do_not_spin_and_use_one_landmark_thread(exported):
    from engines.facemesh_backend import OnnxCpuLandmarker

    with OnnxCpuLandmarker() as runner:
        sessions = runner.pipeline.inference.sessions
        assert set(sessions) == {"detector", "landmarks", "blendshapes"}
        for role, (session, _) in sessions.items():
            so = session.get_session_options()
            assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0", role
            assert so.get_session_config_entry("session.inter_op.allow_spinning") == "0", role
            assert so.intra_op_num_threads == 1, role


@pytest.mark.timeout(180)
def test_engine_loads_the_onnx_networks_once_across_warm_up_and_streams(exported):
    from monitor.engine.service import EngineService

    service = EngineService("inproc://unused", backend="onnx")
    service.warm_up()
    first = service._stream(uuid.uuid4())
    networks = first.runner.pipeline
    service._end_stream(next(iter(service.streams)))
    second = service._stream(uuid.uuid4())
    try:
        # the runner kept idle (the engine's pool, docs/engines.md) on the networks loaded at warm-up
        assert second.runner.pipeline is networks
    finally:
        for runner in {id(r): r for r in [second.runner, *(r for r, _ in service._idle)]}.values():
            runner.deactivate()
