"""A rank SIGKILLed mid-epoch (two ranks, real Spark and TensorFlow, on Horovod and on tf_distribute), in local
mode and on a standalone cluster (where this file is also the driver: ``python tests/faults/test_rank_kill.py``).

The fit fails at the job boundary with one line and exit code 4, its MLflow run is FAILED and no model is
visible; rerunning the same fit resumes after the last checkpoint and trains only the remaining epochs."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.runtime.cli import Job
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ExitCode
from spark_ml_pipeline.runtime.io import local_path
from spark_ml_pipeline.runs.keras_run import train_and_record
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.train.deep_learning import Prepared, work_location
from spark_ml_pipeline.train.keras_rank import CHECKPOINT_STATE, PROGRESS_LOG
from spark_ml_pipeline.train.tf_distribute_launch import WORKER_MODULE

EPOCHS, KILLED_IN_EPOCH, BATCH = 4, 3, 16  # SIGKILL once epoch 2's checkpoint is written: epoch 3 is running
ROWS = 16_000  # 450 steps per rank and epoch: about a second, so the kill lands well inside epoch 3


def prepared(spark) -> Prepared:
    """Synthetic regression rows, so the fit takes seconds; the configuration is a real Keras pipeline's."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 0.1 * rng.normal(size=ROWS)).astype("float32")
    rows = pd.DataFrame({"features": list(x), "label": y, "is_validation": np.arange(ROWS) % 10 == 0})
    frame = spark.createDataFrame(rows, "features array<float>, label float, is_validation boolean")
    return Prepared(train=frame, tests={}, input_shape=(8,), label_column="label", label_shape=(),
                    label_dtype="float32", output_shape=(1,), output_activation=None, loss="mse", metrics=(),
                    input_files=[])


FIT_MARKER = "SML_TEST_HOROVOD_FIT"  # in a cluster fit's environment, which the ranks inherit


def rank_number(process: psutil.Process) -> int | None:
    """The rank a process is, on either backend (None: not a rank)."""
    command = process.cmdline()
    if "horovod.spark.task.gloo_exec_fn" in command:
        return int(process.environ()["HOROVOD_RANK"])
    if WORKER_MODULE in command:
        return int(json.loads(process.environ()["TF_CONFIG"])["task"]["index"])
    return None


def rank_processes(marker: str | None = None) -> dict[int, psutil.Process]:
    """This test's ranks, by rank (other sessions run fits too): descendants of this process, or on a cluster
    (whose executors are not) the processes whose environment carries ``FIT_MARKER=marker``."""
    ranks = {}
    candidates = psutil.process_iter() if marker else psutil.Process().children(recursive=True)
    for process in candidates:
        try:
            rank = rank_number(process)
            if rank is not None and (marker is None or process.environ().get(FIT_MARKER) == marker):
                ranks[rank] = process
        except (psutil.Error, KeyError, ValueError):
            continue
    return ranks


