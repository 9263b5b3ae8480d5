"""Hyperparameter search: space errors, resume after SIGKILL, overlapping parallel trials, champion promotion."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from optuna.trial import TrialState

from jobs.tune import expand_aliases
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.discovery import find_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.tune.search import journal_path, open_storage, study_name, tune
from spark_ml_pipeline.tune.search_space import check_space

TAXI_TUNER = find_pipeline("taxi_fare").tuner

ROOT = Path(__file__).resolve().parents[3]
RUN_DATE = "2026-01-15"
SPACE = {
    "max_depth": {"type": "int", "low": 3, "high": 8, "grid": [4, 6]},
    "learning_rate": {"type": "logfloat", "low": 0.1, "high": 0.3},
    "subsample": {"type": "float", "low": 0.6, "high": 1.0},
    "tree_method": {"type": "categorical", "choices": ["hist", "approx"]},
    "max_bin": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"tree_method": "hist"}},
}


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory, copy_conf):
    """conf/ with a small taxi search space (overrides merge into the file's space, they cannot shrink it)."""
    target = copy_conf(tmp_path_factory.mktemp("tune") / "conf")
    taxi_file = target / "pipelines" / "taxi_fare.yaml"
    taxi = yaml.safe_load(taxi_file.read_text())
    taxi["tune"] = {"n_trials": 4, "parallelism": 2, "budgets": [], "space": SPACE}
    taxi_file.write_text(yaml.safe_dump(taxi))
    return target


def tiny(store_root, *extra):
    return [f"store.root={store_root}", f"run_date={RUN_DATE}", "generate.rows=4000", "generate.months=1",
            "model.n_estimators=24", "model.early_stopping_rounds=10", *extra]


# --- configuration: clear errors naming tune.space.<param> ---------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("tune.space.depth={type: int, low: 10, high: 3}", "key 'tune.space.depth'"),
    ("tune.space.depth={type: integer, low: 1, high: 3}", "key 'tune.space.depth.type'"),
    ("tune.space.eta={type: float, low: 0, high: 1, log: true}", "key 'tune.space.eta'"),
    ("tune.space.eta={type: logfloat, low: -1, high: 1}", "key 'tune.space.eta'"),
    ("tune.space.kind={type: categorical, choices: []}", "key 'tune.space.kind'"),
])
def test_bad_space_is_a_config_error_naming_the_parameter(conf_dir, override, message):
    with pytest.raises(ConfigError) as error:
        load_config("taxi_fare", ["local"], [override], conf_dir)
    assert message in str(error.value)
    details = {"low: 10": "greater than high", "integer": "Input should be", "low: 0": "low > 0",
               "low: -1": "low > 0", "[]": "non-empty 'choices'"}
    assert any(details[k] in str(error.value) for k in details if k in override)


def test_space_targets_and_conditions_are_checked_before_spark(conf_dir):
    for override, message in [
        ("tune.space.depth={type: int, low: 1, high: 3}", "tune.space.depth: key 'model.depth' is not"),
        ("tune.space.max_depth={type: int, low: 3, high: 30}", "tune.space.max_depth: value 30 is not valid"),
        ("tune.space.max_bin={when: {nope: 1}}", "tune.space.max_bin.when: 'nope' is not another parameter"),
    ]:
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            check_space(load_config("taxi_fare", ["local"], [override], conf_dir))


def test_short_overrides_and_study_name_ignore_budget_and_parallelism(conf_dir):
    assert expand_aliases(["parallelism=2", "n_trials=12", "timeout=60", "sampler=grid", "model.max_depth=3"]) == \
        ["tune.parallelism=2", "tune.n_trials=12", "tune.timeout=60", "tune.sampler=grid", "model.max_depth=3"]
    base = load_config("taxi_fare", ["local"], tiny("/tmp/s"), conf_dir)
    more = load_config("taxi_fare", ["local"], tiny("/tmp/s", "tune.n_trials=40", "tune.parallelism=1"), conf_dir)
    other = load_config("taxi_fare", ["local"], tiny("/tmp/s", "model.n_estimators=50"), conf_dir)
    assert study_name(base) == study_name(more) != study_name(other)


