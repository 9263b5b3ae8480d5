"""The ``fashion_autoencoder`` pipeline: a convolutional autoencoder on Fashion-MNIST whose encoder
becomes a feature extractor: its codes for every image are written as a feature table.

``model=vae`` trains a variational autoencoder instead (:mod:`spark_ml_pipeline.train.models.variational`) with
the Bernoulli likelihood: ``binary_crossentropy`` on pixels in [0, 1] plus its KL term, i.e. the negative ELBO per
pixel. Its latent means are the codes written as features; the run also gets (after the model is recorded):

* ``test_negative_elbo``: -ELBO on the test set in nats per image (Bernoulli cross-entropy summed over the 784
  pixels, one draw of z per image, + the exact KL to N(0, I); lower is better), with its two terms
  ``test_reconstruction_nll`` and ``test_kl``; ``test_reconstruction_mse`` (as for the autoencoder, the
  reconstruction of the posterior mean, scored through Spark) is the comparable reconstruction error;
* ``prior_samples.png``: an 8 x 8 grid of images decoded from z ~ N(0, I).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from features.arrays import mean_squared_error
from features.images import pixel_feature_stages
from spark_ml_pipeline.ingest.fashion_mnist import ingest_fashion_mnist, input_files, read_images
from spark_ml_pipeline.report.describe import DescribeReconstructions
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.io import atomic_output, join, local_path
from spark_ml_pipeline.runs.keras_run import DeepResult, train_and_record
from spark_ml_pipeline.runs.keras_run import summary as keras_summary
from spark_ml_pipeline.store.tracking import log_metrics_to_run, tag_run
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.keras_estimator import KerasModel
from spark_ml_pipeline.train.models.architecture import architecture_of
from spark_ml_pipeline.train.models.autoencoder import encoder_of
from spark_ml_pipeline.train.models.variational import negative_elbo, prior_samples
from spark_ml_pipeline.train.splits import with_validation_flag
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

NAME = "fashion_autoencoder"
PRIOR_SAMPLES = "prior_samples.png"
PRIOR_GRID = 8  # rows and columns of decoded prior draws


class FashionAutoencoderConfig(dl.DeepPipelineConfig):
    pipeline: str = NAME
    kind: Literal["fashion_autoencoder"] = NAME


def _images(spark, config: FashionAutoencoderConfig, split: str, limit):
    return PipelineModel(pixel_feature_stages()).transform(read_images(spark, config.store, split, limit))


def prepare(spark, config: FashionAutoencoderConfig) -> dl.Prepared:
    # The target is the input itself (a copy: the trainer reads features and label as two columns).
    train = _images(spark, config, "train", config.data.train_limit).withColumn("target", F.col("features"))
    train = with_validation_flag(train, config.training.validation_fraction, config.training.seed, ["row_id"])
    test = _images(spark, config, "test", config.data.test_limit)
    # A VAE's likelihood is Bernoulli: with its KL term (in the model's losses) the loss is the negative ELBO.
    vae = architecture_of(config.model).variational
    return dl.Prepared(train=train, tests={"test": test}, input_shape=(28, 28), label_column="target",
                       label_shape=(28, 28), label_dtype="float32", output_shape=(28, 28), output_activation=None,
                       loss="binary_crossentropy" if vae else "mse", metrics=("mae", "mse") if vae else ("mae",),
                       input_files=input_files(), feature_stages=pixel_feature_stages())


def evaluate(scored) -> dict:
    row = scored.agg(F.avg(mean_squared_error(F.col("prediction"), F.col("features"))).alias("mse"),
                     F.count(F.lit(1)).alias("rows")).first()
    return {"reconstruction_mse": float(row["mse"]), "rows": row["rows"]}


def codes_location(config: FashionAutoencoderConfig) -> str:
    return config.store.data(config.pipeline, "codes", f"run_date={run_date(config)}")


def write_codes(spark, config: FashionAutoencoderConfig, result: DeepResult) -> str:
    """The encoder's code for every train and test image, as a feature table (row_id, split, label, code)."""
    encoder_path = str(local_path(join(dl.work_location(config), "encoder.keras")))
    encoder_of(result.model.keras_model()).save(encoder_path)
    encoder = KerasModel(modelPath=encoder_path, featuresCol="features", inputShape=[28, 28],
                         predictionCol="code")
    images = (_images(spark, config, "train", config.data.train_limit).withColumn("split", F.lit("train"))
              .unionByName(_images(spark, config, "test", config.data.test_limit).withColumn("split", F.lit("test"))))
    output = codes_location(config)
    with atomic_output(spark, output) as temporary:
        encoder.transform(images).select("row_id", "split", "label", "code").write.parquet(temporary)
    return output


