"""The disk fills up while a search's refit saves its model: the run fails with one line naming the location
(exit 4), is FAILED in MLflow with no model, nothing half-written stays, and the champion (the registry alias)
is untouched and still loads and scores. The models directory is a small tmpfs of its own (root can mount one),
filled to a few KB before the save; where no tmpfs can be mounted, the experiment's models directory is made
read-only instead (chattr +i as root, whom modes do not stop)."""
import os
import subprocess
import uuid

import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel

from features.taxi import LABEL
from pipelines.taxi_fare import train as taxi_train
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.discovery import find_pipeline
from spark_ml_pipeline.runtime.io import to_uri
from spark_ml_pipeline.store.registry import model_location
from spark_ml_pipeline.train.metrics import regression_metrics
from spark_ml_pipeline.tune.search import tune

SUFFIX = uuid.uuid4().hex[:8]  # the tracking server is shared by the test session
EXPERIMENT, MODEL = f"faults_write_{SUFFIX}", f"faults_write_{SUFFIX}"
ROOT_USER = os.geteuid() == 0


def overrides(store, server):
    return [f"store.root={store}", f"store.tracking_uri={server.tracking_uri}", f"store.experiment={EXPERIMENT}",
            f"registry.name={MODEL}", "run_date=2026-01-15", "generate.rows=3000", "generate.months=1",
            "model.n_estimators=20", "spark.master=local[2]", "spark.shuffle_partitions=2"]


def tree(directory):
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def champion(spark, store_server, tmp_path_factory, copy_conf):
    """A search (one trial) whose refit became the champion, its model on the models directory."""
    conf_dir = copy_conf(tmp_path_factory.mktemp("write-failure") / "conf")
    taxi_file = conf_dir / "pipelines" / "taxi_fare.yaml"
    taxi = yaml.safe_load(taxi_file.read_text())
    taxi["tune"] = {"n_trials": 1, "parallelism": 1, "pruner": "none", "report": False,
                    "space": {"max_depth": {"type": "int", "low": 6, "high": 6}}}
    taxi_file.write_text(yaml.safe_dump(taxi))
    store = tmp_path_factory.mktemp("write-failure-store")
    models = store / "models"
    models.mkdir()
    mounted = ROOT_USER and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(models)],
                                           capture_output=True).returncode == 0
    try:
        config = load_config("taxi_fare", ["local"], overrides(store, store_server), conf_dir)
        result = tune(spark, config, find_pipeline("taxi_fare").tuner)
        assert result.promoted and result.model_version == "1"
        yield conf_dir, store, config, result, mounted
    finally:
        if mounted:
            if subprocess.run(["umount", str(models)]).returncode != 0:
                subprocess.run(["umount", "-l", str(models)], check=False)


def break_models_directory(models, experiment_dir, mounted):
    """The tmpfs filled to 40 KB free (the model needs ~200 KB: the save starts, then ENOSPC). Otherwise: the
    experiment's models directory read-only (the run's directory cannot be made)."""
    if mounted:
        free = os.statvfs(models).f_bavail * os.statvfs(models).f_frsize
        filler = models / ".filler"
        with open(filler, "wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, free - 40 * 1024)
        return lambda: filler.unlink()
    experiment_dir.chmod(0o555)
    if ROOT_USER:
        subprocess.run(["chattr", "+i", str(experiment_dir)], check=True)

    def undo():
        if ROOT_USER:
            subprocess.run(["chattr", "-i", str(experiment_dir)], check=False)
        experiment_dir.chmod(0o755)
    return undo


def test_disk_full_while_saving_keeps_the_champion(spark, champion, store_server, run_job):
    conf_dir, store, config, first, mounted = champion
    client = MlflowClient(store_server.tracking_uri)
    models = store / "models"
    experiment_dir = models / EXPERIMENT
    before = tree(experiment_dir)
    champion_version = client.get_model_version_by_alias(MODEL, "champion")
    parent_run = first.parent_run_id

    undo = break_models_directory(models, experiment_dir, mounted)
    try:
        # The same command again: the budget is met, so it goes straight to the refit and its save.
        done = run_job("jobs.tune", "taxi_fare", *overrides(store, store_server), env={"SML_CONF_DIR": str(conf_dir)})
    finally:
        undo()

    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-3000:]
    line = done.error_line()
    refit_id = line.split("the model of run ", 1)[1].split()[0]
    target = f"{to_uri(experiment_dir)}/{refit_id}/model"
    assert line.startswith(f"error: the model of run {refit_id} could not be written to {target} ("), line
    assert line.endswith("; nothing was committed")
    if mounted:
        assert line.endswith("(java.io.IOException: No space left on device); nothing was committed")
    # The failed run: FAILED, no model recorded, nothing of it on disk (no temporary, no empty directory).
    refit = client.get_run(refit_id)
    assert refit.info.status == "FAILED" and refit.data.tags.get("model_committed") is None
    assert refit.data.tags["kind"] == "refit" and "model_uri" not in refit.data.tags
    assert not (experiment_dir / refit_id).exists()
    assert tree(experiment_dir) == before  # the champion's files, byte for byte where they were
    assert not list(experiment_dir.glob("*/.model.*"))  # no temporary (.model.tmp-*) nor set-aside model
    search = client.get_run(parent_run)
    assert search.info.status == "FAILED" and search.data.tags["tune_status"] == "failed"
    # The registry: no new version, the alias where it was; the champion loads and scores as when promoted.
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert [v.version for v in versions] == ["1"]
    now = client.get_model_version_by_alias(MODEL, "champion")
    assert now.version == champion_version.version == "1" and now.run_id == champion_version.run_id
    assert client.get_run(now.run_id).info.status == "FINISHED"
    splits, _ = taxi_train.split_trips(spark, config)
    scored = PipelineModel.load(model_location(now)).transform(splits.test)
    assert regression_metrics(scored, LABEL)["rmse"] == pytest.approx(first.test_value, rel=1e-6)
    assert float(now.tags["test_rmse"]) == pytest.approx(first.test_value, abs=1e-6)
