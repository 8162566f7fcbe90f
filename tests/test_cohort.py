"""Cohort analysis with the real components: the real command, real worker processes with their
engines, a real store; Ray on loopback where it is installed."""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, run_cli
from monitor.lab.cohort.source import read_source
from monitor.lab.cohort.table import compare, subject_rows, summary_measures
from monitor.store.cohorts import CohortLedger
from monitor.store.db import Store

pytestmark = pytest.mark.slow
RECORDINGS = ("single_face.mp4", "face_noface.mov", "noface_face.mov", "single_face.jpg")


@pytest.fixture
def cohort_dir(tmp_path, sample):
    """Four real recordings of the samples (three videos and a photo) and one file that is no video."""
    folder = tmp_path / "cohort"
    folder.mkdir()
    for i, name in enumerate(RECORDINGS):
        shutil.copy(sample(name), folder / f"p{i % 2}_{name}")  # subjects p0 and p1
    (folder / "p9_broken.mp4").write_text("this is not a video")
    return folder


def _analyse(folder, store, *extra, timeout=600):
    r = run_cli("cohort", "analyze", folder, "--store", store, "--cohort", "c1", "--json", *extra, timeout=timeout)
    assert r.stdout.strip(), r.stderr
    return r, json.loads(r.stdout.strip().splitlines()[-1])


