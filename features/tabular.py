"""Features of any tabular data set, declared by configuration: numbers, categories, date-time parts, distances.

Pure DataFrame -> DataFrame functions (native Spark expressions, no Python UDFs) and the Spark ML stages that
apply them. :func:`tabular_feature_stages` builds the whole list from plain declarations; fitted on training
rows (the category indexers learn their categories there) and saved inside the model, scoring applies
exactly the transform training saw. Every feature reaches XGBoost as one ``array<float>`` column in which a
missing value is NaN (XGBoost's "missing"), never a dropped row.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pyspark import keyword_only
from pyspark.ml.feature import StringIndexer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from features.stages import StatelessStage
from features.arrays import AssembleArray
from features.categories import HashCategories, hash_column
from features.geo import GeoDistance

DATETIME_PARTS = {
    "year": F.year,
    "month": F.month,
    "day": F.dayofmonth,
    "day_of_week": F.dayofweek,  # 1 = Sunday ... 7 = Saturday
    "day_of_year": F.dayofyear,
    "week_of_year": F.weekofyear,
    "hour": F.hour,
    "minute": F.minute,
    "is_weekend": lambda ts: F.dayofweek(ts).isin(1, 7).cast("int"),
}


# --- pure functions -------------------------------------------------------------------------------

def datetime_part_columns(column: str, parts: Sequence[str]) -> list[str]:
    return [f"{column}_{part}" for part in parts]


def add_datetime_parts(df: DataFrame, column: str, parts: Sequence[str]) -> DataFrame:
    """``<column>_<part>`` for each part of a date / timestamp column (null stays null)."""
    unknown = [p for p in parts if p not in DATETIME_PARTS]
    if unknown:
        raise ValueError(f"unknown datetime part(s) {unknown} (known: {', '.join(DATETIME_PARTS)})")
    ts = F.col(column)
    return df.withColumns({name: DATETIME_PARTS[part](ts) for name, part
                           in zip(datetime_part_columns(column, parts), parts)})


def index_column(column: str) -> str:
    return f"{column}_index"


def feature_output_columns(indexed: Sequence[str] = (), hashed: Sequence[str] = (),
                           datetimes: Mapping[str, Sequence[str]] | None = None,
                           distances: Sequence[str] = ()) -> list[str]:
    """The columns the stages add (before the assembled array), in a fixed order."""
    return [*map(index_column, indexed), *map(hash_column, hashed),
            *(c for column, parts in (datetimes or {}).items() for c in datetime_part_columns(column, parts)),
            *distances]


def feature_columns(numeric: Sequence[str] = (), indexed: Sequence[str] = (), hashed: Sequence[str] = (),
                    datetimes: Mapping[str, Sequence[str]] | None = None, distances: Sequence[str] = ()) -> list[str]:
    """The numeric columns the model is trained on, in the order of the features array."""
    return [*numeric, *feature_output_columns(indexed, hashed, datetimes, distances)]


# --- Spark ML stages ---------------------------------------------------------------------------------

class DatetimeParts(StatelessStage, HasInputCol):
    """``<inputCol>_<part>`` columns of a date / timestamp column."""

    parts = Param(Params._dummy(), "parts", f"parts to derive ({', '.join(DATETIME_PARTS)})",
                  TypeConverters.toListString)

    @keyword_only
    def __init__(self, *, inputCol: str | None = None, parts: list[str] | None = None):
        super().__init__()
        self._setDefault(parts=["year", "month", "day", "day_of_week", "hour"])
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return add_datetime_parts(dataset, self.getInputCol(), self.getOrDefault(self.parts))


def tabular_feature_stages(numeric: Sequence[str] = (), indexed: Sequence[str] = (),
                           hashed: Mapping[str, int] | None = None,
                           datetimes: Mapping[str, Sequence[str]] | None = None,
                           distances: Mapping[str, Sequence[str]] | None = None,
                           assemble_into: str = "features") -> list:
    """The feature stages (to fit on training rows), ending in the ``array<float>`` column XGBoost reads.

    ``indexed``: categories mapped to indices learnt from the training rows, most frequent first (a category
    unseen in training, or a missing one, gets the extra index); ``hashed``: column -> buckets;
    ``datetimes``: column -> parts; ``distances``: output column -> (from latitude, from longitude, to
    latitude, to longitude)."""
    hashed, datetimes, distances = dict(hashed or {}), dict(datetimes or {}), dict(distances or {})
    stages: list = []
    if indexed:
        stages.append(StringIndexer(inputCols=list(indexed), outputCols=[index_column(c) for c in indexed],
                                    handleInvalid="keep", stringOrderType="frequencyDesc"))
    for buckets in sorted(set(hashed.values())):
        stages.append(HashCategories(inputCols=[c for c, b in hashed.items() if b == buckets], numBuckets=buckets))
    for column, parts in datetimes.items():
        stages.append(DatetimeParts(inputCol=column, parts=list(parts)))
    for output, (from_lat, from_lon, to_lat, to_lon) in distances.items():
        stages.append(GeoDistance(outputCol=output, fromLatitudeCol=from_lat, fromLongitudeCol=from_lon,
                                  toLatitudeCol=to_lat, toLongitudeCol=to_lon))
    stages.append(AssembleArray(inputCols=feature_columns(numeric, indexed, list(hashed), datetimes,
                                                          list(distances)), outputCol=assemble_into))
    return stages
