"""Both backends really distribute (Horovod, and TensorFlow's MultiWorkerMirroredStrategy in Spark barrier
tasks): two ranks on Spark, disjoint shards, identical weights, a finished fit not retrained, and the fitted
model scores a DataFrame exactly like in-process predict. (Resuming after a rank is killed mid-fit:
tests/faults/test_rank_kill.py.) The training settings are one object handed whole to
every rank: a new setting is one field (test_a_new_training_setting_is_one_field_and_reaches_every_rank)."""
import json
import os
import sys

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from pydantic import Field, ValidationError

from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.train.deep_learning import Prepared, TrainingSection, estimator_for
from spark_ml_pipeline.train.keras_rank import (CHECKPOINT_STATE, PROGRESS_LOG, learning_rate_for,
                                                progress_line, shard_ranges)
from spark_ml_pipeline.train.keras_estimator import KerasEstimator, _ProgressPrinter
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.rank_backends import gpu_for_rank

MLP = {"kind": "mlp", "hidden": [16]}
FAST = KerasTrainingSettings(epochs=2, batch_size=32, early_stopping_patience=0)


def regression_frame(spark, rows=640):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 0.1 * rng.normal(size=rows)).astype("float32")
    frame = pd.DataFrame({"row_id": np.arange(rows), "features": list(x), "label": y,
                          "is_validation": np.arange(rows) % 10 == 0})
    return spark.createDataFrame(frame, "row_id long, features array<float>, label float, is_validation boolean")


def settings(**changes) -> KerasTrainingSettings:
    """The fast settings with ``changes``, validated."""
    return KerasTrainingSettings(**{**FAST.model_dump(), **changes})


def estimator(work_dir, training=FAST, **overrides):
    params = dict(featuresCol="features", inputShape=[8], labelCol="label", modelSpec=json.dumps(MLP),
                  outputShape=[1], loss="mse", metrics=["mae"], trainingSettings=training, numProc=2,
                  threadsPerRank=1, workDir=str(work_dir))
    params.update(overrides)
    return KerasEstimator(**params)


pytestmark = pytest.mark.usefixtures("weights_digests")


@pytest.fixture(scope="module", params=["horovod", "tf_distribute"])
def two_rank_fit(request, spark, tmp_path_factory):
    work = tmp_path_factory.mktemp(request.param)
    est = estimator(work, backend=request.param)
    model = est.fit(regression_frame(spark))
    return est, model, work


def test_two_ranks_train_on_disjoint_shards_and_end_identical(two_rank_fit):
    est, model, _ = two_rank_fit
    first, second = model.summary.rank_results  # fitted state is on the Model, sorted by rank
    assert not hasattr(est, "rank_results")  # the Estimator keeps none
    assert (first["size"], second["size"]) == (2, 2)
    assert first["allreduce_check"] == second["allreduce_check"] == 3.0  # 1 + 2: allreduce sums across ranks
    assert first["rows"] == second["rows"] > 0
    assert first["row_ids"][1] <= second["row_ids"][0]  # disjoint shards
    assert first["weights_digest"] is not None  # the test-only hook is on: the ranks hash their weights
    assert first["weights_digest"] == second["weights_digest"]  # synchronous data parallelism


def test_fit_records_history_and_learns(two_rank_fit):
    _, model, _ = two_rank_fit
    history = model.summary.history
    assert len(history["loss"]) == 2 and "val_loss" in history and model.summary.epochs_trained == 2
    assert history["loss"][-1] < history["loss"][0]


def test_model_scores_like_in_process_predict(spark, two_rank_fit):
    _, model, _ = two_rank_fit
    frame = regression_frame(spark, rows=100)
    scored = model.transform(frame).orderBy("row_id").toPandas()
    inputs = np.stack(scored["features"].to_numpy()).astype("float32")
    expected = model.keras_model().predict(inputs, verbose=0).reshape(-1)
    np.testing.assert_allclose(np.concatenate(scored["prediction"].to_numpy()), expected, rtol=1e-5, atol=1e-5)


def test_a_finished_fit_is_not_retrained(spark, two_rank_fit):
    est, model, work = two_rank_fit
    # A completed fit's checkpoint keeps only its finished state (no weights): the fit's model is its output.
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == [CHECKPOINT_STATE, PROGRESS_LOG]
    again = estimator(work, backend=est.getOrDefault(est.backend)).fit(regression_frame(spark))
    assert again.summary.rank_results[0]["epochs_run"] == 0
    assert again.summary.rank_results[0]["weights_digest"] == model.summary.rank_results[0]["weights_digest"]


