"""Taxi-trip features: pure DataFrame -> DataFrame functions, and Spark ML stages that apply them.

Everything here is built from native Spark column expressions (no Python UDFs), so it runs inside the
JVM at Spark speed. The stages are stateless Transformers; wrapped in a PipelineModel they are saved
with the trained model, so scoring applies exactly the transform training saw.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.arrays import AssembleArray, literal_array
from features.categories import HashCategories, hash_column
from features.geo import haversine_km
from features.stages import StatelessStage

TIME_PART_COLUMNS = ["year", "month", "day", "day_of_week", "is_weekend", "hour"]
COORDINATE_COLUMNS = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
AIRPORT_FLAG_COLUMNS = ["jfk_trip", "lga_trip", "ewr_trip"]
DEFAULT_CATEGORIES = ["vendor_id", "rate_code", "store_and_fwd_flag"]
LABEL = "fare_amount"


# --- pure functions -------------------------------------------------------------------------------

def add_time_parts(df: DataFrame, timestamp: str = "pickup_datetime") -> DataFrame:
    """Calendar parts of the pickup time, as wall-clock values (timestamps are TIMESTAMP_NTZ)."""
    ts = F.col(timestamp)
    day_of_week = F.dayofweek(ts)  # 1 = Sunday ... 7 = Saturday
    return df.withColumns({
        "year": F.year(ts), "month": F.month(ts), "day": F.dayofmonth(ts),
        "day_of_week": day_of_week,
        "is_weekend": day_of_week.isin(1, 7).cast("int"),
        "hour": F.hour(ts),
    })


def index_lookup(values: Sequence[float | None], index: Column) -> Column:
    """``values[index]`` as a native expression (a literal array); null when out of range or missing (NaN)."""
    array = literal_array(values)
    found = F.element_at(array, index.cast("int") + 1)
    return F.when(index.between(0, len(values) - 1) & ~F.isnan(found), found)


def add_zone_coordinates(df: DataFrame, longitudes: Sequence[float | None],
                         latitudes: Sequence[float | None]) -> DataFrame:
    """Fill missing coordinates from zone centroids indexed by zone id (current-schema files carry zone ids
    only); ``longitudes[i]``, ``latitudes[i]`` is zone i's centroid."""
    if "pickup_zone" not in df.columns:
        return df
    filled = {}
    for end in ("pickup", "dropoff"):
        zone = F.col(f"{end}_zone")
        filled[f"{end}_longitude"] = F.coalesce(F.col(f"{end}_longitude"), index_lookup(longitudes, zone))
        filled[f"{end}_latitude"] = F.coalesce(F.col(f"{end}_latitude"), index_lookup(latitudes, zone))
    return df.withColumns(filled)


def add_haversine(df: DataFrame, output: str = "haversine_km") -> DataFrame:
    return df.withColumn(output, haversine_km(F.col("pickup_latitude"), F.col("pickup_longitude"),
                                              F.col("dropoff_latitude"), F.col("dropoff_longitude")))


def add_airport_flags(df: DataFrame, airports: Mapping[str, tuple[float, float]], radius_km: float = 2.0) -> DataFrame:
    """``<code>_trip`` = 1 when either end of the trip lies within ``radius_km`` of that airport
    (``airports``: code -> (longitude, latitude))."""
    flags = {}
    for code, (lon, lat) in airports.items():
        def near(lat_col: str, lon_col: str) -> Column:
            return haversine_km(F.col(lat_col), F.col(lon_col), F.lit(lat), F.lit(lon)) <= radius_km
        either_end = near("pickup_latitude", "pickup_longitude") | near("dropoff_latitude", "dropoff_longitude")
        flags[f"{code.lower()}_trip"] = F.coalesce(either_end.cast("int"), F.lit(0))
    return df.withColumns(flags)


