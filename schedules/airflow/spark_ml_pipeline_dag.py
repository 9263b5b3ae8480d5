"""Airflow DAGs for spark-ml-pipeline: each job is a spark-submit of the project's jobs/<job>.py.

DAGs (one pipeline, ``SPARK_ML_PIPELINE_NAME``, default taxi_fare):
  spark_ml_pipeline_daily    @daily   ingest -> featurize -> train, and score (independent), --run-date {{ ds }}
  spark_ml_pipeline_search   @weekly  the hyperparameter search (jobs/tune.py), --run-date {{ ds }}
  spark_ml_pipeline_smoke    manual   generate -> ingest, for a quick end-to-end check (tests/schedules/)

Retries follow the jobs' exit codes (docs/scheduling.md): 4 (store/infrastructure) and 5 (locked by another
run of the same date) are retried; 2 (bad configuration) and 3 (bad data) fail the task at once, since a
retry would fail the same way. The jobs lock (pipeline, run date) themselves, so overlapping runs are safe.

Settings (an Airflow Variable of the lower-case name, else the environment variable, else the default):
  SPARK_ML_PIPELINE_HOME          the project checkout (absolute); default: two levels above this file
  SPARK_ML_PIPELINE_SPARK_SUBMIT  absolute path of the project's spark-submit; default <home>/.venv/bin/spark-submit
  SPARK_ML_PIPELINE_PYTHON        the interpreter of driver and executors; default <home>/.venv/bin/python
  SPARK_ML_PIPELINE_NAME          the pipeline (conf/pipelines/<name>.yaml); default taxi_fare
  SPARK_ML_PIPELINE_ARGS          extra job arguments for every task, e.g. "--env cluster store.root=/data/store"
  SPARK_ML_PIPELINE_SCORE_ARGS    the scoring task's input=/output= (and overrides)
The Spark master comes from the ``spark_default`` connection. Define it, e.g.
  AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[2]"}'   (or spark://host:7077, yarn, k8s://...)
without it the provider silently submits with --master yarn.
"""
from __future__ import annotations

import os
import re
import shlex
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2
    from airflow.exceptions import AirflowFailException

# Exit codes of the jobs (spark_ml_pipeline.runtime.errors.ExitCode); this file must not import the project.
EXIT_MEANINGS = {2: "bad configuration", 3: "bad data", 4: "store/infrastructure failure",
                 5: "locked by another run of the same date", 130: "interrupted"}
NOT_RETRIED = frozenset({2, 3})
EXIT_CODE = re.compile(r"Error code is: (\d+)")


def setting(name: str, default: str) -> str:
    """An Airflow Variable (lower-case name), else the environment variable, else ``default``."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(name.lower(), default=None)
        if value:
            return value
    except Exception:  # no metadata database / API at parse time: environment only
        pass
    return os.environ.get(name) or default


HOME = Path(setting("SPARK_ML_PIPELINE_HOME", str(Path(__file__).resolve().parents[2])))
SPARK_SUBMIT = setting("SPARK_ML_PIPELINE_SPARK_SUBMIT", str(HOME / ".venv" / "bin" / "spark-submit"))
PYTHON = setting("SPARK_ML_PIPELINE_PYTHON", str(HOME / ".venv" / "bin" / "python"))
PIPELINE = setting("SPARK_ML_PIPELINE_NAME", "taxi_fare")
LOG4J2 = HOME / "spark_ml_pipeline" / "runtime" / "resources" / "log4j2.properties"
# store.root first, so that one in SPARK_ML_PIPELINE_ARGS (later) wins.
EXTRA_ARGS = [f"store.root={HOME / 'store'}", *shlex.split(setting("SPARK_ML_PIPELINE_ARGS", ""))]
SCORE_ARGS = shlex.split(setting("SPARK_ML_PIPELINE_SCORE_ARGS",
                                 f"input={HOME / 'incoming'} output={HOME / 'predictions'}"))


def exit_code_of(exc: BaseException) -> int | None:
    """The spark-submit exit code in the provider's error ("... Error code is: 3."), if any."""
    match = EXIT_CODE.search(str(exc))
    return int(match.group(1)) if match else None


def retried(exit_code: int | None) -> bool:
    return exit_code not in NOT_RETRIED


class PipelineJobOperator(SparkSubmitOperator):
    """spark-submit of one job; exit codes 2 and 3 fail the task without retries."""

    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as exc:
            code = exit_code_of(exc)
            if not retried(code):
                raise AirflowFailException(
                    f"{self.task_id}: exit code {code} ({EXIT_MEANINGS[code]}): not retried; see the task log "
                    "for the one-line error") from exc
            raise


def job(task_id: str, job_name: str, *args: str) -> PipelineJobOperator:
    return PipelineJobOperator(
        task_id=task_id,
        application=str(HOME / "jobs" / f"{job_name}.py"),
        application_args=[PIPELINE, "--run-date", "{{ ds }}", *EXTRA_ARGS, *args],
        name=f"{PIPELINE}-{task_id}-{{{{ ds }}}}",
        conn_id="spark_default",
        spark_binary=SPARK_SUBMIT,
        # The project's quiet log4j2 settings and JIT option (spark_conf sets them too, but only once the JVM is up).
        conf={"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J2} -XX:-DontCompileHugeMethods",
              "spark.executor.extraJavaOptions": "-XX:-DontCompileHugeMethods"},
        env_vars={"PYTHONPATH": str(HOME), "PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON},
    )


DEFAULT_ARGS = {
    "owner": "spark-ml-pipeline",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
}

with DAG(
    dag_id="spark_ml_pipeline_daily",
    description=f"{PIPELINE}: ingest -> featurize -> train, and batch scoring, per run date",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["spark-ml-pipeline"],
) as daily:
    job("ingest", "ingest") >> job("featurize", "featurize") >> job("train", "train")
    job("score", "score", *SCORE_ARGS)

with DAG(
    dag_id="spark_ml_pipeline_search",
    description=f"{PIPELINE}: weekly hyperparameter search; the champion moves only if the best beats it",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["spark-ml-pipeline"],
) as search:
    job("tune", "tune")

with DAG(
    dag_id="spark_ml_pipeline_smoke",
    description=f"{PIPELINE}: generate -> ingest, triggered by hand (or `airflow dags test`) to check the set-up",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["spark-ml-pipeline"],
) as smoke:
    job("generate", "generate") >> job("ingest", "ingest")
