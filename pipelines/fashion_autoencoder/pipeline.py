"""The ``fashion_autoencoder`` pipeline: a convolutional autoencoder on Fashion-MNIST whose encoder
becomes a feature extractor: its codes for every image are written as a feature table."""
from __future__ import annotations

from typing import Literal

from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from features.arrays import mean_squared_error
from pipelines.fashion_mnist.images import feature_stages, ingest_fashion_mnist, input_files, read_images
from spark_ml_pipeline.report.describe import DescribeReconstructions
from spark_ml_pipeline.runtime.config_models import run_date
from spark_ml_pipeline.runtime.io import atomic_output, join, local_path
from spark_ml_pipeline.store.keras_run import DeepResult, train_and_record
from spark_ml_pipeline.store.keras_run import summary as keras_summary
from spark_ml_pipeline.store.tracking import tag_run
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.keras_estimator import KerasModel
from spark_ml_pipeline.train.models.autoencoder import encoder_of
from spark_ml_pipeline.train.splits import with_validation_flag

NAME = "fashion_autoencoder"


class FashionAutoencoderConfig(dl.DeepPipelineConfig):
    pipeline: str = NAME
    kind: Literal["fashion_autoencoder"] = NAME


def _images(spark, config: FashionAutoencoderConfig, split: str, limit):
    return PipelineModel(feature_stages()).transform(read_images(spark, config.store, split, limit))


def prepare(spark, config: FashionAutoencoderConfig) -> dl.Prepared:
    # The target is the input itself (a copy: the trainer reads features and label as two columns).
    train = _images(spark, config, "train", config.data.train_limit).withColumn("target", F.col("features"))
    train = with_validation_flag(train, config.training.validation_fraction, config.training.seed, ["row_id"])
    test = _images(spark, config, "test", config.data.test_limit)
    return dl.Prepared(train=train, tests={"test": test}, input_shape=(28, 28), label_column="target",
                       label_shape=(28, 28), label_dtype="float32", output_shape=(28, 28), output_activation=None,
                       loss="mse", metrics=("mae",), input_files=input_files(), feature_stages=feature_stages())


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


def ingest(spark, config: FashionAutoencoderConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, config.store)


def run(spark, config: FashionAutoencoderConfig) -> DeepResult:
    ingest(spark, config)
    result = train_and_record(spark, config, prepare(spark, config), evaluate,
                              describe=DescribeReconstructions("features", (28, 28)))
    location = write_codes(spark, config, result)
    tag_run(result.tracking_uri, result.run_id, {"codes_uri": location})
    result.metrics["codes_uri"] = location
    return result


def summary(result: DeepResult, config: FashionAutoencoderConfig) -> str:
    return keras_summary(result, config) + f"\n  codes   {result.metrics['codes_uri']}"


TUNING = dl.Tuning(ingest=ingest, prepare=prepare, evaluate=evaluate, objective="val_loss",
                   direction="minimize", test_metric="reconstruction_mse", test_direction="minimize")