def _start_cohort(cohort_dir, store):
    """``cohort analyze`` with one worker in its own process group (so a test can kill it all)."""
    env = dict(os.environ, FACEMONITOR_STORE=str(store))
    return subprocess.Popen([sys.executable, "-m", "monitor", "cohort", "analyze", str(cohort_dir), "--cohort", "c1",
                             "--workers", "1", "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.timeout(900)
def test_a_cohort_on_two_workers_records_each_recording_once_and_a_rerun_skips_them(cohort_dir, tmp_path):
    store = tmp_path / "store"
    r, report = _analyse(cohort_dir, store, "--workers", "2")
    assert r.returncode == 1  # one recording failed: the command says so
    assert sorted(o["key"] for o in report["done"]) == sorted(f"p{i % 2}_{n}" for i, n in enumerate(RECORDINGS))
    assert [(o["key"], o["status"]) for o in report["failed"]] == [("p9_broken.mp4", "failed")]
    assert "not a readable video" in report["failed"][0]["error"]
    photo = next(o for o in report["done"] if o["key"].endswith(".jpg"))
    assert photo["frames"] == 1 and photo["frames_with_face"] == 1  # a photo is a one-frame session
    with Store(store) as s:
        items = {i.path: i for i in CohortLedger(s).items("c1")}
        sessions = {row.id: row for row in s.list_sessions(limit=100)}
        assert set(items) == {p.name for p in cohort_dir.iterdir()}
        for key, item in items.items():
            if key == "p9_broken.mp4":
                assert item.status == "failed" and item.session_id is None
                continue
            assert item.status == "complete" and sessions[item.session_id].status == "complete"
            tags = [e for e in s.events(item.session_id) if e["kind"] == "cohort"]
            assert json.loads(tags[0]["detail"]) == {"cohort": "c1", "subject": key.split("_")[0], "recording": key}
        assert len(sessions) == len(RECORDINGS)  # no session for the broken file, none twice
    r2, again = _analyse(cohort_dir, store, "--workers", "2")
    assert sorted(again["skipped"]) == sorted(k for k in items if k != "p9_broken.mp4") and not again["done"]
    with Store(store) as s:
        assert len(s.list_sessions(limit=100)) == len(RECORDINGS)
    # a changed recording is analysed again, and only it
    shutil.copy(cohort_dir / "p0_single_face.mp4", cohort_dir / "p1_noface_face.mov")
    _, third = _analyse(cohort_dir, store, "--workers", "1")
    assert [o["key"] for o in third["done"]] == ["p1_noface_face.mov"]


@pytest.mark.timeout(900)
def test_the_cohort_table_matches_the_sessions_and_groups_compare(cohort_dir, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,subject,label,qmg\n" + "".join(
        f"{cohort_dir / f'p{i % 2}_{n}'},s{i},{'MG' if i < 2 else 'control'},{i}\n" for i, n in enumerate(RECORDINGS)))
    store = tmp_path / "store"
    r, report = _analyse(manifest, store, "--workers", "2")
    assert r.returncode == 0 and len(report["done"]) == 4
    out = tmp_path / "table.csv"
    t = run_cli("cohort", "table", "c1", "--store", store, "--out", out)
    assert t.returncode == 0, t.stderr
    import csv

    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 4 and {r["label"] for r in rows} == {"MG", "control"}
    with Store(store) as s:
        for row in rows:
            session = s.get_session(row["session_id"])
            want = summary_measures(session.summary)
            for key, value in want.items():
                assert float(row[key]) == pytest.approx(value, rel=1e-6), key
            med = session.summary.step("session").medians.get("eye_aperture_left_mm")
            if med is not None:
                assert float(row["session.eye_aperture_left_mm"]) == pytest.approx(med)
        from monitor.lab.cohort.table import recording_rows

        recs = recording_rows(s, "c1")
    per_subject = subject_rows(recs)
    assert sorted(r["subject"] for r in per_subject) == ["s0", "s1", "s2", "s3"]
    cmp = compare(recs, "label")
    assert cmp["groups"] == {"MG": 2, "control": 2} and cmp["test"] == "Mann-Whitney U"
    col = "session.eye_aperture_left_mm"
    mg = [r[col] for r in recs if r["label"] == "MG" and col in r]
    assert cmp["measures"][col]["groups"]["MG"]["mean"] == pytest.approx(sum(mg) / len(mg))
    c = run_cli("cohort", "compare", "c1", "--store", store, "--by", "label")
    assert c.returncode == 0 and "Mann-Whitney U" in c.stdout and "p-values are not corrected" in c.stdout


@pytest.mark.timeout(900)
def test_a_driver_killed_mid_way_loses_nothing_and_a_rerun_finishes_each_recording_once(cohort_dir, tmp_path):
    (cohort_dir / "p9_broken.mp4").unlink()
    store = tmp_path / "store"
    proc = _start_cohort(cohort_dir, store)
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and done < 1:
        time.sleep(0.5)
        if (store / "facemonitor.sqlite3").exists():
            with Store(store) as s:
                done = sum(i.status == "complete" for i in CohortLedger(s).items("c1"))
    assert done >= 1, "no recording finished in time"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its workers and their engines
    proc.wait(30)
    with Store(store) as s:
        before = {i.path: i for i in CohortLedger(s).items("c1") if i.status == "complete"}
    r, report = _analyse(cohort_dir, store, "--workers", "1")
    assert r.returncode == 0 and not report["failed"]
    assert set(report["skipped"]) == set(before)  # what finished before the kill is kept, not redone
    with Store(store) as s:
        items = CohortLedger(s).items("c1")
        assert len(items) == len(RECORDINGS) and all(i.status == "complete" for i in items)
        assert len({i.session_id for i in items}) == len(RECORDINGS)
        for key, item in before.items():
            assert next(i for i in items if i.path == key).session_id == item.session_id


@pytest.mark.timeout(900)
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'facemonitor[cohort]')")
def test_a_cohort_on_a_local_ray_runtime_gives_the_same_sessions(cohort_dir, tmp_path):
    (cohort_dir / "p9_broken.mp4").unlink()
    r, report = _analyse(cohort_dir, tmp_path / "store", "--ray", "local", "--workers", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert report["executor"] == "ray (local)" and len(report["done"]) == len(RECORDINGS)
    pool_r, pool = _analyse(cohort_dir, tmp_path / "store2", "--workers", "1")
    assert {o["key"]: o["frames_with_face"] for o in report["done"]} == \
        {o["key"]: o["frames_with_face"] for o in pool["done"]}


def test_sources_are_read_with_subjects_labels_and_clear_errors(tmp_path):
    folder = tmp_path / "f"
    (folder / "anna").mkdir(parents=True)
    (folder / "anna" / "day1.mp4").write_bytes(b"x")
    (folder / "bob_2.jpg").write_bytes(b"x")
    (folder / "notes.txt").write_text("ignored")
    recs = read_source(folder)
    assert [(r.key, r.subject) for r in recs] == [("anna/day1.mp4", "anna"), ("bob_2.jpg", "bob")]
    m = tmp_path / "m.csv"
    m.write_text("path,subject,label,diagnosis\nf/bob_2.jpg,bob,MG,MG\n")
    (rec,) = read_source(m)
    assert rec.path == folder / "bob_2.jpg" and rec.labels == {"label": "MG", "diagnosis": "MG"}
    m.write_text("file,subject\nx.mp4,a\n")
    with pytest.raises(Exception, match="'path' column"):
        read_source(m)
    m.write_text("path\nx.mp4\nx.mp4\n")
    with pytest.raises(Exception, match="line 3: x.mp4 is listed twice"):
        read_source(m)
    r = run_cli("cohort", "analyze", tmp_path / "nope", "--store", tmp_path / "s")
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and "no such folder" in r.stderr


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_way_is_replaced_and_every_recording_completes(cohort_dir, tmp_path):
    (cohort_dir / "p9_broken.mp4").unlink()
    store = tmp_path / "store"
    proc = _start_cohort(cohort_dir, store)
    try:
        deadline, killed = time.monotonic() + 300, None
        while killed is None and time.monotonic() < deadline:
            time.sleep(0.3)
            if not (store / "facemonitor.sqlite3").exists():
                continue
            with Store(store) as s:
                running = any(r.status == "running" for r in s.list_sessions(limit=10))
            workers = [p for p in _children(proc.pid) if _children(p)]  # the pool worker holds its engine
            if running and workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)  # mid-session
        assert killed, "no worker was seen analysing"
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    report = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0 and not report["failed"], err[-2000:]
    assert sorted(o["key"] for o in report["done"]) == sorted(p.name for p in cohort_dir.iterdir())
    with Store(store) as s:
        items = CohortLedger(s).items("c1")
        assert all(i.status == "complete" for i in items) and len({i.session_id for i in items}) == len(items)
        lost = [r for r in s.list_sessions(limit=100) if r.id not in {i.session_id for i in items}]
    # the session the killed worker was writing is kept, marked incomplete, and is not part of the cohort
    assert len(lost) == 1 and lost[0].status == "incomplete"


def test_ray_missing_is_a_clear_error_naming_the_extra(cohort_dir, tmp_path):
    fake = tmp_path / "noray"
    fake.mkdir()
    (fake / "ray.py").write_text("raise ImportError('ray is not installed here')\n")
    env = {"PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}
    r = run_cli("cohort", "analyze", cohort_dir, "--store", tmp_path / "s", "--ray", "local", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "error: --ray needs Ray: pip install 'facemonitor[cohort]'"
    assert not (tmp_path / "s" / "facemonitor.sqlite3").exists()  # refused before anything was recorded


def test_an_unknown_backend_is_refused_once_before_anything_is_recorded(cohort_dir, tmp_path):
    r = run_cli("cohort", "analyze", cohort_dir, "--store", tmp_path / "s", "--backend", "nope")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: unknown backend 'nope'")
    assert not (tmp_path / "s" / "facemonitor.sqlite3").exists()
