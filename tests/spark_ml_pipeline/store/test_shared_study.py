"""Two search drivers (separate processes, started together) on ONE PostgreSQL study: they run trials at once; one
is SIGKILLed with a trial running; the other fails that trial through Optuna's heartbeat (not at start-up), re-runs
its parameters, and finishes the whole budget (n_trials counted across drivers)."""
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from jobs.tune import expand_aliases
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.database_urls import redacted
from spark_ml_pipeline.studies.heartbeat import Heartbeat, fail_stale
from spark_ml_pipeline.tune.search import is_shared, open_study, study_name

ROOT = Path(__file__).resolve().parents[3]
# Enough trials that both drivers run some at once; a trial here takes about a second (local-mode XGBoost fits in
# the driver). Started together, the two drivers reach their first trials within a trial or two of each other
# (their preparation is the same work); the survivor then runs what is left of the budget alone, so the budget
# is most of this test's time: 30 leaves a window of ~30 s for the other driver to join (was 60: ~55 s alone).
N_TRIALS = 30
HEARTBEAT = 2  # seconds; a trial silent for 3 x 2 s is stale
SPACE = {
    "max_depth": {"type": "int", "low": 3, "high": 6},
    "learning_rate": {"type": "logfloat", "low": 0.1, "high": 0.3},
}


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory, copy_conf):
    target = copy_conf(tmp_path_factory.mktemp("shared") / "conf")
    taxi_file = target / "pipelines" / "taxi_fare.yaml"
    taxi = yaml.safe_load(taxi_file.read_text())
    taxi["tune"] = {"n_trials": N_TRIALS, "parallelism": 1, "budgets": [], "space": SPACE}
    taxi_file.write_text(yaml.safe_dump(taxi))
    return target


def overrides(store_root, server):
    # Each driver its own store root (its own generated + ingested copy of the same data); the study, the
    # tracking server and the experiment are shared.
    return [f"store.root={store_root}", "run_date=2026-01-15", "generate.rows=3000", "generate.months=1",
            "model.n_estimators=40", "model.early_stopping_rounds=10", f"n_trials={N_TRIALS}", "parallelism=1",
            "tune.promote=false", "tune.report=false", "spark.master=local[1]", f"tune.storage={server.storage}",
            f"tune.heartbeat_seconds={HEARTBEAT}", f"store.tracking_uri={server.tracking_uri}"]


def snapshot(storage, name):
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def running_of(trials, pid):
    return [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get("driver", "").endswith(f":{pid}")]


