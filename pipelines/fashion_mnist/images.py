"""Fashion-MNIST into the store: IDX files -> Parquet (row_id, label, pixels) once, then read by Spark.

Shared by the ``fashion_mnist`` classifier and the ``fashion_autoencoder`` pipelines (both read the same
ingested images; the data set is stored under ``fashion_mnist`` whichever pipeline ingested it first).
"""
from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.images import NormalisePixels
from pipelines.fashion_mnist.dataset import default_root, load_fashion_mnist
from spark_ml_pipeline.ingest.files import local_file_stats
from spark_ml_pipeline.ingest.if_absent import ensure_dataset
from spark_ml_pipeline.runtime.config_models import StoreConfig

DATASET = "fashion_mnist"
SPLITS = ("train", "test")
SCHEMA = "row_id long, label int, pixels array<smallint>"


def raw_location(store: StoreConfig, split: str) -> str:
    return store.data(DATASET, "raw", split)


def input_files() -> list[tuple[str, int, int]]:
    return local_file_stats(p for p in default_root().iterdir() if p.is_file())


def ingest_fashion_mnist(spark: SparkSession, store: StoreConfig) -> dict[str, int]:
    """Write each split to Parquet unless it is already there (idempotent); returns row counts."""
    def build(split: str):
        images, labels = load_fashion_mnist(split)
        frame = pd.DataFrame({"row_id": range(len(labels)), "label": labels.astype("int32"),
                              "pixels": list(images.reshape(len(images), -1).astype("int16"))})
        return spark.createDataFrame(frame, SCHEMA).repartition(4)

    return {split: ensure_dataset(spark, raw_location(store, split), lambda split=split: build(split)).count()
            for split in SPLITS}


def feature_stages() -> list:
    """Ingested rows -> ``features``: 784 pixels in [0, 1] (what the models read and scoring applies)."""
    return [NormalisePixels(inputCol="pixels", outputCol="features")]


def read_images(spark: SparkSession, store: StoreConfig, split: str, limit: int | None) -> DataFrame:
    """Ingested images (row_id, label, pixels), the first ``limit`` rows when given."""
    df = spark.read.parquet(raw_location(store, split))
    return df.where(F.col("row_id") < limit) if limit else df
