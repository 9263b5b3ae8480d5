"""The ``fashion_mnist`` pipeline: Fashion-MNIST image classification with CNN / ResNet on Horovod."""
from __future__ import annotations

from typing import Literal

from pyspark.ml import PipelineModel

from features.images import pixel_feature_stages
from spark_ml_pipeline.ingest.fashion_mnist import CLASS_NAMES, ingest_fashion_mnist, input_files, read_images
from spark_ml_pipeline.report.describe import DescribeClasses
from spark_ml_pipeline.runs.keras_run import DeepResult, train_and_record
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.metrics import classification_metrics
from spark_ml_pipeline.train.splits import with_validation_flag
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

NAME = "fashion_mnist"
CLASSES = 10


class FashionMnistConfig(dl.DeepPipelineConfig):
    pipeline: str = NAME
    kind: Literal["fashion_mnist"] = NAME


def ingest(spark, config: FashionMnistConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, config.store)


def prepare(spark, config: FashionMnistConfig) -> dl.Prepared:
    stages = pixel_feature_stages()
    featurize = PipelineModel(stages)
    train = featurize.transform(read_images(spark, config.store, "train", config.data.train_limit))
    train = with_validation_flag(train, config.training.validation_fraction, config.training.seed, ["row_id"])
    test = featurize.transform(read_images(spark, config.store, "test", config.data.test_limit))
    return dl.Prepared(train=train, tests={"test": test}, input_shape=(28, 28), label_column="label",
                       label_shape=(), label_dtype="int32", output_shape=(CLASSES,), output_activation="softmax",
                       loss="sparse_categorical_crossentropy", metrics=("accuracy",), input_files=input_files(),
                       feature_stages=stages)


# The report: confusion matrix, curves, calibration and the most confident mistakes (the test images).
DESCRIBE = DescribeClasses(CLASS_NAMES, image_column="features", image_shape=(28, 28))


def evaluate(scored) -> dict:
    return classification_metrics(scored, classes=CLASSES)


def run(spark, config: FashionMnistConfig) -> DeepResult:
    ingest(spark, config)
    # Registered and judged against the champion by the figure the search's refit is (TUNING).
    return train_and_record(spark, config, prepare(spark, config), evaluate, test_metric=TUNING.test_metric,
                            test_direction=TUNING.test_direction, describe=DESCRIBE)


TUNING = dl.Tuning(ingest=ingest, prepare=prepare, evaluate=evaluate, objective="val_accuracy",
                   direction="maximize", test_metric="accuracy", test_direction="maximize")


# The search's tuner factory (pipelines/fashion_mnist/__init__.py names it).
tuner = keras_tuner(TUNING)
