"""The (pipeline, run date) lock: exclusive, names its owner, breaks stale locks with a warning, releases."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from spark_ml_pipeline.runtime.errors import ExitCode, LockedError, StoreError
from spark_ml_pipeline.runtime.locks import LockOwner, RunLock, lock_timeout, run_lock_uri


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def lock_file(tmp_path, **owner) -> tuple[str, object]:
    uri = run_lock_uri(str(tmp_path / "store"), "taxi_fare", "2026-01-15")
    path = tmp_path / "store" / "locks" / "taxi_fare" / "run_date=2026-01-15.lock"
    if owner:
        path.parent.mkdir(parents=True)
        now = time.time()
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-01-15T00:00:00",
                                    "started_epoch": now, "token": "t", **owner}))
    return uri, path


def test_lock_path_and_owner(tmp_path):
    uri, path = lock_file(tmp_path)
    assert uri == f"file://{tmp_path}/store/locks/taxi_fare/run_date=2026-01-15.lock"
    assert (run_lock_uri("s3a://b/store", "p", "2026-01-15", "score")
            == "s3a://b/store/locks/p/score/run_date=2026-01-15.lock")
    with RunLock(uri) as lock:
        owner = json.loads(path.read_text())
        assert owner["host"] == socket.gethostname() and owner["pid"] == os.getpid() and owner["started"]
        assert lock.owner.token == owner["token"]
    assert not path.exists()


def test_second_run_is_locked_with_the_owner_named(tmp_path):
    uri, path = lock_file(tmp_path)
    with RunLock(uri):
        with pytest.raises(LockedError) as raised:
            RunLock(uri).acquire()
        message = str(raised.value)
        assert uri in message and f"host {socket.gethostname()} pid {os.getpid()} since" in message
        assert "\n" not in message and raised.value.exit_code == ExitCode.LOCKED == 5
        assert path.exists()
    assert not path.exists()


def test_released_on_exception_and_ctrl_c(tmp_path):
    uri, path = lock_file(tmp_path)
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with RunLock(uri):
                assert path.exists()
                raise exc
        assert not path.exists()


def test_stale_lock_of_a_dead_pid_is_broken_with_a_warning(tmp_path):
    pid = dead_pid()
    uri, path = lock_file(tmp_path, pid=pid)
    warnings = []
    with RunLock(uri, warn=warnings.append):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: breaking stale lock {uri}")
    assert f"owner pid {pid} is not running on {socket.gethostname()}" in warnings[0]


def test_lock_older_than_the_timeout_is_stale_even_from_another_host(tmp_path):
    uri, _ = lock_file(tmp_path, host="elsewhere", started_epoch=time.time() - 7200)
    with pytest.raises(LockedError, match="held by host elsewhere pid"):
        RunLock(uri, timeout=3 * 3600).acquire()
    warnings = []
    with RunLock(uri, timeout=3600, warn=warnings.append):
        pass
    assert len(warnings) == 1 and "over the lock timeout of 3600 s" in warnings[0]


def test_live_owner_keeps_its_lock_and_a_foreign_lock_is_not_released(tmp_path):
    uri, path = lock_file(tmp_path, pid=os.getppid())
    with pytest.raises(LockedError):
        RunLock(uri).acquire()
    lock = RunLock(uri, warn=lambda message: None)
    path.unlink()
    lock.acquire()
    path.write_text(path.read_text().replace(lock.owner.token, "someone-else"))  # broken and re-taken meanwhile
    lock.release()
    assert path.exists()  # not ours any more: left alone


def test_a_lock_being_written_is_held_then_stale_when_old(tmp_path):
    uri, path = lock_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("")
    with pytest.raises(LockedError, match="an owner still writing it"):
        RunLock(uri).acquire()
    old = time.time() - 120
    os.utime(path, (old, old))
    with RunLock(uri, warn=lambda message: None):
        assert LockOwner.parse(path.read_text()).pid == os.getpid()


def test_unwritable_store_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    uri = run_lock_uri(str(tmp_path / "file" / "store"), "taxi_fare", "2026-01-15")
    with pytest.raises(StoreError, match=f"store file://{tmp_path}/file/store: not writable") as raised:
        RunLock(uri).acquire()
    assert raised.value.exit_code == ExitCode.STORE == 4


def test_lock_timeout_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv("SPARK_ML_PIPELINE_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == 24 * 3600 and lock_timeout(60) == 60
    monkeypatch.setenv("SPARK_ML_PIPELINE_LOCK_TIMEOUT", "600")
    assert lock_timeout() == 600


def test_lock_through_the_hadoop_filesystem(spark, tmp_path):
    """The code path of HDFS / object-store locks, exercised on file: through Hadoop's FileSystem API."""
    from spark_ml_pipeline.runtime.locks import HadoopFiles

    uri, path = lock_file(tmp_path)

    def hadoop_lock(**kwargs):
        lock = RunLock(uri, **kwargs)
        lock.files = HadoopFiles(spark)
        return lock

    with hadoop_lock():
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=f"held by host {socket.gethostname()} pid {os.getpid()}"):
            hadoop_lock().acquire()
    assert not path.exists()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "started": "x",
                                "started_epoch": time.time(), "token": "t"}))
    warnings = []
    with hadoop_lock(warn=warnings.append):
        pass
    assert len(warnings) == 1 and "is not running" in warnings[0] and not path.exists()
