"""Tabular features: date-time parts, great-circle distances, and the declared stage list (fitted, saved)."""
import math
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import functions as F

from features.geo import GeoDistance
from features.tabular import (DatetimeParts, add_datetime_parts, feature_columns, feature_output_columns,
                              tabular_feature_stages)


def test_datetime_parts_are_calendar_values_and_null_stays_null(spark):
    df = spark.createDataFrame([(datetime(2024, 3, 2, 17, 45),), (None,)], "t timestamp")
    out = add_datetime_parts(df, "t", ["year", "month", "day", "day_of_week", "day_of_year", "hour", "minute",
                                       "is_weekend"])
    expected = spark.createDataFrame(
        [(datetime(2024, 3, 2, 17, 45), 2024, 3, 2, 7, 62, 17, 45, 1), (None,) * 9],
        "t timestamp, t_year int, t_month int, t_day int, t_day_of_week int, t_day_of_year int, t_hour int, "
        "t_minute int, t_is_weekend int")
    assert_df_equality(out, expected, ignore_nullable=True)


def test_unknown_datetime_part_is_an_error(spark):
    df = spark.createDataFrame([(datetime(2024, 3, 2),)], "t timestamp")
    with pytest.raises(ValueError, match="unknown datetime part"):
        add_datetime_parts(df, "t", ["fortnight"])


def test_output_columns_follow_the_declarations():
    assert feature_output_columns(indexed=["c"], hashed=["h"], datetimes={"t": ["hour", "month"]},
                                  distances=["km"]) == ["c_index", "h_hash", "t_hour", "t_month", "km"]
    assert feature_columns(["x"], ["c"])[:2] == ["x", "c_index"]


def test_stages_save_and_load_with_their_params(spark, tmp_path):
    df = spark.createDataFrame([(datetime(2024, 1, 6, 9), 1.0, 2.0, 1.5, 2.5)],
                               "t timestamp, a double, b double, c double, d double")
    model = PipelineModel([DatetimeParts(inputCol="t", parts=["hour", "is_weekend"]),
                           GeoDistance(outputCol="km", fromLatitudeCol="a", fromLongitudeCol="b",
                                       toLatitudeCol="c", toLongitudeCol="d")])
    model.save(str(tmp_path / "m"))
    loaded = PipelineModel.load(str(tmp_path / "m"))
    assert_df_equality(loaded.transform(df), model.transform(df))
    row = loaded.transform(df).first()
    assert row["t_hour"] == 9 and row["t_is_weekend"] == 1 and row["km"] > 0


def test_declared_stages_assemble_missing_as_nan_and_unseen_categories_get_their_own_index(spark):
    train = spark.createDataFrame(
        [(1.0, "a", "x", datetime(2024, 1, 1, 3)), (None, "a", "y", datetime(2024, 1, 2, 4)),
         (3.0, "b", None, None)], "n double, cat string, h string, t timestamp")
    stages = tabular_feature_stages(numeric=["n"], indexed=["cat"], hashed={"h": 8}, datetimes={"t": ["hour"]},
                                    assemble_into="features")
    model = Pipeline(stages=stages).fit(train)
    new = spark.createDataFrame([(None, "unseen", "x", datetime(2024, 5, 5, 23)), (2.0, None, None, None)],
                                "n double, cat string, h string, t timestamp")
    features = [r["features"] for r in model.transform(new).select("features").collect()]
    assert all(len(f) == 4 for f in features)  # n, cat_index, h_hash, t_hour
    assert math.isnan(features[0][0]) and features[0][1] == 2.0 and 0 <= features[0][2] < 8 and features[0][3] == 23
    assert features[1][0] == 2.0 and features[1][1] == 2.0 and features[1][2] == -1 and math.isnan(features[1][3])
    # The training rows' most frequent category gets index 0.
    assert model.transform(train).where(F.col("cat") == "a").select("cat_index").distinct().first()[0] == 0.0
