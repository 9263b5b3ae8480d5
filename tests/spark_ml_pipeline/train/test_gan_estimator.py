"""A conditional DCGAN trained by two Horovod ranks on Spark (local mode) on a few hundred real Fashion-MNIST
images: a rank SIGKILLed mid-epoch fails the fit in one line and the rerun resumes after the last checkpoint;
both optimizers' gradients are averaged (the ranks end with identical generator *and* discriminator weights
though they read disjoint shards and draw their own noise), sample grids are written per epoch, and the
generator scores through Spark like in-process predict."""
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.ml import PipelineModel

from spark_ml_pipeline.ingest.fashion_mnist import load_fashion_mnist
from spark_ml_pipeline.train.gan_estimator import GAN_TRAINING, GANHorovodEstimator, latent_stage
from spark_ml_pipeline.train.gan_rank import sample_grid
from spark_ml_pipeline.train.keras_rank import CHECKPOINT_STATE, PROGRESS_LOG, read_checkpoint_state
from spark_ml_pipeline.train.keras_estimator import DistributedFitError
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.gan import GANSpec, latent_vectors
from spark_ml_pipeline.train.rank_test_hooks import KILL_RANK_IN_EPOCH

TINY = GANSpec(noise_dim=8, label_embedding=4, generator_filters=[8, 4], discriminator_filters=[4, 8], kernel_size=3)
ROWS, BATCH = 320, 32  # 160 rows per rank: 5 steps per epoch


def images_frame(spark, rows=ROWS):
    images, labels = load_fashion_mnist("train")
    frame = pd.DataFrame({"row_id": np.arange(rows), "features": list(images[:rows].reshape(rows, -1) / 255.0),
                          "label": labels[:rows].astype("int32")})
    return spark.createDataFrame(frame, "row_id long, features array<float>, label int")


def estimator(work_dir, epochs=2, **overrides):
    training = KerasTrainingSettings(**{**GAN_TRAINING.model_dump(), "epochs": epochs, "batch_size": BATCH,
                                        "recalibrate_batch_norm": 2})
    params = dict(featuresCol="features", inputShape=[28, 28], labelCol="label",
                  modelSpec=json.dumps(TINY.model_dump(mode="json")), trainingSettings=training, numProc=2,
                  threadsPerRank=1, workDir=str(work_dir), showProgress=False)
    params.update(overrides)
    return GANHorovodEstimator(**params)


pytestmark = pytest.mark.usefixtures("weights_digests")


@pytest.fixture(scope="module")
def two_rank_gan(spark, tmp_path_factory):
    """Two ranks, 2 epochs: rank 1 SIGKILLs itself two steps into epoch 2 (a test-only hook of the rank function,
    rank_test_hooks), the fit fails in one line; the same fit again resumes after epoch 1's checkpoint. The
    resumed fit is what the other tests look at."""
    work = tmp_path_factory.mktemp("gan")
    frame = images_frame(spark)
    with pytest.raises(DistributedFitError) as failure, pytest.MonkeyPatch.context() as patch:
        patch.setenv(KILL_RANK_IN_EPOCH, "1")  # 0-based: the second epoch
        estimator(work).fit(frame)
    state = read_checkpoint_state(str(work / "checkpoints"))
    return estimator(work).fit(frame), work, failure.value, state


def test_a_sigkilled_rank_fails_the_fit_in_one_line_and_the_rerun_resumes_after_the_checkpoint(two_rank_gan):
    model, work, failure, state = two_rank_gan
    assert re.search(r"Horovod rank 1 of 2 was killed by SIGKILL .*; epochs 1-1 of 2 are checkpointed; "
                     r"rerun to resume from epoch 2", str(failure)), failure
    assert "\n" not in str(failure)
    assert state["epoch"] == 0 and not state.get("finished") and len(state["history"]["g_loss"]) == 1
    first, second = model.summary.rank_results
    for result in (first, second):
        assert (result["initial_epoch"], result["epochs_run"]) == (1, 1)
        assert result["optimizer_restored"]  # both optimizers' moments and step counts


