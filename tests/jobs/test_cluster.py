"""The taxi pipeline submitted with spark-submit to a real Spark standalone cluster on 127.0.0.1."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.cluster


def test_the_submit_script_runs_the_pipeline_on_the_cluster(cluster, store_server, tmp_path):
    """scripts/submit.sh is the exact command of the compose `submit` service; here against a real cluster and
    the real PostgreSQL-backed tracking server: executors write the model to the store root, the run points at it."""
    py_files = tmp_path / "spark_ml_pipeline.zip"
    subprocess.run([sys.executable, "scripts/build_dist.py", str(py_files)], cwd=ROOT, check=True)
    store = tmp_path / "store"
    env = {**os.environ, "MASTER": cluster, "PY_FILES": str(py_files), "STORE_ROOT": str(store),
           "PIPELINE": "taxi_fare", "SML_ENV": "cluster", "PYSPARK_PYTHON": sys.executable,
           "TRACKING_URI": store_server.tracking_uri}
    result = subprocess.run(["bash", "scripts/submit.sh", "run_date=2026-02-01", "generate.rows=20000",
                             "store.experiment=taxi_fare_on_cluster", "registry.name=taxi_fare_on_cluster",
                             "model.n_estimators=150"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "test RMSE" in result.stdout and "noise floor" in result.stdout

    client = MlflowClient(store_server.tracking_uri)
    experiment = client.get_experiment_by_name("taxi_fare_on_cluster")  # the server is shared by the session
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["spark_master"] == cluster
    assert run.data.metrics["rows_in"] == 20000
    assert run.data.metrics["test_rmse"] < 1.5 * run.data.metrics["noise_floor_rmse"]
    model_dir = Path(run.data.tags["model_uri"].removeprefix("file://"))
    assert model_dir.is_relative_to(store / "models")  # written by the executors to the shared store root
    assert (model_dir / "metadata").is_dir() and (model_dir / "stages").is_dir()
    # Registered in the same store: the first version, the champion that jobs.score loads by default.
    assert "registry taxi_fare_on_cluster@champion" in result.stdout and "promoted (model version 1)" in result.stdout
    champion = client.get_model_version_by_alias("taxi_fare_on_cluster", "champion")
    assert champion.run_id == run.info.run_id and champion.tags["model_uri"] == run.data.tags["model_uri"]