def kill_rank_during_epoch(progress_log, epoch: int, rank: int, happened: dict, marker: str | None = None,
                           timeout: float = 300) -> None:
    """Once rank 0 has logged epoch ``epoch - 1`` (its checkpoint is written before the line), SIGKILL ``rank``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = progress_log.read_text().splitlines() if progress_log.exists() else []
        if len(lines) >= epoch - 1:
            target = rank_processes(marker).get(rank)
            if target is not None:
                target.send_signal(signal.SIGKILL)
                happened.update(pid=target.pid, lines_when_killed=len(lines))
                return
        time.sleep(0.02)
    happened["timeout"] = True


def job(spark, config, data, results: list) -> int:
    """The fit as the job CLI runs it: through Job.run, which maps what escapes to one line and an exit code."""
    def body():
        results.append(train_and_record(spark, config, data, evaluate=lambda scored: {}, test_metric="accuracy",
                                        test_direction="maximize"))
    return Job(argparse.Namespace()).run(body)


def fit_config(store_root, env: str = "local", master: str | None = None, backend: str = "horovod"):
    config = load_config("fashion_mnist", [env], [f"training.backend={backend}",
        f"store.root={store_root}", "model=mlp", "models.mlp.hidden=[16]", "models.mlp.dropout=0.0",
        f"training.epochs={EPOCHS}", f"training.batch_size={BATCH}", "training.num_proc=2",
        "training.threads_per_rank=1", "training.early_stopping_patience=0", "run_date=2026-03-01",
        "registry.promote_runs=false",  # the fits' test sets are not evaluated here: nothing to judge them by
        *([f"spark.master={master}"] if master else [])])
    if os.environ.get("PYTHONPATH"):  # executors import this checkout's code, like the driver
        config.spark.extra["spark.executorEnv.PYTHONPATH"] = os.environ["PYTHONPATH"]
    return config


def killed_message(backend: str, rank: int) -> str:
    """The error's words for a SIGKILLed rank: each backend's name, and how its exit code reads (a shell's 128 + 9
    under Horovod's launcher, the child process's -9 under tf_distribute's)."""
    name, code = {"horovod": ("Horovod", "137"), "tf_distribute": ("tf_distribute", "-9")}[backend]
    return rf"{name} rank {rank} of 2 was killed by SIGKILL \(exit code {code}\)"


@pytest.mark.parametrize("backend", ["horovod", "tf_distribute"])
def test_sigkilled_rank_fails_in_one_line_and_a_rerun_resumes_after_the_last_checkpoint(spark, tmp_path, capsys,
                                                                                         backend):
    config = fit_config(tmp_path / "store", backend=backend)
    data = prepared(spark)
    work = local_path(work_location(config))  # derived from the configuration: the rerun finds it
    progress_log = work / "checkpoints" / PROGRESS_LOG
    killed: dict = {}
    killer = threading.Thread(target=kill_rank_during_epoch, args=(progress_log, KILLED_IN_EPOCH, 0, killed))
    killer.start()
    results: list = []
    code = job(spark, config, data, results)
    killer.join()
    captured = capsys.readouterr()

    assert killed.get("pid"), f"rank 0 was never killed: {killed}"
    assert code == ExitCode.STORE and not results
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    assert re.match(rf"error: {killed_message(backend, 0)}; epochs 1-2 of 4 are checkpointed; rerun to resume from "
                    r"epoch 3 \(checkpoints .+, ranks' output .+ranks\.log\)$", errors[0]), errors[0]
    assert "Traceback" not in captured.err  # rank tracebacks go to ranks.log, Horovod's Spark thread's is kept
    ranks_log = (work / "ranks.log").read_text()
    if backend == "horovod":  # the surviving rank's failure, kept for the post-mortem (tf_distribute ends it
        # with the cancelled Spark job, maybe before it fails by itself)
        assert re.search(r"^\[1\]<stderr>:.*Traceback", ranks_log, re.MULTILINE), ranks_log[-2000:]

    # Killed inside epoch 3: two epochs logged and checkpointed, nothing after them.
    state = json.loads((work / "checkpoints" / CHECKPOINT_STATE).read_text())
    assert (state["epoch"], state.get("finished", False)) == (KILLED_IN_EPOCH - 2, False)
    assert len(progress_log.read_text().splitlines()) == KILLED_IN_EPOCH - 1 == killed["lines_when_killed"]
    # No partial model: the fit's model file never appeared; what is visible is data, checkpoints and logs.
    assert sorted(p.name for p in work.iterdir() if not p.name.startswith(".")) == ["checkpoints", "data",
                                                                                    "ranks.log"]
    client = MlflowClient(Store(config.store).tracking_uri)
    [failed] = client.search_runs([client.get_experiment_by_name("fashion_mnist").experiment_id])
    assert failed.info.status == "FAILED"
    assert "model" not in {a.path for a in client.list_artifacts(failed.info.run_id)}
    assert "model_committed" not in failed.data.tags
    deadline = time.time() + 30  # the surviving rank exits too: nothing is left running
    while rank_processes() and time.time() < deadline:
        time.sleep(0.2)
    assert not rank_processes()

    # The rerun (same configuration, so the same work directory) resumes after epoch 2's checkpoint.
    code = job(spark, config, data, results)
    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    [result] = results
    rank0 = result.model.summary.rank_results[0]
    assert rank0["initial_epoch"] == KILLED_IN_EPOCH - 1  # 0-based: epoch 3 is the first one trained
    assert rank0["epochs_run"] == EPOCHS - (KILLED_IN_EPOCH - 1)
    assert rank0["optimizer_restored"] is True  # Adam's moments and step count came back with the weights
    assert rank0["optimizer_iterations"] == EPOCHS * (rank0["rows"] // BATCH)
    assert len(result.history["loss"]) == EPOCHS and result.metrics["epochs_trained"] == EPOCHS
    printed = [line.split(" · ")[0].strip() for line in captured.out.splitlines() if " · loss " in line]
    assert printed == ["epoch 3/4", "epoch 4/4"]  # epochs 1 and 2 were not trained again
    assert [line.split(" · ")[0] for line in progress_log.read_text().splitlines()] == [
        f"epoch {n}/{EPOCHS}" for n in range(1, EPOCHS + 1)]
    finished = client.get_run(result.run_id)
    assert finished.info.status == "FINISHED" and finished.data.tags["model_committed"] == "true"
    # The completed fit's checkpoint is cleared: its state says finished, its weights are gone.
    assert json.loads((work / "checkpoints" / CHECKPOINT_STATE).read_text())["finished"] is True
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == [CHECKPOINT_STATE, PROGRESS_LOG]
    assert (work / "model.keras").is_file()


# --- on a standalone cluster: this file is the driver ------------------------------------------------------

def cluster_fits(master: str, store_root: str, backend: str) -> int:
    """The fit run twice in one driver process against ``master`` (the second resumes the first, whose rank the
    test kills): one JVM and one set of executors for both. Prints each exit code, and rank 0's report."""
    from spark_ml_pipeline.runtime.session import get_session

    config = fit_config(store_root, "cluster", master, backend)
    spark = get_session(config.spark, config.compute)
    data = prepared(spark)
    for attempt in (1, 2):
        results: list = []
        code = job(spark, config, data, results)
        print(f"EXIT{attempt} {code}", flush=True)
    if results:
        print("RANK0 " + json.dumps(results[0].model.summary.rank_results[0]))
    return code


@pytest.mark.cluster
@pytest.mark.parametrize("backend", ["horovod", "tf_distribute"])
def test_on_a_standalone_cluster_a_sigkilled_rank_fails_the_fit_and_a_rerun_resumes(cluster, tmp_path, backend):
    """Executors in their own JVMs and Python workers (the ranks are found by a marker in their environment);
    the driver is a process of its own, so its whole stderr (JVM included) is checked."""
    store = tmp_path / "store"
    marker = uuid.uuid4().hex
    config = fit_config(store, "cluster", cluster, backend)
    work = local_path(work_location(config))
    killed: dict = {}
    killer = threading.Thread(target=kill_rank_during_epoch,
                              args=(work / "checkpoints" / PROGRESS_LOG, KILLED_IN_EPOCH, 1, killed, marker))
    killer.start()
    driver = subprocess.run([sys.executable, str(Path(__file__).resolve()), cluster, str(store), backend],
                            env={**os.environ, FIT_MARKER: marker}, capture_output=True, text=True, timeout=600)
    killer.join()
    assert killed.get("pid"), f"rank 1 was never killed: {killed}\n{driver.stderr[-3000:]}"
    assert driver.returncode == ExitCode.OK, driver.stderr[-3000:]
    assert f"EXIT1 {int(ExitCode.STORE)}" in driver.stdout.splitlines()
    errors = [line for line in driver.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in driver.stderr, driver.stderr[-3000:]
    assert re.match(rf"error: {killed_message(backend, 1)}; epochs 1-2 of 4 are checkpointed; rerun to resume from "
                    r"epoch 3 ", errors[0]), errors[0]
    client = MlflowClient(Store(config.store).tracking_uri)
    failed, finished = sorted(client.search_runs([client.get_experiment_by_name("fashion_mnist").experiment_id]),
                              key=lambda run: run.info.start_time)
    assert failed.info.status == "FAILED" and "model_committed" not in failed.data.tags
    assert finished.info.status == "FINISHED" and finished.data.tags["model_committed"] == "true"
    rank0 = json.loads(next(line for line in driver.stdout.splitlines() if line.startswith("RANK0 "))[6:])
    assert (rank0["initial_epoch"], rank0["epochs_run"]) == (KILLED_IN_EPOCH - 1, EPOCHS - (KILLED_IN_EPOCH - 1))
    assert len(rank0["history"]["loss"]) == EPOCHS and rank0["optimizer_restored"] is True
    assert not rank_processes(marker)


if __name__ == "__main__":
    sys.exit(cluster_fits(*sys.argv[1:4]))