# --- resume after SIGKILL -------------------------------------------------------------------------------

def _finished(journal, name):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=name, storage=storage)
    return study, {t.number: (t.params, t.value, t.state.name) for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))}


def test_killed_search_resumes_without_losing_or_repeating_trials(conf_dir, tmp_path):
    # pruner none: one fit per trial (rungs serve the pruner, tested with first_search); resuming is what is tested
    # A budget of 4: killed once 2 trials are COMPLETE (2 more may be running, none beyond), the rerun has the
    # rest, running or not yet started, to finish without repeating any.
    overrides = tiny(tmp_path / "store", "n_trials=4", "parallelism=2", "tune.promote=false", "tune.report=false",
                     "tune.pruner=none", "spark.master=local[2]")
    config = load_config("taxi_fare", ["local"], expand_aliases(map(str, overrides)), conf_dir)
    journal, name = journal_path(config), study_name(config)
    env = {**os.environ, "SML_CONF_DIR": str(conf_dir)}
    command = [sys.executable, "-m", "jobs.tune", "taxi_fare", *map(str, overrides)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.time() + 400
        before = {}
        while time.time() < deadline and process.poll() is None:
            time.sleep(0.5)
            if journal.exists():
                _, before = _finished(journal, name)
                if sum(state == "COMPLETE" for _, _, state in before.values()) >= 2:
                    break
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _, before = _finished(journal, name)  # what the journal held at the kill
        assert 2 <= len(before) < 4
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"{len(before)} of 4 trials already finished" in resumed.stdout
    study, after = _finished(journal, name)
    assert len(after) == 4  # the budget, exactly: nothing lost, nothing run twice
    for number, trial in before.items():
        assert after[number] == trial
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and "WAITING" not in states
    for orphan in [t for t in study.trials if t.user_attrs.get("orphaned")]:  # killed mid-fit: re-run once
        retries = [t for t in study.trials if t.user_attrs.get("retry_of") == orphan.number]
        # The same configuration: every parameter the orphan had drawn (a kill can land between two of its
        # suggestions, each a journal write; the retry then draws the rest).
        assert len(retries) == 1 and orphan.params.items() <= retries[0].params.items()
        assert retries[0].state.name != "FAIL"


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_budget(conf_dir, tmp_path):
    """SIGINT to the process group, as Ctrl-C in a terminal: exit 130 after recording what finished; the
    trial it cut short is queued again, and the re-run completes the budget."""
    overrides = tiny(tmp_path / "store", "n_trials=3", "parallelism=1", "tune.promote=false", "tune.report=false",
                     "tune.pruner=none", "spark.master=local[2]", "model.n_estimators=60")
    config = load_config("taxi_fare", ["local"], expand_aliases(map(str, overrides)), conf_dir)
    journal, name = journal_path(config), study_name(config)
    env = {**os.environ, "SML_CONF_DIR": str(conf_dir)}
    command = [sys.executable, "-m", "jobs.tune", "taxi_fare", *map(str, overrides)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            time.sleep(0.3)
            if journal.exists() and _finished(journal, name)[1]:
                break
        assert process.poll() is None, process.stdout.read()[-3000:]
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output[-3000:]
    assert "interrupted" in output and "re-run the same command to resume" in output
    study, before = _finished(journal, name)
    assert 1 <= len(before) < 3
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states, output[-5000:]  # nothing left looking alive
    cut_short = [t for t in study.trials if t.state.name == "FAIL" and t.user_attrs.get("error") == "interrupted"]
    queued = [t for t in study.trials if t.state.name == "WAITING"]
    # A queued (WAITING) trial carries its parameters as Optuna's fixed_params until it runs.
    assert [t.system_attrs["fixed_params"] for t in queued] == [t.params for t in cut_short]
    client = MlflowClient(Store(config.store).tracking_uri)
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.data.tags["tune_status"] == "interrupted" and parent.info.status == "KILLED"

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    study, after = _finished(journal, name)
    assert len(after) == 3 and all(after[n] == trial for n, trial in before.items())
    for trial in cut_short:
        retries = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
        assert len(retries) == 1 and retries[0].state.name == "COMPLETE"


# --- parallel trials, MLflow child runs, champion promotion ---------------------------------------------

@pytest.fixture(scope="module")
def first_search(spark, conf_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("tune_store")
    config = load_config("taxi_fare", ["local"], tiny(store, "tune.n_trials=4", "tune.parallelism=2"), conf_dir)
    return store, config, tune(spark, config, TAXI_TUNER)


def test_parallel_trials_overlap_and_are_child_runs(first_search, check_report):
    store, config, result = first_search
    assert result.status == "finished" and result.finished == 4
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(config))
    trials = [t for t in study.trials if t.datetime_complete]
    overlapping = [(a.number, b.number) for a in trials for b in trials if a.number < b.number
                   and a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete]
    assert overlapping, [(t.number, t.datetime_start, t.datetime_complete) for t in trials]
    assert {t.user_attrs["num_workers"] for t in trials} == {1}  # 2 slots split between 2 trials
    client = MlflowClient(Store(config.store).tracking_uri)
    children = client.search_runs([client.get_run(result.parent_run_id).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    trial_runs = [r for r in children if r.info.run_name.startswith("trial-")]
    assert len(trial_runs) == len(study.trials)
    assert all("duration_seconds" in r.data.metrics and "max_depth" in r.data.params for r in trial_runs)
    assert Path(result.report).is_file() and Path(result.report).read_text().count("Plotly.newPlot(") >= 5
    assert {"report.html", "optimization_history.png"} <= {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert len(check_report(result.report, screenshot="search_report")) >= 5


def test_champion_moves_only_on_improvement(spark, first_search, tmp_path, copy_conf):
    """Deterministic by construction: a one-point space (nothing left to sampling or thread timing) and boosting
    rounds far apart, so "worse" (2 rounds) and "better" (150) differ from the first (10) by a wide margin."""
    conf_dir = copy_conf(tmp_path / "conf")
    taxi_file = conf_dir / "pipelines" / "taxi_fare.yaml"
    taxi = yaml.safe_load(taxi_file.read_text())
    taxi["tune"] = {"n_trials": 1, "parallelism": 1, "pruner": "none", "report": False,
                    "space": {"max_depth": {"type": "int", "low": 6, "high": 6}}}
    taxi_file.write_text(yaml.safe_dump(taxi))
    store = tmp_path / "store"

    def search(rounds: int):
        return tune(spark, load_config("taxi_fare", ["local"], tiny(store, f"model.n_estimators={rounds}",
                                                                    "model.learning_rate=0.1"), conf_dir), TAXI_TUNER)

    first = search(10)
    client = MlflowClient(Store(first_search[1].store.model_copy(update={"root": str(store)})).tracking_uri)
    assert first.promoted and first.champion_value is None
    assert str(client.get_model_version_by_alias("taxi_fare", "champion").version) == first.model_version

    worse = search(2)
    assert worse.promoted is False and worse.champion_value == pytest.approx(first.test_value, rel=1e-6)
    assert worse.test_value > worse.champion_value
    assert str(client.get_model_version_by_alias("taxi_fare", "champion").version) == first.model_version

    better = search(150)
    assert better.promoted is True and better.test_value < first.test_value
    assert better.champion_value == pytest.approx(first.test_value, rel=1e-6)
    assert str(client.get_model_version_by_alias("taxi_fare", "champion").version) == better.model_version
    parent = client.get_run(better.parent_run_id).data
    assert parent.metrics["test_rmse"] == pytest.approx(better.test_value)
    assert parent.metrics["champion_test_rmse"] == pytest.approx(first.test_value)
