"""Column expressions on array columns (native higher-order functions, no Python UDFs)."""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


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
