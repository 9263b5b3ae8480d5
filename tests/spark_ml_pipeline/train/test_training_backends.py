"""The training backend is chosen by configuration (``training.backend``), checked before any job, and the
tf_distribute launcher's own decisions: each rank's TF_CONFIG and local rank, and which failed rank a fit's
error names. (Both backends train for real in test_keras_estimator.py and tests/faults/test_rank_kill.py.)"""
import json

import pytest
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.train.deep_learning import Prepared, estimator_for
from spark_ml_pipeline.train.gan_estimator import GANHorovodEstimator
from spark_ml_pipeline.train.keras_estimator import fit_failure
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.rank_backends import LOCAL_RANK_VARIABLE, ranks_for
from spark_ml_pipeline.train.tf_distribute_launch import RankFailure, failed_rank, rank_environment

SHAPES = Prepared(train=None, tests={}, input_shape=(28, 28), label_column="label", label_shape=(),
                  label_dtype="int32", output_shape=(10,), output_activation="softmax",
                  loss="sparse_categorical_crossentropy", metrics=(), input_files=[])


def test_the_backend_is_a_training_key_that_reaches_the_ranks():
    default = load_config("fashion_mnist", ["local"], ["store.root=/tmp/unused"])
    assert estimator_for(default, SHAPES).rank_spec("train", None).backend == "horovod"
    chosen = load_config("fashion_mnist", ["local"], ["store.root=/tmp/unused", "training.backend=tf_distribute"])
    estimator = estimator_for(chosen, SHAPES)
    assert estimator.getOrDefault("backend") == "tf_distribute"
    assert estimator.rank_spec("train", None).backend == "tf_distribute"
    with pytest.raises(ConfigError, match=r"key 'training\.backend' \(set in command line\): Input should be "
                                          r"'horovod' or 'tf_distribute' \(got 'mpi'\)"):
        load_config("fashion_mnist", ["local"], ["store.root=/tmp/unused", "training.backend=mpi"])


def test_an_unknown_backend_is_refused_before_any_job(spark, tmp_path):
    config = load_config("fashion_mnist", ["local"], [f"store.root={tmp_path}"])
    estimator = estimator_for(config, SHAPES)
    estimator.set(estimator.backend, "mpi")
    with pytest.raises(ValueError, match="backend must be one of horovod, tf_distribute, got 'mpi'"):
        estimator.validate()
    with pytest.raises(ValueError, match="training backend must be one of horovod, tf_distribute, got 'mpi'"):
        ranks_for("mpi")


def test_the_gan_refuses_tf_distribute_in_one_line(spark, tmp_path):
    gan = GANHorovodEstimator(inputShape=[28, 28], modelSpec=json.dumps({"conditional": True}), workDir=str(tmp_path),
                              backend="tf_distribute", numProc=1)
    with pytest.raises(ValueError, match=r"^GANHorovodEstimator: backend tf_distribute is not available for the GAN "
                                         r"\(its custom training loop averages gradients with Horovod's allreduce\); "
                                         r"use horovod$"):
        gan.validate()


def test_each_rank_gets_every_address_its_own_index_and_its_index_on_its_host():
    addresses = ["10.0.0.1:4000", "10.0.0.2:4001", "10.0.0.1:4002", "10.0.0.1:4003"]
    environments = [rank_environment(rank, addresses) for rank in range(4)]
    for rank, environment in enumerate(environments):
        assert json.loads(environment["TF_CONFIG"]) == {"cluster": {"worker": addresses},
                                                        "task": {"type": "worker", "index": rank}}
    # The GPU of a rank is picked by its index among its host's ranks, as Horovod's local rank.
    assert [environment[LOCAL_RANK_VARIABLE] for environment in environments] == ["0", "0", "1", "2"]


def test_a_killed_rank_is_named_before_peers_that_failed_after_it():
    assert failed_rank({0: 1, 1: -9}) == (1, -9)  # rank 0 failed its collective when rank 1 was killed
    assert failed_rank({0: 0, 1: 1, 2: 1}) == (1, 1)  # none killed: the lowest rank that failed
    assert failed_rank({0: -15, 1: -9}) == (0, -15)


def test_a_failed_tf_distribute_rank_is_one_line_naming_it_and_what_a_rerun_resumes(tmp_path):
    from types import SimpleNamespace

    spec = SimpleNamespace(checkpoint_dir=str(tmp_path / "checkpoints"), training=KerasTrainingSettings(epochs=4))
    ranks_log = tmp_path / "ranks.log"
    ranks_log.write_text("--- fit started 2026-12-07 04:00:00 ---\n[1]<stderr>:Traceback (most recent call last):\n"
                         "[1]<stderr>:ValueError: shapes (4,) and (8,) are incompatible\n")
    killed = fit_failure(RankFailure(0, 2, -9), spec, 2, str(ranks_log), 0.0)
    assert str(killed).startswith("tf_distribute rank 0 of 2 was killed by SIGKILL (exit code -9); "
                                  "no epoch was checkpointed; a rerun starts from epoch 1 (checkpoints ")
    # A child's -1 is SIGHUP (Horovod's launcher uses -1 for a lost connection; that reading is Horovod's alone).
    hung_up = fit_failure(RankFailure(1, 2, -1), spec, 2, str(ranks_log), 0.0)
    assert str(hung_up).startswith("tf_distribute rank 1 of 2 was killed by SIGHUP (exit code -1); ")
    raised = fit_failure(RankFailure(1, 2, 1), spec, 2, str(ranks_log), 0.0)
    assert str(raised).startswith("tf_distribute rank 1 of 2 exited with code 1: ValueError: shapes (4,) and (8,) "
                                  "are incompatible; no epoch")
