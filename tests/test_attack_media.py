"""The media attack area at a small scale: every bad file through the real `analyze` command."""

import pytest

from monitor.lab.attack.media import attack


@pytest.mark.timeout(600)
def test_media_attack_finds_no_failures(tmp_path):
    pytest.importorskip("av")
    findings = attack(tmp_path, 0.1)
    probes = {f.probe for f in findings}
    assert {"zero bytes", "photo renamed .mp4", "one-frame video", "variable frame rate", "cut video",
            "garbage in the middle", "huge picture (8000 px)"} <= probes
    assert all(f.attempts >= 1 for f in findings)
    assert [f for f in findings if f.failures] == []
