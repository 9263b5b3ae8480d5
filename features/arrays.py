"""Column expressions on array columns (native higher-order functions, no Python UDFs)."""
from __future__ import annotations

import math
from typing import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F


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
