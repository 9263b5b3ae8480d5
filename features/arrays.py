"""Array columns: expressions on them (native higher-order functions, no Python UDFs), and the stage that packs
numeric columns into one."""
from __future__ import annotations

import math
from typing import Sequence

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.stages import StatelessStage


def literal_array(values: Sequence[float | int | str | None], element_type: str = "double") -> Column:
    """A literal ``array<double>`` (``array<int>``, ``array<string>``) of ``values``, built from one SQL expression:
    one call into the JVM however long the list, where ``F.array(*[F.lit(v) ...])`` makes two or three per
    element (the generator's 1,200-zone lists cost seconds of Py4J round trips per job). None and NaN become NaN
    (doubles only)."""
    if element_type == "double":
        items = ["CAST('NaN' AS DOUBLE)" if v is None or math.isnan(v) else f"{float(v)!r}D" for v in values]
    elif element_type == "int":
        items = [str(int(v)) for v in values]
    elif element_type == "string":
        items = ["'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values]
    else:
        raise ValueError(f"literal_array: element_type must be double, int or string, got {element_type!r}")
    if any(item in ("infD", "-infD") for item in items):
        raise ValueError("literal_array: values must be finite")
    return F.expr(f"array({', '.join(items)})")


def scale(values: Column, factor: float, shift: float = 0.0) -> Column:
    """Element-wise ``(v - shift) * factor`` as array<float>."""
    return F.transform(values, lambda v: ((v.cast("float") - F.lit(shift)) * F.lit(factor)).cast("float"))


def argmax(values: Column) -> Column:
    """0-based index of the largest element (the first one on ties)."""
    return (F.array_position(values, F.array_max(values)) - 1).cast("int")


def squared_error_sum(prediction: Column, target: Column) -> Column:
    return F.aggregate(F.zip_with(prediction, target, lambda p, t: (p - t) * (p - t)), F.lit(0.0),
                       lambda acc, v: acc + v)


def squared_sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, v: acc + v * v)


def relative_l2(prediction: Column, target: Column) -> Column:
    """||prediction - target||_2 / ||target||_2 per row (the usual PDE-surrogate error)."""
    return F.sqrt(squared_error_sum(prediction, target)) / F.sqrt(squared_sum(target))


def mean_squared_error(prediction: Column, target: Column) -> Column:
    return squared_error_sum(prediction, target) / F.size(target)


class AssembleArray(StatelessStage):
    """Pack numeric columns into one ``array<float>`` column (nulls kept as NaN = missing for XGBoost).

    Used instead of ``VectorAssembler``: a native expression, and XGBoost's Spark estimator reads it
    without a vector-to-array UDF."""

    inputCols = Param(Params._dummy(), "inputCols", "numeric columns", TypeConverters.toListString)
    outputCol = Param(Params._dummy(), "outputCol", "array column", TypeConverters.toString)

    @keyword_only
    def __init__(self, *, inputCols: list[str] | None = None, outputCol: str = "features"):
        super().__init__()
        self._setDefault(outputCol="features")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        values = [F.coalesce(F.col(c).cast("float"), F.lit(float("nan")).cast("float"))
                  for c in self.getOrDefault(self.inputCols)]
        return dataset.withColumn(self.getOrDefault(self.outputCol), F.array(*values))
