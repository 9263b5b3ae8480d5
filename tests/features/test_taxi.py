"""Feature functions on hand-computed rows."""
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from pyspark.ml import PipelineModel

from features import taxi
from features.fields import with_grid_coordinates
from pipelines.taxi_fare.zones import AIRPORT_ZONES, airport_coordinates, centroid_arrays, load_zones


def _at(*moments):
    return [(datetime.fromisoformat(m),) for m in moments]


def test_time_parts_keep_wall_clock_across_dst(spark):
    """TLC times are local wall-clock times: parts must not shift at New York's DST changes."""
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        moments = ["2015-03-08 01:59:59",   # last second before spring-forward
                   "2015-03-08 02:30:00",   # a wall time that does not exist in New York
                   "2015-03-08 03:00:00",
                   "2015-11-01 01:30:00",   # ambiguous: happens twice at fall-back
                   "2015-11-01 02:00:00",
                   "2015-01-03 23:59:59"]   # a Saturday night
        df = spark.createDataFrame(_at(*moments), T.StructType([T.StructField("pickup_datetime",
                                                                             T.TimestampNTZType())]))
        actual = taxi.add_time_parts(df).drop("pickup_datetime")
        expected = spark.createDataFrame([
            (2015, 3, 8, 1, 1, 1), (2015, 3, 8, 1, 1, 2), (2015, 3, 8, 1, 1, 3),
            (2015, 11, 1, 1, 1, 1), (2015, 11, 1, 1, 1, 2), (2015, 1, 3, 7, 1, 23),
        ], "year int, month int, day int, day_of_week int, is_weekend int, hour int")
        assert_df_equality(actual, expected, ignore_nullable=True)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_weekday_is_not_weekend(spark):
    df = spark.createDataFrame(_at("2015-03-09 08:15:00"), "pickup_datetime timestamp_ntz")
    row = taxi.add_time_parts(df).first()
    assert (row["day_of_week"], row["is_weekend"], row["hour"]) == (2, 0, 8)  # Monday


def test_airport_flags(spark):
    jfk = next(z for z in load_zones() if z.location_id == AIRPORT_ZONES["JFK"])
    rows = [(-73.9855, 40.7580, jfk.longitude + 0.005, jfk.latitude),   # to JFK (400 m from its centre)
            (-73.8740, 40.7769, -73.9855, 40.7580),                       # from LaGuardia
            (-73.9855, 40.7580, -73.9700, 40.7600)]                       # within Manhattan
    df = spark.createDataFrame(rows, "pickup_longitude double, pickup_latitude double, "
                                     "dropoff_longitude double, dropoff_latitude double")
    actual = taxi.add_airport_flags(df, airport_coordinates()).select(*taxi.AIRPORT_FLAG_COLUMNS)
    expected = spark.createDataFrame([(0, 1, 0), (0, 0, 1), (0, 0, 0)],
                                     "ewr_trip int, jfk_trip int, lga_trip int")
    assert_df_equality(actual, expected, ignore_nullable=True, ignore_column_order=True)


def test_zone_ids_get_centroid_coordinates(spark):
    schema = ("pickup_zone int, dropoff_zone int, pickup_longitude double, pickup_latitude double, "
              "dropoff_longitude double, dropoff_latitude double")
    df = spark.createDataFrame([(AIRPORT_ZONES["JFK"], AIRPORT_ZONES["LGA"], None, None, None, None),
                                (264, 1, None, None, None, None)], schema)
    rows = taxi.add_zone_coordinates(df, *centroid_arrays()).collect()
    # the zones' polygon centroids (JFK, LaGuardia, Newark), as published with the TLC shapefile
    assert (rows[0]["pickup_longitude"], rows[0]["pickup_latitude"]) == (pytest.approx(-73.787, abs=0.005),
                                                                         pytest.approx(40.647, abs=0.005))
    assert (rows[0]["dropoff_longitude"], rows[0]["dropoff_latitude"]) == (pytest.approx(-73.874, abs=0.005),
                                                                           pytest.approx(40.774, abs=0.005))
    assert rows[1]["pickup_longitude"] is None  # 264 = unknown zone: no location
    assert rows[1]["dropoff_longitude"] == pytest.approx(-74.174, abs=0.005)


def test_feature_pipeline_round_trips_through_save_and_load(spark, tmp_path):
    df = spark.createDataFrame(
        [(datetime(2015, 1, 5, 18, 30), 2, 3.5, -73.9855, 40.7580, -73.7781, 40.6413, "CMT", 2, "N", None, None)],
        "pickup_datetime timestamp_ntz, passenger_count int, trip_distance double, pickup_longitude double, "
        "pickup_latitude double, dropoff_longitude double, dropoff_latitude double, vendor_id string, "
        "rate_code int, store_and_fwd_flag string, pickup_zone int, dropoff_zone int")
    model = PipelineModel(taxi.feature_stages(centroid_arrays(), airport_coordinates()))
    model.write().overwrite().save(str(tmp_path / "features"))
    reloaded = PipelineModel.load(str(tmp_path / "features"))
    assert_df_equality(model.transform(df), reloaded.transform(df))
    row = reloaded.transform(df).first()
    assert len(row["features"]) == len(taxi.feature_columns())
    assert row["jfk_trip"] == 1 and row["hour"] == 18


def test_grid_coordinates_are_appended_channel_last(spark):
    df = spark.createDataFrame([([1.0, 2.0, 3.0, 4.0, 5.0, 6.0],)], "field array<double>")
    row = with_grid_coordinates(df, "field", height=2, width=3).first()
    assert row["features"] == pytest.approx([1, 0, 0, 2, 0, 0.5, 3, 0, 1, 4, 1, 0, 5, 1, 0.5, 6, 1, 1])