def test_parameters_are_validated_before_any_job(spark, tmp_path):
    frame = regression_frame(spark, rows=64)
    with pytest.raises(ValueError, match="numProc=8 exceeds"):
        estimator(tmp_path, numProc=8).fit(frame)
    with pytest.raises(ValueError, match="no column 'pixels'"):
        estimator(tmp_path, featuresCol="pixels").fit(frame)
    with pytest.raises(ValueError, match="unknown loss 'relative_l3'"):
        estimator(tmp_path, loss="relative_l3").fit(frame)
    # The training settings are checked when they are made, so an estimator never holds invalid ones.
    with pytest.raises(ValidationError, match=r"optimizer\n  Input should be 'adam', 'adamw' or 'sgd'"):
        estimator(tmp_path, settings(optimizer="rmsprop")).fit(frame)
    with pytest.raises(ValidationError, match=r"augment\n  Input should be 'none', 'shift_flip' or 'dihedral'"):
        estimator(tmp_path, settings(augment="rotate")).fit(frame)
    with pytest.raises(ValueError, match=r"augment=dihedral needs a square input field"):  # before any job too
        estimator(tmp_path, settings(augment="dihedral")).fit(frame)
    with pytest.raises(ValidationError, match=r"weight_decay\n  Input should be greater than or equal to 0"):
        estimator(tmp_path, settings(optimizer="adamw", weight_decay=-0.1)).fit(frame)
    with pytest.raises(ValidationError, match=r"recalibrate_batch_norm\n  Input should be greater than or equal"):
        estimator(tmp_path, settings(recalibrate_batch_norm=-1)).fit(frame)
    with pytest.raises(ValidationError, match=r"warmup_epochs \(2\) must be below epochs \(2\)"):
        estimator(tmp_path, settings(warmup_epochs=2)).fit(frame)
    with pytest.raises(TypeError, match="expected a KerasTrainingSettings, got dict"):
        estimator(tmp_path, {"epochs": 2})


def test_shards_are_equal_so_ranks_take_the_same_steps():
    assert shard_ranges([5, 5, 1], 0, 2) == (0, 5)
    assert shard_ranges([5, 5, 1], 1, 2) == (5, 10)


