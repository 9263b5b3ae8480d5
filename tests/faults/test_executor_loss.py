"""An executor JVM SIGKILLed in the middle of the XGBoost fit on the standalone cluster (spark-submit through
scripts/submit.sh, the real tracking server). XGBoost trains in one barrier stage, which Spark does not retry
when a task is lost; the fit itself is retried once (spark_ml_pipeline.train.xgboost.fit_pipeline):

* killed once: the second fit runs on the executor the master started in its place; the run completes, the run
  records the retry, and its model is committed;
* killed in both attempts: one line naming the cluster and the loss, exit code 4; the MLflow run is FAILED (never
  left RUNNING) and no model, partial or whole, is in the store.

The kill waits for the barrier stage to be running on both executors (the driver's REST API: an active stage
of the fit's jobs, described by FIT_DESCRIPTION, with a task per XGBoost worker). Under spark-submit the driver's
Python writes stdout and stderr into spark-submit's stdout (Spark's PythonRunner merges them); spark-submit's
stderr is the JVM's log."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.train.xgboost import FIT_DESCRIPTION

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2  # XGBoost workers: one per executor of the two one-core cluster workers
ROWS = 8000
LOST = r"ExecutorLostFailure \(executor \d+ exited [^)]*\) Reason: Command exited with code 137"


@pytest.fixture(scope="module")
def submitted(cluster, store_server, tmp_path_factory):
    """``submit(experiment, log_dir)``: scripts/submit.sh of the taxi pipeline with its driver's UI (REST API) on
    a port of its own, all runs on one store root (the data generated once)."""
    work = tmp_path_factory.mktemp("executor-loss")
    py_files = work / "spark_ml_pipeline.zip"
    subprocess.run([sys.executable, "scripts/build_dist.py", str(py_files)], cwd=ROOT, check=True,
                   capture_output=True)
    store = work / "store"

    def submit(experiment: str, log_dir: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ui_port = probe.getsockname()[1]
        env = {**os.environ, "MASTER": cluster, "PY_FILES": str(py_files), "STORE_ROOT": str(store),
               "PIPELINE": "taxi_fare", "SML_ENV": "cluster", "PYSPARK_PYTHON": sys.executable,
               "TRACKING_URI": store_server.tracking_uri}
        command = ["bash", "scripts/submit.sh", "run_date=2026-02-01", f"generate.rows={ROWS}", "generate.months=1",
                   f"store.experiment={experiment}", f"model.num_workers={WORKERS}", "model.n_estimators=500",
                   "model.early_stopping_rounds=null", "spark.ui=true", "report.enabled=false",  # none checked
                   # the second fit waits for the master's new executor: check for free slots every 2 s, not 15
                   f"spark.extra={{spark.ui.port: '{ui_port}', "
                   "spark.scheduler.barrier.maxConcurrentTasksCheck.interval: 2s}"]
        out, err = open(log_dir / "stdout", "w"), open(log_dir / "stderr", "w")
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
        drivers.append(Driver(process, ui_port, log_dir))
        return drivers[-1]

    drivers = []
    yield store, submit
    for driver in drivers:  # a failed test's driver must not hold the run lock for the next one
        if driver.process.poll() is None:
            os.killpg(driver.process.pid, signal.SIGKILL)
            driver.process.wait()


class Driver:
    def __init__(self, process, ui_port, log_dir):
        self.process, self.ui_port, self.log_dir = process, ui_port, log_dir
        self.app = None
        self.stage = None  # (stage id, attempt) of the barrier stage found last

    def output(self):
        """(the driver's Python output, stdout and stderr merged; the JVM's log)"""
        return (self.log_dir / "stdout").read_text(), (self.log_dir / "stderr").read_text()

    def _get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/api/v1/applications{path}", timeout=3) as r:
            return json.load(r)

    def barrier_stage(self, not_in=(), timeout=400) -> int:
        """The id of a running stage of the XGBoost fit with all its barrier tasks active."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process.poll() is None, "the driver ended before its barrier stage:\n" + "\n".join(self.output())[-5000:]
            try:
                self.app = self.app or self._get("")[0]["id"]
                # Of the fit's jobs (the repartition's shuffle runs as jobs of its own, with as many tasks),
                # XGBoost's barrier stage is the one collected to Python (xgboost.spark's rdd.barrier()...collect()).
                for stage in self._get(f"/{self.app}/stages?status=active"):
                    if ((stage.get("description") or "").startswith(FIT_DESCRIPTION)
                            and "PythonRDD.collectAndServe" in stage.get("details", "")
                            and stage["numTasks"] == WORKERS and stage["numActiveTasks"] == WORKERS
                            and stage["stageId"] not in not_in):
                        self.stage = (stage["stageId"], stage["attemptId"])
                        return stage["stageId"]
            except (OSError, ValueError, IndexError, KeyError):  # the UI is not up yet
                pass
            time.sleep(0.3)
        pytest.fail("no running barrier stage within the timeout:\n" + self.output()[1][-3000:])

    def executors(self) -> dict[str, int]:
        """This application's executor JVMs (the application id is on their command line): executor id -> pid."""
        found = {}
        for proc in Path("/proc").iterdir():
            try:
                command = [arg.decode() for arg in (proc / "cmdline").read_bytes().split(b"\0")]
            except (OSError, UnicodeDecodeError):
                continue
            if ("org.apache.spark.executor.CoarseGrainedExecutorBackend" in command and self.app in command
                    and "--executor-id" in command):
                found[command[command.index("--executor-id") + 1]] = int(proc.name)
        return found

    def kill_an_executor(self) -> int:
        """SIGKILL the JVM of an executor running a task of the barrier stage; its pid."""
        time.sleep(1)  # inside the boosting rounds
        stage, attempt = self.stage
        tasks = self._get(f"/{self.app}/stages/{stage}/{attempt}/taskList")
        running = sorted(t["executorId"] for t in tasks if t["status"] == "RUNNING")
        assert running, tasks
        pid = self.executors()[running[0]]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait(self, timeout=600):
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def the_run(client, experiment):
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def test_executor_killed_once_the_fit_is_retried_and_the_run_completes(submitted, store_server, cluster, tmp_path):
    store, submit = submitted
    experiment = f"faults_executor_once_{uuid.uuid4().hex[:6]}"
    driver = submit(experiment, tmp_path)
    driver.barrier_stage()
    killed = driver.kill_an_executor()
    code = driver.wait()
    out, log = driver.output()
    assert code == 0, out[-5000:] + log[-3000:]
    assert re.search(rf"^warning: XGBoost fit attempt 1 of 2 lost an executor on {re.escape(cluster)} \({LOST}\); "
                     "fitting again$", out, re.MULTILINE), out[-3000:]
    assert "Traceback" not in out
    assert killed not in driver.executors().values()
    client = MlflowClient(store_server.tracking_uri)
    run = the_run(client, experiment)
    assert run.info.status == "FINISHED" and run.data.tags["fit_retries"] == "1"
    assert re.fullmatch(LOST, run.data.tags["fit_retry_reason"])
    assert run.data.metrics["rows_in"] == ROWS and f"MLflow run {run.info.run_id}" in out
    assert run.data.metrics["test_r2"] > 0.9  # a real model, fitted whole by the second attempt
    model = Path(run.data.tags["model_uri"].removeprefix("file://"))
    assert run.data.tags["model_committed"] == "true" and model.is_relative_to(store / "models" / experiment)
    assert (model / "metadata").is_dir() and (model / "stages").is_dir()


def test_executor_killed_in_every_attempt_fails_cleanly(submitted, store_server, cluster, tmp_path, error_line):
    store, submit = submitted
    experiment = f"faults_executor_twice_{uuid.uuid4().hex[:6]}"
    driver = submit(experiment, tmp_path)
    first = driver.barrier_stage()
    driver.kill_an_executor()
    driver.barrier_stage(not_in={first})  # the second fit, on the executor started in place of the lost one
    driver.kill_an_executor()
    code = driver.wait()
    out, log = driver.output()
    assert code == 4, out[-5000:] + log[-3000:]
    assert re.fullmatch(rf"error: Spark cluster {re.escape(cluster)}: an executor was lost during the XGBoost fit's "
                        rf"barrier stage in each of 2 attempt\(s\) \({LOST}\)", error_line(out)), out[-3000:]
    client = MlflowClient(store_server.tracking_uri)
    run = the_run(client, experiment)
    assert run.info.status == "FAILED" and "model_committed" not in run.data.tags
    assert run.data.tags["fit_retries"] == "1"  # the first loss was recorded before the second
    models = store / "models" / experiment
    assert not models.exists() or not any(models.rglob("*")), sorted(models.rglob("*"))  # nothing, not even a temp

