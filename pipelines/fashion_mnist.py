"""The ``fashion_mnist`` pipeline: Fashion-MNIST image classification with CNN / ResNet on Horovod."""
from __future__ import annotations

from typing import Literal

from pipelines import deep_learning as dl
from pipelines.image_data import ingest_fashion_mnist, input_files, read_images
from pipelines.store import Store

NAME = "fashion_mnist"
CLASSES = 10


class FashionMnistConfig(dl.DeepPipelineConfig):
    pipeline: Literal["fashion_mnist"] = NAME


def ingest(spark, config: FashionMnistConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, Store(config.store))


def prepare(spark, config: FashionMnistConfig) -> dl.Prepared:
    store = Store(config.store)
    train = read_images(spark, store, "train", config.data.train_limit)
    train = dl.with_validation_flag(train, config.training.validation_fraction, config.training.seed, "row_id")
    test = read_images(spark, store, "test", config.data.test_limit)
    return dl.Prepared(train=train, tests={"test": test}, input_shape=(28, 28), label_column="label",
                       label_shape=(), label_dtype="int32", output_shape=(CLASSES,), output_activation="softmax",
                       loss="sparse_categorical_crossentropy", metrics=("accuracy",), input_files=input_files())


def evaluate(scored) -> dict:
    return dl.classification_metrics(scored, classes=CLASSES)


def run(spark, config: FashionMnistConfig) -> dl.DeepResult:
    ingest(spark, config)
    return dl.train_and_record(spark, config, prepare(spark, config), evaluate)


summary = dl.summary
CONFIG = FashionMnistConfig
TUNING = dl.Tuning(ingest=ingest, prepare=prepare, evaluate=evaluate, objective="val_accuracy",
                   direction="maximize", test_metric="accuracy", test_direction="maximize")
STAGES = {"ingest": ingest, "train": run, "run": run}
