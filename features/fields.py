"""Features for fields on a regular grid (PDE surrogates)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def with_grid_coordinates(df: DataFrame, column: str, height: int, width: int, output: str = "features") -> DataFrame:
    """Append each grid point's normalised (row, column) position to its value: an (H, W, 3) field
    flattened channel-last. Convolutions are translation-invariant, but a PDE solution with boundary
    conditions is not: the coordinates tell the network where a point lies (the positional encoding
    neural-operator examples use)."""
    def point(i):
        return F.array(F.col(column)[i].cast("float"),
                       (F.floor(i / width) / max(height - 1, 1)).cast("float"),
                       ((i % width) / max(width - 1, 1)).cast("float"))

    return df.withColumn(output, F.flatten(F.transform(F.sequence(F.lit(0), F.lit(height * width - 1)), point)))