def test_both_optimizers_average_gradients_so_the_ranks_stay_identical(two_rank_gan):
    model, *_ = two_rank_gan
    first, second = model.summary.rank_results
    assert (first["size"], second["size"]) == (2, 2) and first["allreduce_check"] == 3.0
    assert first["rows"] == second["rows"] == ROWS // 2 and first["row_ids"][1] <= second["row_ids"][0]
    steps = 2 * (ROWS // 2 // BATCH)  # epoch 1 before the kill (restored) + epoch 2 after it
    for result in (first, second):  # both networks took every step
        assert result["optimizer_iterations"] == result["discriminator_iterations"] == steps
    assert first["weights_digest"] is not None and first["discriminator_digest"] is not None
    assert first["weights_digest"] == second["weights_digest"]  # generator (BN statistics included)
    assert first["discriminator_digest"] == second["discriminator_digest"]
    assert first["batch_norm_batches"] == 2
    history = model.summary.history
    assert set(history) == {"d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"}
    assert all(len(values) == 2 and np.isfinite(values).all() for values in history.values())


def test_rank0_writes_a_sample_grid_and_a_progress_line_per_epoch(two_rank_gan):
    model, work, *_ = two_rank_gan
    grids = model.summary.rank_results[0]["samples"]
    assert [p.rsplit("/", 1)[1] for p in grids] == ["epoch-0001.png", "epoch-0002.png"]
    with Image.open(grids[-1]) as picture:  # 10 classes x 10 samples of 28 x 28, 1-pixel gaps
        assert picture.format == "PNG" and picture.size == (10 * 29 - 1, 10 * 29 - 1) and picture.mode == "L"
    lines = (work / "checkpoints" / PROGRESS_LOG).read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 · d_fake_accuracy")
    assert read_checkpoint_state(str(work / "checkpoints"))["finished"] is True
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == [CHECKPOINT_STATE, PROGRESS_LOG]


def test_generator_scores_through_spark_like_in_process_predict_and_reloads(spark, two_rank_gan, tmp_path):
    model, *_ = two_rank_gan
    rng = np.random.default_rng(3)
    noise, labels = rng.standard_normal((40, TINY.noise_dim)).astype("float32"), np.arange(40) % 10
    rows = spark.createDataFrame(pd.DataFrame({"row_id": np.arange(40), "label": labels.astype("int32"),
                                               "noise": list(noise)}), "row_id long, label int, noise array<float>")
    scoring = PipelineModel(stages=[latent_stage(TINY), model])
    scored = scoring.transform(rows).orderBy("row_id").toPandas()
    expected = model.keras_model().predict(latent_vectors(noise, labels, TINY), verbose=0)
    actual = np.stack(scored["image"].to_numpy())
    assert actual.shape == (40, 784) and 0 <= actual.min() and actual.max() <= 1
    np.testing.assert_allclose(actual, expected.reshape(40, -1), rtol=1e-5, atol=1e-6)
    scoring.save(str(tmp_path / "generator"))
    reloaded = PipelineModel.load(str(tmp_path / "generator")).transform(rows).orderBy("row_id").toPandas()
    np.testing.assert_allclose(np.stack(reloaded["image"].to_numpy()), actual, rtol=1e-6, atol=1e-7)


def test_a_finished_fit_gives_its_generator_back_without_launching_ranks(two_rank_gan):
    model, work, *_ = two_rank_gan
    finished = estimator(work).finished_model()
    assert finished.summary.rank_results == [] and finished.summary.history == model.summary.history
    assert finished.getOrDefault("modelPath") == model.getOrDefault("modelPath") == str(work / "generator.keras")
    assert finished.getOrDefault("inputShape") == [TINY.latent_dim()]
    assert estimator(work / "elsewhere").finished_model() is None


def test_sample_grid_layout():
    images = np.stack([np.full((2, 3), v) for v in (0.0, 0.5, 1.0)])
    picture = sample_grid(images, columns=2)
    assert picture.shape == (2 * 3 - 1, 2 * 4 - 1) and picture.dtype == np.uint8
    assert picture[0, 0] == 0 and picture[0, 4] == 128 and picture[3, 0] == 255 and picture[3, 4] == 255


@pytest.mark.parametrize("conditional", [True, False])
def test_generator_and_discriminator_build_save_and_load_safely(tmp_path, conditional):
    from spark_ml_pipeline.train.models.gan import build_discriminator, build_generator
    from spark_ml_pipeline.train.models.loading import load_keras_model

    spec = TINY.model_copy(update={"conditional": conditional})
    generator, discriminator = build_generator(spec, (28, 28)), build_discriminator(spec, (28, 28))
    assert generator.input_shape == (None, 18 if conditional else 8) and generator.output_shape == (None, 28, 28)
    latents = latent_vectors(np.random.default_rng(0).standard_normal((3, 8)), [0, 4, 9], spec)
    images = generator.predict(latents, verbose=0)
    inputs = [images, np.array([[0], [4], [9]])] if conditional else images
    assert discriminator.predict(inputs, verbose=0).shape == (3, 1)
    for model, name in ((generator, "g.keras"), (discriminator, "d.keras")):
        model.save(tmp_path / name)
    np.testing.assert_allclose(load_keras_model(str(tmp_path / "g.keras")).predict(latents, verbose=0), images,
                               rtol=1e-6, atol=1e-7)
    load_keras_model(str(tmp_path / "d.keras"))
    with pytest.raises(ValueError, match="divisible by 8"):
        build_generator(spec.model_copy(update={"generator_filters": [4, 4, 4]}), (28, 28))
