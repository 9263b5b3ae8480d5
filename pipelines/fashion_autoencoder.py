"""The ``fashion_autoencoder`` pipeline: a convolutional autoencoder on Fashion-MNIST whose encoder
becomes a feature extractor: its codes for every image are written as a feature table."""
from __future__ import annotations

from typing import Literal

from pyspark.sql import functions as F

from features.arrays import mean_squared_error
from pipelines import deep_learning as dl
from pipelines.image_data import ingest_fashion_mnist, input_files, read_images
from pipelines.io import atomic_output, join, local_path
from pipelines.keras_estimator import KerasModel
from pipelines.store import Store

NAME = "fashion_autoencoder"


class FashionAutoencoderConfig(dl.DeepPipelineConfig):
    pipeline: Literal["fashion_autoencoder"] = NAME


def prepare(spark, config: FashionAutoencoderConfig) -> dl.Prepared:
    store = Store(config.store)
    # The target is the input itself (a copy: the trainer reads features and label as two columns).
    train = read_images(spark, store, "train", config.data.train_limit).withColumn("target", F.col("features"))
    train = dl.with_validation_flag(train, config.training.validation_fraction, config.training.seed, "row_id")
    test = read_images(spark, store, "test", config.data.test_limit)
    return dl.Prepared(train=train, tests={"test": test}, input_shape=(28, 28), label_column="target",
                       label_shape=(28, 28), label_dtype="float32", output_shape=(28, 28), output_activation=None,
                       loss="mse", metrics=("mae",), input_files=input_files())


def evaluate(scored) -> dict:
    row = scored.agg(F.avg(mean_squared_error(F.col("prediction"), F.col("features"))).alias("mse"),
                     F.count(F.lit(1)).alias("rows")).first()
    return {"reconstruction_mse": float(row["mse"]), "rows": row["rows"]}


def codes_location(config: FashionAutoencoderConfig) -> str:
    return Store(config.store).data(NAME, "codes", f"run_date={dl.run_date(config)}")


def write_codes(spark, config: FashionAutoencoderConfig, result: dl.DeepResult) -> str:
    """The encoder's code for every train and test image, as a feature table (row_id, split, label, code)."""
    from pipelines.models.autoencoder import encoder_of

    encoder_path = str(local_path(join(dl.work_location(config), "encoder.keras")))
    encoder_of(result.model.keras_model()).save(encoder_path)
    encoder = KerasModel(modelPath=encoder_path, featuresCol="features", inputShape=[28, 28],
                         predictionCol="code")
    store = Store(config.store)
    images = (read_images(spark, store, "train", config.data.train_limit).withColumn("split", F.lit("train"))
              .unionByName(read_images(spark, store, "test", config.data.test_limit).withColumn("split", F.lit("test"))))
    output = codes_location(config)
    with atomic_output(spark, output) as temporary:
        encoder.transform(images).select("row_id", "split", "label", "code").write.parquet(temporary)
    return output


def ingest(spark, config: FashionAutoencoderConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, Store(config.store))


def run(spark, config: FashionAutoencoderConfig) -> dl.DeepResult:
    from mlflow import MlflowClient

    ingest(spark, config)
    result = dl.train_and_record(spark, config, prepare(spark, config), evaluate)
    location = write_codes(spark, config, result)
    MlflowClient(result.tracking_uri).set_tag(result.run_id, "codes_uri", location)
    result.metrics["codes_uri"] = location
    return result


def summary(result: dl.DeepResult, config: FashionAutoencoderConfig) -> str:
    return dl.summary(result, config) + f"\n  codes   {result.metrics['codes_uri']}"


CONFIG = FashionAutoencoderConfig
TUNING = dl.Tuning(ingest=ingest, prepare=prepare, evaluate=evaluate, objective="val_loss",
                   direction="minimize", test_metric="reconstruction_mse", test_direction="minimize")
STAGES = {"ingest": ingest, "train": run, "run": run}
