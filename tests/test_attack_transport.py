"""The transport's attack suite at a tiny scale: every probe runs against real engine processes and a
real broker, and none finds a failure."""

import pytest

from monitor.lab.attack import transport


@pytest.mark.timeout(600)
def test_transport_attacks_at_a_tiny_scale_find_no_failure(tmp_path):
    findings = transport.attack(tmp_path, 0.01)
    probes = {f.probe for f in findings}
    assert len(findings) == 7 and "broker restarted mid-session" in probes
    assert [(f.probe, f.detail) for f in findings if f.failures] == []
    assert all(f.attempts >= 1 for f in findings)