def test_two_drivers_share_a_study_and_a_killed_drivers_trial_is_rerun(conf_dir, store_server, tmp_path):
    server = store_server
    config = load_config("taxi_fare", ["local"], expand_aliases(overrides(tmp_path / "a", server)), conf_dir)
    name = study_name(config)
    storage = optuna.storages.RDBStorage(server.storage)
    env = {**os.environ, "SML_CONF_DIR": str(conf_dir)}

    def start(label):
        log = open(tmp_path / f"{label}.log", "w")
        command = [sys.executable, "-m", "jobs.tune", "taxi_fare", *overrides(tmp_path / label, server)]
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def output(label):
        return (tmp_path / f"{label}.log").read_text()

    # Both start at once and prepare side by side. Started one after the other, the first could finish the whole
    # budget while the second still prepares (a JVM, its data: 15-50 s on a busy machine), and the test with it.
    a, b = start("a"), start("b")
    try:
        deadline = time.time() + 400
        first_of_a, killed, alive_at_kill = None, None, None
        while time.time() < deadline and a.poll() is None and b.poll() is None:
            trials = snapshot(storage, name)
            mine, theirs = running_of(trials, a.pid), running_of(trials, b.pid)
            if mine and first_of_a is None:
                first_of_a = mine[0].number  # whichever starts later must not fail it at its start-up
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            # Trials of both drivers at once, A's with all its parameters drawn (what the survivor must re-run; a
            # trial's parameters are stored one by one as drawn, so a loaded machine can show some): kill A.
            if mine and theirs and set(mine[0].params) == set(SPACE):
                assert finished < N_TRIALS - 1
                os.killpg(a.pid, signal.SIGKILL)
                killed_at = datetime.now()
                a.wait()
                killed, alive_at_kill = mine[0].number, theirs[0].number
                break
            time.sleep(0.3)
        assert killed is not None, output("a")[-2000:] + output("b")[-3000:]
        b.wait(timeout=600)
        assert b.returncode == 0, output("b")[-4000:]
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    study = optuna.load_study(study_name=name, storage=storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    states = [t.state for t in trials.values()]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == N_TRIALS  # across drivers
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    host = socket.gethostname()
    drivers = {t.user_attrs["driver"] for t in trials.values()}
    assert drivers == {f"{host}:{a.pid}", f"{host}:{b.pid}"}
    # Only the killed driver's running trial failed, and not before its heartbeat's grace period ran out.
    failed = [t for t in trials.values() if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [killed]
    assert (failed[0].datetime_complete - killed_at).total_seconds() >= 3 * HEARTBEAT - 1.5
    assert trials[first_of_a].state != TrialState.FAIL or first_of_a == killed
    assert trials[alive_at_kill].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # ... and it was run again by the survivor, with its parameters and working directory.
    retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].params == failed[0].params
    assert retries[0].user_attrs["work_of"] == killed and retries[0].user_attrs["driver"] == f"{host}:{b.pid}"
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    log_b = output("b")
    assert "shared study" in log_b and f"trial {killed:3d} of driver {host}:{a.pid} went silent" in log_b
    assert "left running by a crash" not in log_b
    run_id = failed[0].user_attrs.get("mlflow_run_id")
    if run_id:  # the killed trial's MLflow run, if it was created before the kill
        assert MlflowClient(server.tracking_uri).get_run(run_id).info.status == "KILLED"


def test_heartbeat_fails_only_silent_trials_and_requeues_them(store_server, tmp_path):
    """Without Spark: a trial whose heartbeat stopped is failed (by the next driver that looks) and queued again
    with retry_of / work_of, and so is one whose driver died before its first heartbeat (between ask and the
    heartbeat: Optuna's own check skips it, and the survivors waited forever); one that died before drawing its
    parameters is failed and not queued (the budget's next trial draws afresh), and the line says so; RUNNING
    trials with a live heartbeat are left alone, at start-up too."""
    bare = store_server.storage.replace("postgresql+psycopg2://", "postgresql://")  # normalised for psycopg2
    config = load_config("taxi_fare", ["local"], [f"store.root={tmp_path}", f"tune.storage={bare}",
                                                  "tune.heartbeat_seconds=1", f"tune.study_name=hb-{tmp_path.name}"])
    assert is_shared(config)
    heard = []
    study, recovered = open_study(config, "minimize", progress=heard.append)
    dead, live, unbeaten, undrawn = study.ask(), study.ask(), study.ask(), study.ask()
    for trial in (dead, live, unbeaten, undrawn):
        if trial is not undrawn:  # undrawn's driver died before it drew its parameters: nothing to re-run
            trial.suggest_int("x", 1, 9)
        trial.set_user_attr("driver", f"host:{trial.number}")
    silent = Heartbeat(study, dead, 1).start()
    silent.stop()  # its driver "dies": no more heartbeats
    beating = Heartbeat(study, live, 1).start()
    try:
        _, at_start = open_study(config, "minimize")  # another driver starting now: nothing is stale yet
        assert at_start == [] and {t.state for t in study.get_trials()} == {TrialState.RUNNING}
        time.sleep(3 * 1 + 1.5)
        fail_stale(study)  # what a driver does before each ask
        states = {t.number: t.state for t in study.get_trials()}
        assert states[live.number] == TrialState.RUNNING
        assert states[dead.number] == states[unbeaten.number] == states[undrawn.number] == TrialState.FAIL
        retries = {t.user_attrs["retry_of"]: t for t in study.get_trials() if t.state == TrialState.WAITING}
        assert sorted(retries) == [dead.number, unbeaten.number]
        for failed in (dead, unbeaten):
            assert retries[failed.number].user_attrs == {"retry_of": failed.number, "work_of": failed.number}
            assert retries[failed.number].system_attrs["fixed_params"] == failed.params
        silent_for = "went silent (no heartbeat for 3 s): marked FAILED"
        assert sorted(heard) == [*(f"trial {t.number:3d} of driver host:{t.number} {silent_for}, queued again"
                                   for t in (dead, unbeaten)),
                                 f"trial {undrawn.number:3d} of driver host:{undrawn.number} {silent_for}, it had "
                                 "drawn no parameters: nothing to queue"]
    finally:
        beating.stop()
    assert redacted(store_server.storage).count("***") == 1 and store_server.env["STORE_PG_PASSWORD"] not in \
        redacted(store_server.storage)
