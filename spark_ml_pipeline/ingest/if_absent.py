"""The one "ingest if absent": build a dataset once, commit it atomically, reuse it on every later run."""
from __future__ import annotations

from typing import Callable

from pyspark.sql import DataFrame, SparkSession

from spark_ml_pipeline.runtime.io import HadoopFS, atomic_output


def ensure_dataset(spark: SparkSession, location: str, build: Callable[[], DataFrame]) -> DataFrame:
    """The Parquet dataset at ``location``; ``build()`` makes it first when it is not there yet.

    The write goes to a hidden temporary location renamed into place when complete, so a crash leaves
    nothing that a later run would mistake for the finished dataset."""
    if not HadoopFS(spark).exists(location):
        with atomic_output(spark, location) as temporary:
            build().write.parquet(temporary)
    return spark.read.parquet(location)
