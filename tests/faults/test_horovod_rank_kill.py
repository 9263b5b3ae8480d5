"""A Horovod rank SIGKILLed mid-epoch (local[2], two ranks, real Spark, Horovod and TensorFlow).

The fit fails at the job boundary with one line and exit code 4, its MLflow run is FAILED and no model is
visible; rerunning the same fit resumes after the last checkpoint and trains only the remaining epochs."""
import argparse
import json
import re
import signal
import threading
import time

import numpy as np
import pandas as pd
import psutil
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.runtime.cli import Job
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ExitCode
from spark_ml_pipeline.runtime.io import local_path
from spark_ml_pipeline.store.keras_run import train_and_record
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.train.deep_learning import Prepared, work_location
from spark_ml_pipeline.train.horovod_rank import CHECKPOINT_STATE, PROGRESS_LOG

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


def rank_processes() -> dict[int, psutil.Process]:
    """This test's Horovod ranks, by rank: descendants of this process only (other sessions run fits too)."""
    ranks = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if "horovod.spark.task.gloo_exec_fn" in process.cmdline():
                ranks[int(process.environ()["HOROVOD_RANK"])] = process
        except (psutil.Error, KeyError, ValueError):
            continue
    return ranks


def kill_rank_during_epoch(progress_log, epoch: int, rank: int, happened: dict, timeout: float = 240) -> None:
    """Once rank 0 has logged epoch ``epoch - 1`` (its checkpoint is written before the line), SIGKILL ``rank``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = progress_log.read_text().splitlines() if progress_log.exists() else []
        if len(lines) >= epoch - 1:
            target = rank_processes().get(rank)
            if target is not None:
                target.send_signal(signal.SIGKILL)
                happened.update(pid=target.pid, lines_when_killed=len(lines))
                return
        time.sleep(0.02)
    happened["timeout"] = True


def job(spark, config, data, results: list) -> int:
    """The fit as the job CLI runs it: through Job.run, which maps what escapes to one line and an exit code."""
    def body():
        results.append(train_and_record(spark, config, data, evaluate=lambda scored: {}))
    return Job(argparse.Namespace()).run(body)


def test_sigkilled_rank_fails_in_one_line_and_a_rerun_resumes_after_the_last_checkpoint(spark, tmp_path, capsys):
    config = load_config("fashion_mnist", ["local"], [
        f"store.root={tmp_path / 'store'}", "model=mlp", "models.mlp.hidden=[16]", "models.mlp.dropout=0.0",
        f"training.epochs={EPOCHS}", f"training.batch_size={BATCH}", "training.num_proc=2",
        "training.threads_per_rank=1", "training.early_stopping_patience=0", "run_date=2026-03-01"])
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
    assert re.match(r"error: Horovod rank 0 of 2 was killed by SIGKILL \(exit code 137\); epochs 1-2 of 4 are "
                    r"checkpointed; rerun to resume from epoch 3 \(checkpoints .+, ranks' output .+ranks\.log\)$",
                    errors[0]), errors[0]
    assert "Traceback" not in captured.err  # rank tracebacks go to ranks.log, Horovod's Spark thread's is kept
    ranks_log = (work / "ranks.log").read_text()
    assert "[1]<stderr>:Traceback" in ranks_log  # the surviving rank's failure, kept for the post-mortem

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
