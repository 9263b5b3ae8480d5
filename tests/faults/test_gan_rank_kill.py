"""A GAN rank SIGKILLed mid-epoch (two ranks, real Spark, Horovod and TensorFlow, local mode): the fit fails in
one line naming the checkpointed epochs, and rerunning it resumes after the last checkpoint."""
import json
import signal
import threading
import time

import numpy as np
import pandas as pd
import psutil
import pytest

from pipelines.fashion_mnist.dataset import load_fashion_mnist
from spark_ml_pipeline.train.gan_estimator import GANHorovodEstimator
from spark_ml_pipeline.train.horovod_rank import PROGRESS_LOG, read_checkpoint_state
from spark_ml_pipeline.train.keras_estimator import HorovodFitError
from spark_ml_pipeline.train.models.gan import GANSpec

TINY = GANSpec(noise_dim=8, label_embedding=4, generator_filters=[8, 4], discriminator_filters=[4, 8], kernel_size=3)
ROWS, BATCH, EPOCHS = 6400, 16, 3  # 200 steps per rank and epoch: the kill lands inside epoch 2


def rank_processes() -> dict[int, psutil.Process]:
    ranks = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if "horovod.spark.task.gloo_exec_fn" in process.cmdline():
                ranks[int(process.environ()["HOROVOD_RANK"])] = process
        except (psutil.Error, KeyError, ValueError):
            continue
    return ranks


def kill_rank_in_epoch_2(progress_log, rank: int, happened: dict, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if progress_log.exists() and len(progress_log.read_text().splitlines()) >= 1:
            target = rank_processes().get(rank)
            if target is not None:
                target.send_signal(signal.SIGKILL)
                happened["pid"] = target.pid
                return
        time.sleep(0.02)


def test_a_sigkilled_gan_rank_fails_the_fit_and_a_rerun_resumes(spark, tmp_path):
    images, labels = load_fashion_mnist("train")
    frame = spark.createDataFrame(pd.DataFrame({"features": list(images[:ROWS].reshape(ROWS, -1) / 255.0),
                                                "label": labels[:ROWS].astype("int32")}),
                                  "features array<float>, label int")
    params = dict(inputShape=[28, 28], modelSpec=json.dumps(TINY.model_dump(mode="json")), epochs=EPOCHS,
                  batchSize=BATCH, numProc=2, threadsPerRank=1, workDir=str(tmp_path), recordWeightsDigest=True,
                  recalibrateBatchNorm=2, showProgress=False)
    killed: dict = {}
    killer = threading.Thread(target=kill_rank_in_epoch_2,
                              args=(tmp_path / "checkpoints" / PROGRESS_LOG, 1, killed))
    killer.start()
    with pytest.raises(HorovodFitError) as failure:
        GANHorovodEstimator(**params).fit(frame)
    killer.join()
    assert killed.get("pid"), "rank 1 was never killed"
    state = read_checkpoint_state(str(tmp_path / "checkpoints"))
    done = state["epoch"] + 1  # epoch 1, or 2 when the kill landed after epoch 2's checkpoint
    assert 1 <= done < EPOCHS and not state.get("finished")
    assert f"epochs 1-{done} of {EPOCHS} are checkpointed; rerun to resume from epoch {done + 1}" in str(
        failure.value)

    resumed = GANHorovodEstimator(**params).fit(frame)
    first, second = resumed.summary.rank_results
    assert (first["initial_epoch"], first["epochs_run"]) == (done, EPOCHS - done)
    assert first["optimizer_restored"] and second["optimizer_restored"]
    assert first["weights_digest"] == second["weights_digest"]
    assert first["discriminator_digest"] == second["discriminator_digest"]
    assert len(resumed.summary.history["g_loss"]) == EPOCHS
    assert np.isfinite(resumed.summary.history["d_loss"]).all()
