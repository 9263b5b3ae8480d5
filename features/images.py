"""Image features: pixel arrays normalised in Spark."""
from __future__ import annotations

from pyspark.sql import DataFrame

from features.arrays import scale


def normalise_pixels(df: DataFrame, column: str = "pixels", output: str = "features",
                     max_value: float = 255.0) -> DataFrame:
    """Pixels from [0, max_value] to [0, 1] floats."""
    return df.withColumn(output, scale(df[column], 1.0 / max_value))
