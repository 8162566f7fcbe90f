"""The store's attack suite at a small scale: every probe runs against the real CLI, engine and files, and
none finds a failure (lost or contradictory data, a wrong `complete`, a blocked store)."""

import pytest

from monitor.lab.attack import store as store_attack


@pytest.mark.timeout(600)
def test_store_attacks_find_no_failure(tmp_path):
    findings = store_attack.attack(tmp_path, scale=0.2)
    assert [f.probe for f in findings] == [
        "analyze killed mid-write (SIGKILL at random times)", "concurrent analyses into one store",
        "disk full mid-session (tmpfs)", "damaged sessions (chunk, summary, series)", "empty or foreign database file"]
    for f in findings:
        assert f.area == "store" and f.failures == 0, f
        assert f.attempts >= 1 or f.detail.startswith("skipped: "), f
