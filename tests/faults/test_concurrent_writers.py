"""Three writers on ONE store at once (the real PostgreSQL-backed tracking server and Optuna database, one store
root): the taxi_fare pipeline, the penguins_species (tabular) pipeline and a penguins_species search (jobs.tune,
registering and promoting its refit) run as three processes side by side. The search and the penguins pipeline
write to the same experiment. Every run is recorded completely (FINISHED, its metrics and model), nothing is
overwritten (distinct model locations, each run's metrics are the ones its own process printed), and the
registry is consistent (the alias points at a version whose run exists and whose metric is the best)."""
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from pyspark.ml import PipelineModel

from spark_ml_pipeline.runtime.io import to_uri

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = uuid.uuid4().hex[:8]  # the tracking server and the study database are shared by the test session
TAXI_EXPERIMENT, PENGUINS_EXPERIMENT = f"concurrent_taxi_{SUFFIX}", f"concurrent_penguins_{SUFFIX}"
MODEL, STUDY = f"concurrent_penguins_{SUFFIX}", f"concurrent_penguins_{SUFFIX}"
# The pipeline runs register their models too, each under its own name: the alias test is about the search's.
TAXI_RUN_MODEL, PENGUINS_RUN_MODEL = f"concurrent_taxi_run_{SUFFIX}", f"concurrent_penguins_run_{SUFFIX}"
# report.enabled=false: no report is asserted here, and its figures cost each process CPU the other two want.
SMALL = ["spark.master=local[1]", "spark.shuffle_partitions=2", "spark.driver_memory=1g", "model.n_estimators=20",
         "report.enabled=false"]
TAXI_ROWS = 3000


def commands(store, server):
    common = [f"store.root={store}", f"store.tracking_uri={server.tracking_uri}", *SMALL]
    return {
        "taxi": ["jobs.run_pipeline", "taxi_fare", *common, f"store.experiment={TAXI_EXPERIMENT}",
                 "run_date=2026-03-01", f"generate.rows={TAXI_ROWS}", "generate.months=1", "model.num_workers=1",
                 f"registry.name={TAXI_RUN_MODEL}"],
        "penguins": ["jobs.run_pipeline", "penguins_species", *common, f"store.experiment={PENGUINS_EXPERIMENT}",
                     "run_date=2026-03-01", f"registry.name={PENGUINS_RUN_MODEL}"],
        # Another run date: a search re-ingests its date, which must not be the pipeline's (docs/store.md).
        "search": ["jobs.tune", "penguins_species", *common, f"store.experiment={PENGUINS_EXPERIMENT}",
                   "run_date=2026-03-02", "n_trials=2", "tune.pruner=none", "tune.report=false",
                   f"tune.storage={server.storage}", f"tune.study_name={STUDY}", f"registry.name={MODEL}"],
    }


