"""Great-circle distances between latitude / longitude columns: the column expression and the stage that adds
one (native Spark expressions, no Python UDFs)."""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from features.stages import StatelessStage

EARTH_DIAMETER_KM = 12734.0  # 2 x 6367 km, the constant of the NVIDIA taxi example


def haversine_km(lat1: Column, lon1: Column, lat2: Column, lon2: Column) -> Column:
    """Great-circle distance in km between two points given in degrees; null (missing) when any coordinate is."""
    known = lat1.isNotNull() & lon1.isNotNull() & lat2.isNotNull() & lon2.isNotNull()
    lat1, lon1, lat2, lon2 = (F.radians(c) for c in (lat1, lon1, lat2, lon2))
    inner = (F.lit(0.5) - F.cos(lat2 - lat1) / 2
             + F.cos(lat1) * F.cos(lat2) * (F.lit(1.0) - F.cos(lon2 - lon1)) / 2)
    # Clamp: rounding can push the argument a hair past 1 for antipodal points. least/greatest skip nulls,
    # hence the explicit ``known``: a missing coordinate must not become a distance of 0 km.
    clamped = F.least(F.greatest(inner, F.lit(0.0)), F.lit(1.0))
    return F.when(known, F.lit(EARTH_DIAMETER_KM) * F.asin(F.sqrt(clamped)))


def add_distance_km(df: DataFrame, output: str, from_latitude: str, from_longitude: str, to_latitude: str,
                    to_longitude: str) -> DataFrame:
    return df.withColumn(output, haversine_km(F.col(from_latitude), F.col(from_longitude), F.col(to_latitude),
                                              F.col(to_longitude)))


class GeoDistance(StatelessStage, HasOutputCol):
    """Great-circle distance (km) between two latitude / longitude column pairs."""

    fromLatitudeCol = Param(Params._dummy(), "fromLatitudeCol", "first point's latitude", TypeConverters.toString)
    fromLongitudeCol = Param(Params._dummy(), "fromLongitudeCol", "first point's longitude",
                             TypeConverters.toString)
    toLatitudeCol = Param(Params._dummy(), "toLatitudeCol", "second point's latitude", TypeConverters.toString)
    toLongitudeCol = Param(Params._dummy(), "toLongitudeCol", "second point's longitude", TypeConverters.toString)

    @keyword_only
    def __init__(self, *, outputCol: str | None = None, fromLatitudeCol: str | None = None,
                 fromLongitudeCol: str | None = None, toLatitudeCol: str | None = None,
                 toLongitudeCol: str | None = None):
        super().__init__()
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        g = self.getOrDefault
        return add_distance_km(dataset, self.getOutputCol(), g(self.fromLatitudeCol), g(self.fromLongitudeCol),
                               g(self.toLatitudeCol), g(self.toLongitudeCol))
