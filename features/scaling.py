"""Standardise an array<float> feature column for neural networks: a Spark ML Estimator and its Model.

XGBoost takes the taxi features as they are (NaN = missing, raw 32-bit category hashes); a neural network
needs each position centred and scaled, with missing values at the mean. ``fit`` computes every position's
mean and standard deviation in one aggregation (NaN and null ignored); ``transform`` is one native
higher-order expression, no Python UDF.
"""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


class _ColumnParams(Params):
    inputCol = Param(Params._dummy(), "inputCol", "array<float> column to standardise", TypeConverters.toString)
    outputCol = Param(Params._dummy(), "outputCol", "standardised array<float> column", TypeConverters.toString)


class StandardizeArray(Estimator, _ColumnParams, DefaultParamsReadable, DefaultParamsWritable):
    """``(x - mean) / std`` per array position; missing (NaN/null) -> 0, i.e. the mean."""

    @keyword_only
    def __init__(self, *, inputCol: str = "features", outputCol: str = "features_scaled"):
        super().__init__()
        self._setDefault(inputCol="features", outputCol="features_scaled")
        self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> "StandardizeArrayModel":
        column = self.getOrDefault(self.inputCol)
        if column not in dataset.columns:
            raise ValueError(f"StandardizeArray: input has no column {column!r} (columns: {', '.join(dataset.columns)})")
        size = dataset.select(F.max(F.size(column)).alias("n")).first()["n"]
        if not size:
            raise ValueError(f"StandardizeArray: column {column!r} has no rows or only empty arrays")
        present = [F.nanvl(F.col(column)[i].cast("double"), F.lit(None).cast("double")) for i in range(size)]
        row = dataset.agg(*[F.avg(v).alias(f"m{i}") for i, v in enumerate(present)],
                          *[F.stddev_pop(v).alias(f"s{i}") for i, v in enumerate(present)]).first()
        means = [float(row[f"m{i}"] or 0.0) for i in range(size)]
        # A constant (or all-missing) position is only centred.
        stds = [float(row[f"s{i}"]) if row[f"s{i}"] else 1.0 for i in range(size)]
        model = StandardizeArrayModel(inputCol=column, outputCol=self.getOrDefault(self.outputCol), means=means,
                                      stds=stds)
        return self._copyValues(model)


class StandardizeArrayModel(Model, _ColumnParams, DefaultParamsReadable, DefaultParamsWritable):
    means = Param(Params._dummy(), "means", "mean of each position", TypeConverters.toListFloat)
    stds = Param(Params._dummy(), "stds", "standard deviation of each position", TypeConverters.toListFloat)

    @keyword_only
    def __init__(self, *, inputCol: str = "features", outputCol: str = "features_scaled", means=None, stds=None):
        super().__init__()
        self._setDefault(inputCol="features", outputCol="features_scaled")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        means = F.array(*[F.lit(m) for m in self.getOrDefault(self.means)])
        stds = F.array(*[F.lit(s) for s in self.getOrDefault(self.stds)])
        scaled = F.transform(F.col(self.getOrDefault(self.inputCol)), lambda x, i: F.coalesce(
            F.nanvl((x.cast("double") - means[i]) / stds[i], F.lit(None).cast("double")), F.lit(0.0)).cast("float"))
        return dataset.withColumn(self.getOrDefault(self.outputCol), scaled)
