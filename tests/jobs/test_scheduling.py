"""Scheduled batch: --run-date, exit codes, a lock per (pipeline, run date), re-runs, incremental ingest."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from spark_ml_pipeline.runtime.cli import Job, parser
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError, DataError, ExitCode, LockedError, StoreError

ROOT = Path(__file__).resolve().parents[2]
SMALL_SPARK = ["spark.master=local[1]", "spark.driver_memory=1g", "spark.shuffle_partitions=2"]


def job(*args, timeout=180, **popen):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, **popen)


def start_job(*args):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process, seconds=60):
    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def taxi_config(store, raw, *overrides):
    config, _ = load_pipeline("taxi_fare", ["local"], [f"store.root={store}", f"ingest.input={raw}",
                                                       "ingest.format=csv", *overrides])
    return config


def tree(path: Path) -> dict:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


# --- exit codes and --run-date -------------------------------------------------------------------------------

def test_exit_codes_are_defined_once():
    assert [int(c) for c in ExitCode] == [0, 2, 3, 4, 5, 130]
    assert (ConfigError.exit_code, DataError.exit_code, StoreError.exit_code, LockedError.exit_code) == (
        ExitCode.CONFIG, ExitCode.DATA, ExitCode.STORE, ExitCode.LOCKED)


def test_run_date_option_sets_the_key_and_defaults_to_today():
    args = parser("jobs.ingest", "").parse_intermixed_args(["taxi_fare", "--run-date", "2026-01-15"])
    config, _ = Job(args).load()
    assert config.run_date == date(2026, 1, 15)
    config, _ = Job(parser("jobs.ingest", "").parse_intermixed_args(["taxi_fare"])).load()
    assert config.run_date == datetime.now(timezone.utc).date()  # pinned: a run past midnight keeps its date
    for argv, message in [(["--run-date", "15.01.2026"], "--run-date '15.01.2026': not a date"),
                          (["run_date=2026-13-01"], "'run_date=2026-13-01': not a date"),
                          (["--run-date", "2026-01-15", "run_date=2026-01-16"],
                           "--run-date 2026-01-15 conflicts with the override 'run_date=2026-01-16'")]:
        with pytest.raises(ConfigError, match=message):
            Job(parser("jobs.ingest", "").parse_intermixed_args(["taxi_fare", *argv])).load()


def test_bad_run_date_is_one_clear_line():
    done = job("jobs.ingest", "taxi_fare", "--run-date", "2026-02-30")
    assert done.returncode == ExitCode.CONFIG == 2
    assert done.stderr == "error: --run-date '2026-02-30': not a date; expected YYYY-MM-DD, e.g. 2026-01-15\n"


def test_unwritable_store_exits_4_naming_the_store(tmp_path):
    (tmp_path / "file").write_text("")
    done = job("jobs.ingest", "taxi_fare", f"store.root={tmp_path}/file/store", "--run-date", "2026-01-15")
    assert done.returncode == ExitCode.STORE == 4, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: store file://{tmp_path}/file/store: not writable?")


# --- the lock ------------------------------------------------------------------------------------------------

def test_concurrent_runs_of_one_date_one_runs_the_other_exits_5(legacy_csv, tmp_path):
    raw, _ = legacy_csv
    store = tmp_path / "store"
    lock = store / "locks" / "taxi_fare" / "run_date=2026-01-15.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.parent.mkdir(parents=True)  # a run killed with -9 left its lock behind
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": "2026-01-15T00:00:00",
                                "started_epoch": time.time(), "token": "killed"}))
    args = ["jobs.ingest", "taxi_fare", f"ingest.input={raw}", "ingest.format=csv", f"store.root={store}",
            "--run-date", "2026-01-15", *SMALL_SPARK]
    first = start_job(*args)

    def holder() -> int | None:  # between breaking the stale lock and taking its own, there is no lock file
        try:
            return json.loads(lock.read_text() or "{}").get("pid")
        except FileNotFoundError:
            return None

    try:
        deadline = time.time() + 60
        while holder() != first.pid:
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.05)
        started = time.time()
        second = job(*args)
        assert time.time() - started < 20  # at once: before Spark starts
        assert second.returncode == ExitCode.LOCKED == 5, second.stderr
        assert second.stderr == (f"error: locked: file://{lock} is held by host {socket.gethostname()} pid "
                                 f"{first.pid} since {json.loads(lock.read_text())['started']}; another run of this "
                                 "pipeline and run date is in progress (a stale lock is broken automatically)\n")
        out, err = first.communicate(timeout=180)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: breaking stale lock file://{lock} (host {socket.gethostname()} pid {dead.pid} "
                        f"since 2026-01-15T00:00:00): its owner pid {dead.pid} is not running on "
                        f"{socket.gethostname()}"]
    assert not lock.exists()
    assert (store / "data" / "taxi_fare" / "ingest" / "run_date=2026-01-15" / "_ingest.json").is_file()


def test_sigterm_stops_the_run_with_130_and_releases_the_lock(tmp_path):
    store = tmp_path / "store"
    lock = store / "locks" / "taxi_fare" / "run_date=2026-01-16.lock"
    process = start_job("jobs.generate", "taxi_fare", f"store.root={store}", "--run-date", "2026-01-16",
                        "generate.rows=1000", *SMALL_SPARK)
    try:
        wait_for(lock, process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not lock.exists()


def test_a_signal_at_any_moment_of_taking_the_lock_never_leaves_it_behind(tmp_path):
    """SIGTERM sent at random moments while a job takes and drops its lock, 300 times over: a signal that lands
    after the lock file is written but before the job holds it must still release it (it used not to: the test
    above then found the lock left behind). In-process and without Spark: a local store is locked without it."""
    import random
    import threading

    job = Job(parser("jobs.ingest", "").parse_intermixed_args(["taxi_fare", f"store.root={tmp_path}",
                                                               "--run-date", "2026-01-17"]))
    job.load()
    lock = tmp_path / "locks" / "taxi_fare" / "run_date=2026-01-17.lock"
    rng = random.Random(11)
    interrupted = 0
    with job.signals.installed():
        for _ in range(300):
            job.signals.received = None
            timer = threading.Timer(rng.uniform(0, 0.004), os.kill, (os.getpid(), signal.SIGTERM))
            try:
                timer.start()  # inside: a signal may land before the next statement (it once stopped pytest)
                with job.lock():
                    time.sleep(0.002)
                timer.join()
                while job.signals.received is None:  # sent: Python runs the handler at its next chance, here
                    time.sleep(0.0001)
                job.signals.checkpoint()  # the signal landed after the block: what run() does next
            except KeyboardInterrupt:
                interrupted += 1
            assert not lock.exists()
    assert interrupted == 300  # every signal was delivered as an interrupt, none lost


# --- re-runs replace exactly their date -----------------------------------------------------------------------

def test_rerunning_a_date_replaces_that_date_only(spark, legacy_csv, tmp_path):
    from pipelines.taxi_fare import pipeline
    from pipelines.taxi_fare.config import ingest_location
    from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_valid

    raw, _ = legacy_csv
    store = tmp_path / "store"
    ingest_dir = store / "data" / "taxi_fare" / "ingest"

    def ingest(day):
        stats = pipeline.ingest(spark, taxi_config(store, raw, f"run_date={day}"))
        location = ingest_location(taxi_config(store, raw, f"run_date={day}"))
        rows = sorted(map(tuple, read_valid(spark, location).drop("source_file").collect()), key=repr)
        quarantined = sorted(map(tuple, read_quarantine(spark, location).drop("source_file").collect()), key=repr)
        return stats, rows, quarantined

    first = ingest("2026-01-15")
    second = ingest("2026-01-15")
    assert sorted(os.listdir(ingest_dir)) == ["run_date=2026-01-15"]  # one partition, no leftovers
    assert second == first and first[0].rows_valid > 0 and first[0].rows_quarantined > 0
    before = tree(ingest_dir / "run_date=2026-01-15")
    ingest("2026-01-16")
    assert sorted(os.listdir(ingest_dir)) == ["run_date=2026-01-15", "run_date=2026-01-16"]
    assert tree(ingest_dir / "run_date=2026-01-15") == before


# --- incremental ingest ---------------------------------------------------------------------------------------

def test_incremental_ingest_takes_only_new_or_changed_files(spark, tmp_path):
    from pipelines.taxi_fare import pipeline
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips

    generated = tmp_path / "generated"
    write_trips(spark, GeneratorSpec(rows=1500, months=3, output_format="csv", dirty_fraction=0.05, seed=11),
                str(generated))
    months = sorted(p.name for p in generated.iterdir() if p.name.startswith("month="))
    incoming, store = tmp_path / "incoming", tmp_path / "store"
    incoming.mkdir()

    def arrive(month):
        shutil.copytree(generated / month, incoming / month)

    def lines(month):
        [data] = [p for p in (incoming / month).iterdir() if not p.name.startswith(".")]
        return len([line for line in data.read_text().splitlines() if line.strip()]) - 1, data

    def ingest(day):
        return pipeline.ingest(spark, taxi_config(store, incoming, "ingest.incremental=true", f"run_date={day}"))

    def ingested(stats):
        return sorted(Path(uri.removeprefix("file:")).parent.name for uri, _, _ in stats.input_files)

    arrive(months[0]), arrive(months[1])
    run1 = ingest("2026-01-01")
    assert ingested(run1) == months[:2] and run1.rows_in == lines(months[0])[0] + lines(months[1])[0]

    arrive(months[2])
    run2 = ingest("2026-01-02")
    assert ingested(run2) == months[2:] and run2.rows_in == lines(months[2])[0]

    rows, touched = lines(months[0])
    later = touched.stat().st_mtime + 60
    os.utime(touched, (later, later))
    run3 = ingest("2026-01-03")
    assert ingested(run3) == months[:1] and run3.rows_in == rows

    nothing = ingest("2026-01-04")
    assert isinstance(nothing, pipeline.NothingToIngest) and "nothing to ingest" in str(nothing)
    assert "\n" not in str(nothing)
    rerun = ingest("2026-01-02")  # a re-run of a date ingests that date's files again, not nothing
    assert ingested(rerun) == months[2:] and rerun.rows_in == run2.rows_in

    ingest_dir = store / "data" / "taxi_fare" / "ingest"
    assert sorted(p.name for p in ingest_dir.iterdir()) == [
        "_ledger", "run_date=2026-01-01", "run_date=2026-01-02", "run_date=2026-01-03"]
    ledger = {p.name: json.loads(p.read_text()) for p in (ingest_dir / "_ledger").glob("*.json")}
    assert sorted(ledger) == ["run_date=2026-01-01.json", "run_date=2026-01-02.json", "run_date=2026-01-03.json"]
    assert [f["mtime"] for f in ledger["run_date=2026-01-03.json"]["files"]] == [int(later * 1000)]

    # Not incremental (the default): every file, as before.
    full = pipeline.ingest(spark, taxi_config(store, incoming, "run_date=2026-01-05"))
    assert ingested(full) == months and full.rows_in == sum(lines(m)[0] for m in months)


@pytest.mark.parametrize("flag", ["--run-date=2026-01-15", "run_date=2026-01-15"])
def test_run_date_reaches_the_stage(flag, tmp_path):
    done = job("jobs.featurize", "taxi_fare", f"store.root={tmp_path}/store", flag, *SMALL_SPARK)
    assert done.returncode == ExitCode.DATA == 3, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: file://{tmp_path}/store/data/taxi_fare/ingest/run_date=2026-01-15: no ingested data for run date "
        "2026-01-15; run the ingest stage first")
    assert not (tmp_path / "store" / "locks" / "taxi_fare" / "run_date=2026-01-15.lock").exists()
