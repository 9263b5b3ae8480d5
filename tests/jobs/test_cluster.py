"""The taxi pipeline submitted with spark-submit to a real Spark standalone cluster on 127.0.0.1."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
PORT, UI_PORT = 7177, 8180  # not the default 7077/8080, so a developer's own cluster is left alone

pytestmark = pytest.mark.cluster


def spark_home():
    import pyspark
    return Path(pyspark.__file__).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SML_CLUSTER_DIR": str(state), "SML_CLUSTER_PORT": str(PORT),
           "SML_CLUSTER_UI_PORT": str(UI_PORT), "SML_CLUSTER_WORKER_MEMORY": "2g",
           "VENV": os.path.relpath(Path(sys.executable).parents[1], ROOT)}
    up = subprocess.run(["bash", "scripts/cluster.sh", "up"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield f"spark://127.0.0.1:{PORT}"
    finally:
        subprocess.run(["bash", "scripts/cluster.sh", "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_spark_submit_runs_the_pipeline_on_the_cluster(cluster, tmp_path):
    py_files = tmp_path / "spark_ml_pipeline.zip"
    subprocess.run([sys.executable, "scripts/build_dist.py", str(py_files)], cwd=ROOT, check=True)
    store = tmp_path / "store"
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", cluster, "--py-files", str(py_files),
               "--conf", f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile="
                         f"{ROOT / 'spark_ml_pipeline/runtime/resources/log4j2.properties'}",
               "jobs/run_pipeline.py", "taxi_fare", "--env", "cluster", f"store.root={store}",
               "run_date=2026-02-01", "generate.rows=20000", "model.n_estimators=150"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "test RMSE" in result.stdout and "noise floor" in result.stdout

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("taxi_fare")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["spark_master"] == cluster
    assert run.data.metrics["rows_in"] == 20000
    assert run.data.metrics["test_rmse"] < 1.5 * run.data.metrics["noise_floor_rmse"]
    model_dir = Path(run.data.tags["model_uri"].removeprefix("file://"))
    assert (model_dir / "metadata").is_dir() and (model_dir / "stages").is_dir()
