"""The store unavailable: the run fails AT START, before Spark or any data work, with one line naming the store's
URI and exit code 4 (retry later), within seconds. Real failures: a tracking server that is not there, one whose
PostgreSQL is down (a short-lived store of this test's own, its database stopped), a study database that is not
there, a store root that cannot take a file."""
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from spark_ml_pipeline.runtime.errors import ExitCode
from spark_ml_pipeline.runtime.io import to_uri

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("STORE_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUN_DATE = "run_date=2026-01-15"
STARTS_WITHIN = 25  # seconds: a Python start-up with pyspark, mlflow and optuna imported, a 10 s store timeout


def nothing_written(store: Path) -> bool:
    """Neither data nor a lock nor a model: the run stopped before its work."""
    return not any((store / name).exists() for name in ("data", "locks", "models", "artifacts", "optuna"))


JOBS = {  # job -> its arguments besides the store (score's input/output are never reached)
    "jobs.run_pipeline": ["taxi_fare", RUN_DATE, "generate.rows=2000"],
    "jobs.tune": ["taxi_fare", RUN_DATE, "generate.rows=2000", "n_trials=1"],
    "jobs.score": ["taxi_fare", RUN_DATE, "input=/nonexistent/trips", "output=/nonexistent/predictions"],
}


@pytest.mark.parametrize("job", ["jobs.run_pipeline", "jobs.score"])  # jobs.tune: the two tests below
def test_tracking_server_not_there(run_job, tmp_path, dead_port, job):
    store, uri = tmp_path / "store", f"http://127.0.0.1:{dead_port}"
    done = run_job(job, *JOBS[job], f"store.root={store}", f"store.tracking_uri={uri}")
    assert done.returncode == ExitCode.STORE == 4, done.stderr[-3000:]
    assert done.error_line() == (f"error: store {to_uri(store)}: tracking server {uri} does not answer "
                                 "(MlflowException: [Errno 111] Connection refused)")
    assert done.stderr.count("\n") == 1  # Spark never started: not even its JVM's warnings
    assert done.seconds < STARTS_WITHIN and nothing_written(store)


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    """An MLflow tracking server of this module's own whose PostgreSQL has been stopped under it (the shared
    store_server stays up for the other tests): the server answers /health, every call that needs its
    database hangs in the server's own retries."""
    state = Path(tempfile.mkdtemp(prefix="sml-fault-db-"))
    state.chmod(0o755)  # PostgreSQL runs as the postgres OS user, which must reach its data directory
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(str(probe.getsockname()[1]))
    env = {**os.environ, "STORE_DB_DIR": str(state), "STORE_ROOT": str(tmp_path_factory.mktemp("fault-db-root")),
           "STORE_PG_PORT": ports[0], "STORE_MLFLOW_PORT": ports[1], "STORE_PG_USER": "sml_fault",
           "STORE_PG_PASSWORD": secrets.token_hex(8)}

    def script(command):
        return subprocess.run(["bash", "scripts/store.sh", command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=240)
    try:
        up = script("up")
        assert up.returncode == 0, up.stdout + up.stderr
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        stop = subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(state / "pgdata"), "-m", "fast", "-w",
                               "stop"], capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        yield f"http://127.0.0.1:{ports[1]}"
    finally:
        # Its database gone, the server cannot finish a graceful stop: `down` would wait out its 15 s for it.
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int((state / "mlflow.pid").read_text()), signal.SIGKILL)
        script("down")
        shutil.rmtree(state, ignore_errors=True)


def test_tracking_server_whose_postgresql_is_down(run_job, tmp_path, server_without_database):
    store, uri = tmp_path / "store", server_without_database
    with urllib.request.urlopen(f"{uri}/health", timeout=5) as health:
        assert health.read() == b"OK"  # the server process itself is up: only a real call finds the database gone
    done = run_job("jobs.run_pipeline", *JOBS["jobs.run_pipeline"], f"store.root={store}",
                   f"store.tracking_uri={uri}")
    assert done.returncode == 4, done.stderr[-3000:]
    assert done.error_line() == (f"error: store {to_uri(store)}: tracking server {uri} does not answer "
                                 "(MlflowException: Read timed out. (read timeout=10))")
    assert done.seconds < STARTS_WITHIN and nothing_written(store)


def test_study_database_down(run_job, tmp_path, dead_port, store_server):
    """tune.storage on a PostgreSQL that is not there (the tracking server is fine): named, password hidden."""
    store = tmp_path / "store"
    storage = f"postgresql+psycopg2://sml_test:s3cret@127.0.0.1:{dead_port}/optuna"
    done = run_job("jobs.tune", *JOBS["jobs.tune"], f"store.root={store}",
                   f"store.tracking_uri={store_server.tracking_uri}", f"tune.storage={storage}")
    assert done.returncode == 4, done.stderr[-3000:]
    line = done.error_line()
    assert line.startswith(f"error: study storage (tune.storage) postgresql+psycopg2://sml_test:***@127.0.0.1:"
                           f"{dead_port}/optuna does not answer (OperationalError: "), line
    assert "Connection refused" in line and "s3cret" not in done.stderr + done.stdout
    assert done.seconds < STARTS_WITHIN and nothing_written(store)


def read_only(directory: Path):
    """``directory`` made unwritable for real: mode 0555, and immutable (chattr +i) when running as root, whom
    modes do not stop. Returns the undo."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        (directory / "probe").touch()
    except OSError:
        pass
    else:
        pytest.fail(f"could not make {directory} read-only (as root it takes chattr +i, on ext4/tmpfs)")

    def undo():
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(directory)], check=False)
        directory.chmod(0o755)
    return undo


@pytest.mark.parametrize("job, how", [("jobs.tune", "read-only directory"),
                                      ("jobs.run_pipeline", "a file where a directory must be")])
def test_store_root_not_writable(run_job, tmp_path, job, how):
    """jobs.tune takes no run lock: without the preflight it would generate, ingest and fit before failing."""
    undo = lambda: None  # noqa: E731
    if how == "read-only directory":
        store = tmp_path / "store"
        undo = read_only(store)
        reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
    else:
        (tmp_path / "blocker").write_text("a file, not a directory")
        store = tmp_path / "blocker" / "store"
        reason = "Not a directory"
    try:
        done = run_job(job, *JOBS[job], f"store.root={store}")
    finally:
        undo()
    assert done.returncode == 4, done.stderr[-3000:]
    line = done.error_line()
    assert line.startswith(f"error: store {to_uri(store)}: not writable: {reason} ("), line
    assert done.stderr.count("\n") == 1 and done.seconds < STARTS_WITHIN
    assert not store.is_dir() or nothing_written(store)
