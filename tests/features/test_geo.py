"""Great-circle distances: the NVIDIA example's formula, known distances, and missing coordinates."""
import math

import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F

from features.geo import add_distance_km, haversine_km


def reference_haversine(lat1, lon1, lat2, lon2):
    """The NVIDIA example's formula, in plain Python."""
    lat1, lon1, lat2, lon2 = map(math.radians, (lat1, lon1, lat2, lon2))
    inner = 0.5 - math.cos(lat2 - lat1) / 2 + math.cos(lat1) * math.cos(lat2) * (1 - math.cos(lon2 - lon1)) / 2
    return 12734 * math.asin(math.sqrt(inner))


POINTS = [  # (name, lat1, lon1, lat2, lon2, approximate real distance in km)
    ("same point", 40.7580, -73.9855, 40.7580, -73.9855, 0.0),
    ("Times Sq -> JFK", 40.7580, -73.9855, 40.6413, -73.7781, 21.8),
    ("JFK -> LaGuardia", 40.6413, -73.7781, 40.7769, -73.8740, 17.1),
    ("one degree of latitude", 40.0, -74.0, 41.0, -74.0, 111.1),
]


def test_haversine_matches_reference_formula_and_known_distances(spark):
    schema = "name string, lat1 double, lon1 double, lat2 double, lon2 double"
    df = spark.createDataFrame([p[:5] for p in POINTS], schema)
    actual = df.select("name", haversine_km(F.col("lat1"), F.col("lon1"), F.col("lat2"), F.col("lon2")).alias("km"))
    expected = spark.createDataFrame([(p[0], reference_haversine(*p[1:5])) for p in POINTS], "name string, km double")
    assert_approx_df_equality(actual, expected, precision=1e-9)
    for (name, *_coords, real_km), row in zip(POINTS, actual.collect()):
        assert row["km"] == pytest.approx(real_km, abs=0.3), name


def test_distance_between_jfk_and_laguardia(spark):
    df = spark.createDataFrame([(40.6413, -73.7781, 40.7769, -73.8740), (40.0, -73.0, None, -73.0)],
                               "a_lat double, a_lon double, b_lat double, b_lon double")
    rows = add_distance_km(df, "km", "a_lat", "a_lon", "b_lat", "b_lon").select("km").collect()
    assert rows[0]["km"] == pytest.approx(17.0, abs=0.3)
    assert rows[1]["km"] is None