def image_grid(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, H, W) images tiled row by row into one image, with a 1-pixel light grey (0.2) gap between them."""
    count, height, width = images.shape
    rows = -(-count // columns)
    grid = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), 0.2, np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * (height + 1):row * (height + 1) + height, column * (width + 1):column * (width + 1) + width] = image
    return grid


def save_prior_samples(keras_model, path: Path, seed: int) -> None:
    """An 8 x 8 grid of a VAE's decodings of z ~ N(0, I) (seeded) as a PNG (matplotlib, Agg)."""
    from matplotlib.figure import Figure

    samples = prior_samples(keras_model, PRIOR_GRID * PRIOR_GRID, seed).reshape(-1, 28, 28)
    figure = Figure(figsize=(6, 6))
    axes = figure.add_axes([0, 0, 1, 1])
    axes.imshow(image_grid(samples, PRIOR_GRID), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_axis_off()
    figure.savefig(path, dpi=100)


def record_vae(spark, config: FashionAutoencoderConfig, result: DeepResult) -> dict[str, float]:
    """The test ELBO (nats per image) and the prior samples' grid, added to the finished run. The ELBO is
    computed on the driver (the test images collected: 10,000 x 784 values for the full set), because its KL
    term needs the posterior's variance, which the scored reconstructions do not carry."""
    import mlflow

    keras_model = result.model.keras_model()
    rows = _images(spark, config, "test", config.data.test_limit).orderBy("row_id").select("features").collect()
    images = np.asarray([row["features"] for row in rows], np.float32).reshape(-1, 28, 28)
    metrics = {f"test_{key}": value for key, value in
               negative_elbo(keras_model, images, samples=1, seed=config.training.seed).items()}
    log_metrics_to_run(result.tracking_uri, result.run_id, metrics)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / PRIOR_SAMPLES
        save_prior_samples(keras_model, path, config.training.seed)
        mlflow.MlflowClient(result.tracking_uri).log_artifact(result.run_id, str(path))
    return metrics


def ingest(spark, config: FashionAutoencoderConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, config.store)


def run(spark, config: FashionAutoencoderConfig) -> DeepResult:
    ingest(spark, config)
    # Registered and judged against the champion by the figure the search's refit is (TUNING).
    result = train_and_record(spark, config, prepare(spark, config), evaluate, test_metric=TUNING.test_metric,
                              test_direction=TUNING.test_direction,
                              describe=DescribeReconstructions("features", (28, 28)))
    if architecture_of(config.model).variational:
        result.metrics.update(record_vae(spark, config, result))
    location = write_codes(spark, config, result)
    tag_run(result.tracking_uri, result.run_id, {"codes_uri": location})
    result.metrics["codes_uri"] = location
    return result


def summary(result: DeepResult, config: FashionAutoencoderConfig) -> str:
    return keras_summary(result, config) + f"\n  codes   {result.metrics['codes_uri']}"


TUNING = dl.Tuning(ingest=ingest, prepare=prepare, evaluate=evaluate, objective="val_loss",
                   direction="minimize", test_metric="reconstruction_mse", test_direction="minimize")


# The search's tuner factory (pipelines/fashion_autoencoder/__init__.py names it).
tuner = keras_tuner(TUNING)
