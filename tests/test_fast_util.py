"""engines.util: hashing, atomic writes and process checks, which every layer uses."""

import hashlib
import os
import subprocess
import sys

import pytest

from engines.util import atomic_path, atomic_write, file_sha256, pid_alive

pytestmark = pytest.mark.fast


def test_file_sha256_reads_big_files_in_blocks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 123)  # more than one 1 MiB block
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    (tmp_path / "e").write_bytes(b"")
    assert file_sha256(str(tmp_path / "e")) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("durable", [False, True])
def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path, durable):
    dest = tmp_path / "sub" / "card.json"
    assert atomic_write(dest, "first", durable) == dest and dest.read_text() == "first"  # folders made
    atomic_write(dest, b"\x00second", durable)
    assert dest.read_bytes() == b"\x00second"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["card.json"]


def test_an_interrupted_atomic_write_keeps_the_old_file(tmp_path):
    dest = tmp_path / "series.parquet"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(dest, durable=True, suffix=".tmp.parquet") as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".series.parquet.") and tmp.suffix == ".parquet"
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["series.parquet"]


def test_pid_alive():
    assert pid_alive(os.getpid())
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not pid_alive(int(done.stdout))  # exited and reaped
    assert not pid_alive(None) and not pid_alive(0)