def test_learning_rate_warms_up_to_the_rank_scaled_rate_then_decays(tmp_path):
    spec = estimator(tmp_path, settings(learning_rate=0.01, epochs=5)).rank_spec("", None)
    assert learning_rate_for(spec.training, size=2, steps_per_epoch=10) == pytest.approx(0.02)  # constant, scaled
    warm = learning_rate_for(settings(learning_rate=0.01, epochs=5, lr_schedule="cosine", warmup_epochs=1), 2, 10)
    rates = [float(warm(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] == pytest.approx(0.01) and rates[1] == pytest.approx(0.015)  # linear warm-up
    assert rates[2] == pytest.approx(0.02)  # peak = per-rank rate x ranks
    assert rates[3] == pytest.approx(0.01) and rates[4] == pytest.approx(0.0, abs=1e-9)  # cosine to zero


def test_gpu_placement_is_chosen_by_config():
    """No GPU here: what compute.device configures is checked, the CPU path is trained for real above."""
    assert gpu_for_rank("cpu", ["gpu0"], 0) is None
    assert [gpu_for_rank("cuda", ["gpu0", "gpu1"], rank) for rank in (0, 1, 2)] == ["gpu0", "gpu1", "gpu0"]
    with pytest.raises(RuntimeError, match="compute.device=cuda but rank 1 of this host sees no GPU"):
        gpu_for_rank("cuda", [], 1)
    config = load_config("fashion_mnist", ["local", "gpu"], ["store.root=/tmp/unused"])
    assert config.compute.device == "cuda"

    shapes = Prepared(train=None, tests={}, input_shape=(28, 28), label_column="label", label_shape=(),
                      label_dtype="int32", output_shape=(10,), output_activation="softmax",
                      loss="sparse_categorical_crossentropy", metrics=(), input_files=[])
    estimator = estimator_for(config, shapes)
    assert estimator.getOrDefault("device") == "cuda"
    assert estimator.rank_spec("train", None).device == "cuda"


def test_rank0_logs_one_progress_line_per_epoch_and_the_driver_prints_them(two_rank_fit, tmp_path, capsys):
    _, model, work = two_rank_fit
    lines = (work / "checkpoints" / PROGRESS_LOG).read_text().splitlines()
    assert [line.split(" · ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_loss" in line and "samples/s" in line and "ETA" in line for line in lines)
    # The driver follows the file while the fit runs and prints only what was appended during it.
    log = tmp_path / PROGRESS_LOG
    log.write_text("epoch 1/3 · old\n")
    with _ProgressPrinter(str(log)):
        with log.open("a") as handle:
            handle.write(progress_line(2, 3, {"loss": 0.5}, 1000, 2.0, 4.0) + "\n")
    assert capsys.readouterr().out == "  epoch 2/3 · loss 0.5000 · 500 samples/s · ETA 2 s\n"


def test_a_killed_rank_is_named_even_when_a_peer_is_seen_failing_first(tmp_path):
    """Horovod's error names the first rank seen to exit non-zero; a SIGKILLed rank's peer fails its next allreduce
    at about the same moment and was sometimes seen first (CI: "rank 0 exited with code 1: HorovodAllreduce ...").
    With every rank's exit code of the launch kept, the failure names the rank that was killed."""
    from types import SimpleNamespace

    from spark_ml_pipeline.train import keras_estimator

    spec = SimpleNamespace(checkpoint_dir=str(tmp_path / "checkpoints"), training=KerasTrainingSettings(epochs=4))
    horovod = RuntimeError("Horovod detected that one or more processes exited with non-zero status, thus causing "
                           "the job to be terminated. The first process to do so was:\nProcess name: 0\nExit code: 1\n")

    def message(exits):
        keras_estimator._RANK_EXITS.codes = exits
        try:
            return str(keras_estimator.fit_failure(horovod, spec, 2, str(tmp_path / "ranks.log"), 0.0))
        finally:
            keras_estimator._RANK_EXITS.codes = None

    assert message({"0": 1, "1": 137}).startswith("Horovod rank 1 of 2 was killed by SIGKILL (exit code 137); "
                                                  "no epoch was checkpointed")
    assert message({"0": 1, "1": -9}).startswith("Horovod rank 1 of 2 was killed by SIGKILL (exit code -9)")
    assert message({"0": 1, "1": 1}).startswith("Horovod rank 0 of 2 exited with code 1")
    assert message(None).startswith("Horovod rank 0 of 2 exited with code 1")


def test_the_training_section_hands_every_setting_to_the_ranks():
    """The configuration's ``training`` section is the settings plus how the pipeline launches and splits: each
    setting it names, at a value other than its default, is in the rank's spec, and nothing else is."""
    changed = {"optimizer": "adamw", "learning_rate": 0.02, "weight_decay": 0.01, "batch_size": 16, "epochs": 4,
               "lr_schedule": "cosine", "warmup_epochs": 1, "early_stopping_patience": 0, "augment": "shift_flip",
               "augment_channels": 2, "recalibrate_batch_norm": 7, "shuffle_buffer": 99, "seed": 5}
    assert set(changed) == set(KerasTrainingSettings.model_fields)  # one value per setting
    assert all(changed[name] != field.default for name, field in KerasTrainingSettings.model_fields.items())
    assert issubclass(TrainingSection, KerasTrainingSettings)  # a new setting is a new config key, by inheritance
    config = load_config("fashion_mnist", ["local"], ["store.root=/tmp/unused", "training.num_proc=1",
                                                      *(f"training.{name}={value}" for name, value in changed.items())])
    shapes = Prepared(train=None, tests={}, input_shape=(28, 28), label_column="label", label_shape=(),
                      label_dtype="int32", output_shape=(10,), output_activation="softmax",
                      loss="sparse_categorical_crossentropy", metrics=(), input_files=[])
    training = estimator_for(config, shapes).rank_spec("train", None).training
    assert type(training) is KerasTrainingSettings and training.model_dump() == changed


class ToySettings(KerasTrainingSettings):
    """A setting added the way a real one is: one field, with its default and its validation (in a subclass here,
    so the product is untouched)."""

    toy_momentum: float = Field(0.5, ge=0, le=1)


def read_in_rank(spec) -> dict:
    """A rank function: what each rank, in its own process, finds in its spec (and its rank, as its backend
    tells it)."""
    rank = (int(os.environ["HOROVOD_RANK"]) if "HOROVOD_RANK" in os.environ
            else json.loads(os.environ["TF_CONFIG"])["task"]["index"])
    return {"rank": rank, "settings": type(spec.training).__name__, "backend": spec.backend,
            "toy_momentum": spec.training.toy_momentum, "epochs": spec.training.epochs}


@pytest.mark.parametrize("backend", ["horovod", "tf_distribute"])
def test_a_new_training_setting_is_one_field_and_reaches_every_rank(spark, tmp_path, backend):
    """The toy setting is validated, carried by the estimator and read by every rank with no other code: the
    settings object travels whole, never field by field (a setting threaded by hand would not arrive)."""
    with pytest.raises(ValidationError, match=r"toy_momentum\n  Input should be less than or equal to 1"):
        ToySettings(toy_momentum=2)
    toy = estimator(tmp_path, ToySettings(toy_momentum=0.25, epochs=3), showProgress=False, backend=backend)
    frame = regression_frame(spark, rows=64)
    toy.validate(frame)
    assert toy.getTrainingSettings() == ToySettings(toy_momentum=0.25, epochs=3)
    this_module = sys.modules[read_in_rank.__module__]
    cloudpickle.register_pickle_by_value(this_module)  # the ranks cannot import a test module: send it by value
    try:
        results = toy.run_ranks(frame, read_in_rank, toy.rank_spec("unused", None))
    finally:
        cloudpickle.unregister_pickle_by_value(this_module)
    assert results == [{"rank": rank, "settings": "ToySettings", "backend": backend, "toy_momentum": 0.25,
                        "epochs": 3} for rank in (0, 1)]
