"""Literal arrays built from one SQL expression: the same values as one F.lit per element."""
import math

import pytest

from features.arrays import literal_array


def test_literal_arrays_keep_their_values_and_types(spark):
    row = spark.range(1).select(
        literal_array([1.5, None, -73.98, 1e-05, float("nan"), 40]).alias("doubles"),
        literal_array([7, -1, 265], "int").alias("ints"),
        literal_array(["it's", "back\\slash", "jfk"], "string").alias("strings")).first()
    doubles = row.doubles
    assert doubles[0] == 1.5 and doubles[2] == -73.98 and doubles[3] == 1e-05 and doubles[5] == 40.0
    assert math.isnan(doubles[1]) and math.isnan(doubles[4])
    assert row.ints == [7, -1, 265] and row.strings == ["it's", "back\\slash", "jfk"]
    schema = spark.range(1).select(literal_array([1.0]).alias("d"), literal_array([1], "int").alias("i"),
                                   literal_array(["a"], "string").alias("s")).schema.simpleString()
    assert schema == "struct<d:array<double>,i:array<int>,s:array<string>>"


def test_infinite_values_and_unknown_types_are_refused():
    with pytest.raises(ValueError, match="finite"):
        literal_array([1.0, float("inf")])
    with pytest.raises(ValueError, match="double, int or string"):
        literal_array([1], "long")
