"""Fashion-MNIST into the store: IDX files -> Parquet (row_id, label, pixels) once, then read by Spark.

Shared by the ``fashion_mnist`` classifier and the ``fashion_autoencoder`` pipelines.
"""
from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from features.images import normalise_pixels
from pipelines.datasets.fashion_mnist import default_root, load_fashion_mnist
from pipelines.io import HadoopFS, atomic_output
from pipelines.lineage import local_file_stats
from pipelines.store import Store

SPLITS = ("train", "test")
SCHEMA = "row_id long, label int, pixels array<smallint>"


def raw_location(store: Store, split: str) -> str:
    return store.data("fashion_mnist", "raw", split)


def input_files() -> list[tuple[str, int, int]]:
    return local_file_stats(p for p in default_root().iterdir() if p.is_file())


def ingest_fashion_mnist(spark: SparkSession, store: Store) -> dict[str, int]:
    """Write each split to Parquet unless it is already there (idempotent); returns row counts."""
    counts = {}
    fs = HadoopFS(spark)
    for split in SPLITS:
        target = raw_location(store, split)
        if not fs.exists(target):
            images, labels = load_fashion_mnist(split)
            frame = pd.DataFrame({"row_id": range(len(labels)), "label": labels.astype("int32"),
                                  "pixels": list(images.reshape(len(images), -1).astype("int16"))})
            with atomic_output(spark, target) as temporary:
                spark.createDataFrame(frame, SCHEMA).repartition(4).write.parquet(temporary)
        counts[split] = spark.read.parquet(target).count()
    return counts


def read_images(spark: SparkSession, store: Store, split: str, limit: int | None) -> DataFrame:
    """Normalised images: ``features`` array<float> in [0, 1], 784 per row."""
    df = spark.read.parquet(raw_location(store, split))
    if limit:
        df = df.where(F.col("row_id") < limit)
    return normalise_pixels(df, "pixels", "features").drop("pixels")