@pytest.fixture(scope="module")
def three_writers(store_server, tmp_path_factory):
    store = tmp_path_factory.mktemp("concurrent-store")
    logs = tmp_path_factory.mktemp("concurrent-logs")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    processes = {}
    for name, command in commands(store, store_server).items():
        with open(logs / f"{name}.out", "w") as out, open(logs / f"{name}.err", "w") as err:
            processes[name] = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=out,
                                               stderr=err)
    try:
        codes = {name: process.wait(timeout=900) for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    outputs = {name: ((logs / f"{name}.out").read_text(), (logs / f"{name}.err").read_text()) for name in processes}
    assert codes == {"taxi": 0, "penguins": 0, "search": 0}, {n: o[1][-3000:] for n, o in outputs.items()}
    return store, {name: out for name, (out, _) in outputs.items()}


def printed(pattern, text):
    found = re.search(pattern, text)
    assert found, text[-3000:]
    return found.groups()


def test_every_run_is_recorded_whole_and_its_own(spark, three_writers, store_server):
    store, out = three_writers
    client = MlflowClient(store_server.tracking_uri)
    taxi_id, = printed(r"MLflow run ([0-9a-f]{32})", out["taxi"])
    penguins_id, = printed(r"MLflow run ([0-9a-f]{32})", out["penguins"])
    parent_id, = printed(r"MLflow parent run ([0-9a-f]{32})", out["search"])
    taxi, penguins, parent = (client.get_run(i) for i in (taxi_id, penguins_id, parent_id))
    # They did run at once: every two of them overlapped in time.
    spans = [(r.info.start_time, r.info.end_time) for r in (taxi, penguins, parent)]
    assert all(a[0] < b[1] and b[0] < a[1] for a in spans for b in spans if a is not b), spans

    # Every run of both experiments is finished: none failed or left RUNNING.
    runs = {r.info.run_id: r for e in (TAXI_EXPERIMENT, PENGUINS_EXPERIMENT)
            for r in client.search_runs([client.get_experiment_by_name(e).experiment_id])}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    trials = [r for r in runs.values() if r.info.run_name.startswith("trial-")]
    [refit] = [r for r in runs.values() if r.data.tags.get("kind") == "refit"]
    assert len(runs) == 1 + 1 + 1 + len(trials) + 1 and len(trials) == 2  # taxi, penguins, search, trials, refit

    # Each run's metrics are the ones its own process computed and printed.
    rmse, = printed(r"test RMSE ([\d.]+)", out["taxi"])
    accuracy, = printed(r"test accuracy ([\d.]+)", out["penguins"])
    assert f"{taxi.data.metrics['test_rmse']:.3f}" == rmse and taxi.data.metrics["rows_in"] == TAXI_ROWS
    assert f"{penguins.data.metrics['test_accuracy']:.4f}" == accuracy and penguins.data.metrics["rows_in"] == 344
    assert "test_accuracy" not in taxi.data.metrics and "test_rmse" not in penguins.data.metrics
    assert taxi.data.tags["pipeline"] == "taxi_fare" and penguins.data.tags["pipeline"] == "penguins_species"
    assert taxi.data.tags["run_date"] == penguins.data.tags["run_date"] == "2026-03-01"
    for run, model in ((taxi, TAXI_RUN_MODEL), (penguins, PENGUINS_RUN_MODEL)):  # each the first of its name
        assert (run.data.tags["promoted"], run.data.tags["model_version"]) == ("true", "1")
        assert client.get_model_version_by_alias(model, "champion").run_id == run.info.run_id
    assert refit.data.tags["run_date"] == "2026-03-02" and refit.data.tags["mlflow.parentRunId"] == parent_id
    test_value, = printed(r"test ([\d.]+) · champion before", out["search"])
    test_metric = "test_log_loss"  # what a classifier's search compares (pipelines/tabular/tuner.py), minimized
    assert refit.data.metrics[test_metric] == pytest.approx(parent.data.metrics[test_metric])
    assert f"{refit.data.metrics[test_metric]:.4f}" == test_value

    # The trials' results: the study's, each in its own run.
    study = optuna.load_study(study_name=STUDY, storage=store_server.storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2 and len(study.trials) == 2
    for trial in complete:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna.trial"] == str(trial.number)
        assert run.data.metrics["validation_mlogloss"] == pytest.approx(trial.value)  # multiclass: XGBoost's mlogloss

    # Three models, three places, each whole and loadable; nothing half-written left.
    committed = {r.info.run_id: r.data.tags["model_uri"] for r in (taxi, penguins, refit)}
    assert all(r.data.tags["model_committed"] == "true" for r in (taxi, penguins, refit))
    assert len(set(committed.values())) == 3
    for run_id, uri in committed.items():
        experiment = TAXI_EXPERIMENT if run_id == taxi_id else PENGUINS_EXPERIMENT
        assert uri == f"{to_uri(store)}/models/{experiment}/{run_id}/model"
        assert len(PipelineModel.load(uri).stages) > 1
    assert not list((store / "models").rglob(".model.*")) and not list((store / "locks").rglob("*.lock"))


def test_the_alias_points_at_the_best_existing_version(three_writers, store_server):
    client = MlflowClient(store_server.tracking_uri)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "refit"
    assert champion.tags["model_uri"] == run.data.tags["model_uri"]
    # test_log_loss, minimized: the version tag holds what the promotion compared, the run what the refit logged
    assert float(champion.tags["test_log_loss"]) == min(float(v.tags["test_log_loss"]) for v in versions)
    assert float(champion.tags["test_log_loss"]) == pytest.approx(run.data.metrics["test_log_loss"], abs=1e-6)
    assert champion.tags["promoted"] == "true"
