"""Categories hashed to integers, for models that read numbers: the column expression and its stage. Stable
across runs and machines (Spark's Murmur3 of the category's string form), so scoring hashes as training did."""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features.stages import StatelessStage


def hash_column(column: str) -> str:
    return f"{column}_hash"


def hash_categories(df: DataFrame, columns: list[str], num_buckets: int = 0) -> DataFrame:
    """``<col>_hash``: a 32-bit hash of each category (bucketed when ``num_buckets`` > 0); nulls -> -1."""
    hashed = {}
    for column in columns:
        value = F.hash(F.col(column).cast("string"))
        if num_buckets:
            value = F.pmod(value, F.lit(num_buckets))
        hashed[hash_column(column)] = F.when(F.col(column).isNull(), F.lit(-1)).otherwise(value)
    return df.withColumns(hashed)


class HashCategories(StatelessStage):
    inputCols = Param(Params._dummy(), "inputCols", "categorical columns", TypeConverters.toListString)
    numBuckets = Param(Params._dummy(), "numBuckets", "0 = raw 32-bit hash", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, inputCols: list[str] | None = None, numBuckets: int = 0):
        super().__init__()
        self._setDefault(inputCols=[], numBuckets=0)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return hash_categories(dataset, self.getOrDefault(self.inputCols), self.getOrDefault(self.numBuckets))
