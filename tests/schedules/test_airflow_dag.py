"""The Airflow DAGs, for real: Airflow in its own virtual environment (never the project's: it conflicts with
TensorFlow/protobuf, and the Spark provider's pyspark-client would overwrite pyspark), built once and cached by
schedules/airflow/airflow_venv.sh. Then: the metadata DB (sqlite), no import errors, the exit-code policy, and
`airflow dags test` of the smoke DAG, whose SparkSubmitOperators run the project's spark-submit end to end."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "schedules" / "airflow"
DAG_FILE = DAGS / "spark_ml_pipeline_dag.py"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """``airflow(*args)`` runs the Airflow CLI of the cached venv with AIRFLOW_HOME in a temporary directory."""
    started = time.time()
    built = subprocess.run(["bash", str(DAGS / "airflow_venv.sh")], capture_output=True, text=True, timeout=900,
                           env={**os.environ, "AIRFLOW_PYTHON": getattr(sys, "_base_executable", sys.executable)})
    assert built.returncode == 0, built.stderr[-3000:]
    venv = Path(built.stdout.strip().splitlines()[-1])
    print(f"airflow venv {venv} ready in {time.time() - started:.0f} s")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not key.startswith("AIRFLOW")}
    env.update({
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "SPARK_ML_PIPELINE_SPARK_SUBMIT": str(SPARK_SUBMIT),
        "SPARK_ML_PIPELINE_PYTHON": sys.executable,
        "SPARK_ML_PIPELINE_ARGS": f"store.root={home / 'store'} generate.rows=2000 generate.months=1 "
                                  "spark.driver_memory=1g spark.shuffle_partitions=2",
        "SPARK_LOCAL_IP": "127.0.0.1",
    })

    def run(*args, timeout=300, check=True, **extra_env):
        done = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=home, env={**env, **extra_env},
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0 or not check, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return done

    migrated = run("airflow", "db", "migrate")
    assert "Database migration done" in migrated.stdout + migrated.stderr
    run.home = home
    return run


def json_line(output: str):
    """The JSON document among Airflow's log lines (which also start with timestamps and '[')."""
    return next(json.loads(line) for line in output.splitlines() if line.startswith(("[]", "[{")))


def test_dags_import_without_errors(airflow, tmp_path):
    broken = tmp_path / "broken_dag.py"  # the check itself does see an import error
    broken.write_text(DAG_FILE.read_text() + "\nundefined_name\n")
    [error] = json_line(airflow("airflow", "dags", "list-import-errors", "--local", "-o", "json",
                                check=False, AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path)).stdout)
    assert "NameError: name 'undefined_name' is not defined" in error["error"]

    assert json_line(airflow("airflow", "dags", "list-import-errors", "--local", "-o", "json").stdout) == []
    listed = json_line(airflow("airflow", "dags", "list", "--local", "-o", "json").stdout)
    dag_ids = sorted(d["dag_id"] for d in listed)
    assert dag_ids == ["spark_ml_pipeline_daily", "spark_ml_pipeline_search", "spark_ml_pipeline_smoke"]


CHECK_POLICY = r"""
import runpy, sys
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

dag_file = runpy.run_path(sys.argv[1])
daily = dag_file["daily"]
assert [t.task_id for t in daily.topological_sort()][:3] == ["ingest", "featurize", "train"], daily.task_ids
assert sorted(daily.task_dict["train"].upstream_task_ids) == ["featurize"]
ingest = daily.task_dict["ingest"]
assert ingest.application_args[:3] == ["taxi_fare", "--run-date", "{{ ds }}"], ingest.application_args
assert ingest._spark_binary == sys.argv[2] and ingest._conn_id == "spark_default", ingest._spark_binary
assert ingest.retries == 3 and dag_file["search"].schedule == "@weekly" and daily.schedule == "@daily"
assert daily.task_dict["score"].application.endswith("jobs/score.py")

for code, retried in [(2, False), (3, False), (4, True), (5, True), (1, True)]:
    def fail(self, context, code=code):
        raise AirflowException(f"Cannot execute: spark-submit jobs/ingest.py. Error code is: {code}.")
    SparkSubmitOperator.execute = fail
    try:
        ingest.execute({})
    except AirflowFailException as exc:
        assert not retried and f"exit code {code}" in str(exc), exc
    except AirflowException as exc:
        assert retried, code
print("policy ok")
"""


def test_retries_follow_the_exit_codes(airflow):
    done = airflow("python", "-c", CHECK_POLICY, str(DAG_FILE), str(SPARK_SUBMIT))
    assert "policy ok" in done.stdout


def test_dag_runs_spark_submit_end_to_end(airflow):
    started = time.time()
    done = airflow("airflow", "dags", "test", "spark_ml_pipeline_smoke", "2026-01-15", timeout=600)
    seconds = time.time() - started
    log = done.stdout + done.stderr
    assert "Spark-Submit cmd:" in log and "--master local[2]" in log
    assert "--run-date 2026-01-15" in log
    assert "DagRun Finished: dag_id=spark_ml_pipeline_smoke" in log and "state=success" in log, log[-5000:]
    store = airflow.home / "store"
    stats = json.loads((store / "data" / "taxi_fare" / "ingest" / "run_date=2026-01-15" / "_ingest.json").read_text())
    assert stats["rows_in"] == 2000 and stats["rows_valid"] + stats["rows_quarantined"] == 2000
    assert not list((store / "locks").rglob("*.lock"))  # released by both jobs
    print(f"airflow dags test: {seconds:.0f} s")