def feature_columns(categories: list[str] = DEFAULT_CATEGORIES) -> list[str]:
    """The numeric columns the model is trained on, in a fixed order."""
    return (["passenger_count", "trip_distance", *COORDINATE_COLUMNS, "haversine_km", *TIME_PART_COLUMNS,
             *AIRPORT_FLAG_COLUMNS, *(hash_column(c) for c in categories)])


# --- Spark ML stages ---------------------------------------------------------------------------------

class TimeParts(StatelessStage):
    timestampCol = Param(Params._dummy(), "timestampCol", "timestamp to split", TypeConverters.toString)

    @keyword_only
    def __init__(self, *, timestampCol: str = "pickup_datetime"):
        super().__init__()
        self._setDefault(timestampCol="pickup_datetime")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return add_time_parts(dataset, self.getOrDefault(self.timestampCol))


class ZoneCoordinates(StatelessStage):
    """Zone centroids as Params (NaN = unknown): the saved stage carries its lookup table."""

    longitudes = Param(Params._dummy(), "longitudes", "centroid longitude by zone id", TypeConverters.toListFloat)
    latitudes = Param(Params._dummy(), "latitudes", "centroid latitude by zone id", TypeConverters.toListFloat)

    @keyword_only
    def __init__(self, *, longitudes: list[float] | None = None, latitudes: list[float] | None = None):
        super().__init__()
        self._set(**{k: [math.nan if v is None else v for v in values]
                     for k, values in self._input_kwargs.items() if values is not None})

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return add_zone_coordinates(dataset, self.getOrDefault(self.longitudes), self.getOrDefault(self.latitudes))


class Haversine(StatelessStage):
    outputCol = Param(Params._dummy(), "outputCol", "distance column (km)", TypeConverters.toString)

    @keyword_only
    def __init__(self, *, outputCol: str = "haversine_km"):
        super().__init__()
        self._setDefault(outputCol="haversine_km")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return add_haversine(dataset, self.getOrDefault(self.outputCol))


class AirportFlags(StatelessStage):
    radiusKm = Param(Params._dummy(), "radiusKm", "distance to an airport that flags a trip",
                     TypeConverters.toFloat)
    codes = Param(Params._dummy(), "codes", "airport codes (flag columns <code>_trip)", TypeConverters.toListString)
    longitudes = Param(Params._dummy(), "longitudes", "airport longitudes", TypeConverters.toListFloat)
    latitudes = Param(Params._dummy(), "latitudes", "airport latitudes", TypeConverters.toListFloat)

    @keyword_only
    def __init__(self, *, radiusKm: float = 2.0, codes: list[str] | None = None,
                 longitudes: list[float] | None = None, latitudes: list[float] | None = None):
        super().__init__()
        self._setDefault(radiusKm=2.0)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        g = self.getOrDefault
        airports = {code: (lon, lat) for code, lon, lat in zip(g(self.codes), g(self.longitudes), g(self.latitudes))}
        return add_airport_flags(dataset, airports, g(self.radiusKm))


def feature_stages(zone_centroids: tuple[Sequence[float | None], Sequence[float | None]],
                   airports: Mapping[str, tuple[float, float]], categories: list[str] = DEFAULT_CATEGORIES,
                   num_buckets: int = 0, airport_radius_km: float = 2.0,
                   assemble_into: str | None = "features") -> list[Transformer]:
    """The taxi feature stages; ``zone_centroids`` (longitudes, latitudes by zone id) and ``airports``
    (code -> (longitude, latitude)) are the reference data, saved inside the stages."""
    codes = sorted(airports)
    stages = [ZoneCoordinates(longitudes=list(zone_centroids[0]), latitudes=list(zone_centroids[1])), TimeParts(),
              Haversine(),
              AirportFlags(radiusKm=airport_radius_km, codes=codes, longitudes=[airports[c][0] for c in codes],
                           latitudes=[airports[c][1] for c in codes]),
              HashCategories(inputCols=list(categories), numBuckets=num_buckets)]
    if assemble_into:
        stages.append(AssembleArray(inputCols=feature_columns(list(categories)), outputCol=assemble_into))
    return stages
