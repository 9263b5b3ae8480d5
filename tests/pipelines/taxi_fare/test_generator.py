"""The synthetic TLC generator: determinism, schemas, defects and the documented fare formula."""
import glob
import math
import os
import statistics

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from pipelines.taxi_fare import tlc
from pipelines.taxi_fare.zones import zone_points
from pipelines.taxi_fare.generator import (DIRTY_KINDS, GeneratorSpec, expected_fare, generate_trips,
                                      noise_floor_rmse, read_manifest, write_trips)


def test_same_seed_gives_identical_rows_whatever_the_partitioning(spark):
    spec = GeneratorSpec(rows=3000, seed=11)
    first = generate_trips(spark, spec)
    again = generate_trips(spark, spec).repartition(7)
    assert_df_equality(first, again, ignore_row_order=True)
    other_seed = generate_trips(spark, GeneratorSpec(rows=3000, seed=12))
    assert first.select("fare_amount").collect() != other_seed.select("fare_amount").collect()


@pytest.mark.parametrize("version", tlc.SCHEMA_VERSIONS)
def test_generated_columns_follow_the_tlc_schema(spark, version):
    trips = generate_trips(spark, GeneratorSpec(rows=500, tlc_schema=version))
    file_columns = [c for c in trips.columns if c not in ("month", "_defect", "id")]
    assert file_columns == tlc.FILE_COLUMNS[version]
    assert tlc.KNOWN_SPELLINGS.detect_version(file_columns) == version
    assert trips.count() == 500


def test_written_files_are_partitioned_by_month_with_a_manifest(spark, legacy_csv):
    output, manifest = legacy_csv
    months = sorted(os.path.basename(p) for p in glob.glob(os.path.join(output, "month=*")))
    assert months == ["month=2015-01", "month=2015-02"]
    for month_dir in months:
        files = glob.glob(os.path.join(output, month_dir, "part-*"))
        assert len(files) == 1  # one CSV file per month, like the public files
        with open(files[0]) as handle:
            assert handle.readline().strip() == ",".join(tlc.FILE_COLUMNS["legacy"])
    assert read_manifest(spark, output)["rows"] == manifest.rows == 6000
    assert manifest.clean_rows + sum(manifest.dirty_rows.values()) == 6000
    assert set(manifest.dirty_rows) == set(DIRTY_KINDS) | {"malformed_line"}
    assert all(count > 0 for count in manifest.dirty_rows.values())


def test_clean_fares_follow_the_documented_formula_with_known_noise(spark):
    sigma = 1.5
    trips = generate_trips(spark, GeneratorSpec(rows=20000, seed=8, noise_sigma=sigma, dirty_fraction=0.0))
    hour = F.hour("pickup_datetime")
    weekend = F.dayofweek("pickup_datetime").isin(1, 7)
    residuals = [r[0] for r in trips.select(
        F.col("fare_amount") - expected_fare(F.col("trip_distance"), hour, weekend, F.col("rate_code"))).collect()]
    assert statistics.fmean(residuals) == pytest.approx(0.0, abs=0.05)
    assert statistics.pstdev(residuals) == pytest.approx(noise_floor_rmse(sigma), rel=0.03)
    assert max(abs(r) for r in residuals) <= 3 * sigma + 0.01  # noise is clipped at 3 sigma


def test_distributions_look_like_taxi_trips(spark):
    trips = generate_trips(spark, GeneratorSpec(rows=20000, seed=9, dirty_fraction=0.0))
    stats = trips.agg(
        F.expr("percentile_approx(trip_distance, 0.5)").alias("median_miles"),
        F.avg((F.col("rate_code") == 2).cast("double")).alias("jfk_flat_share"),
        F.avg((F.col("passenger_count") == 1).cast("double")).alias("single_rider_share"),
        F.avg(F.hour("pickup_datetime").between(17, 21).cast("double")).alias("evening_share"),
        F.avg(F.hour("pickup_datetime").between(3, 5).cast("double")).alias("small_hours_share"),
    ).first()
    assert 1.0 < stats["median_miles"] < 8.0
    assert 0.02 < stats["jfk_flat_share"] < 0.07
    assert 0.6 < stats["single_rider_share"] < 0.8
    assert stats["evening_share"] > 3 * stats["small_hours_share"]


def test_trips_start_and_end_inside_real_taxi_zones(spark):
    """Every generated point is one of the points drawn inside a zone's TLC polygon, give or take the 50 m
    jitter: synthetic trips follow the real geography (the zone table of scripts/make_zone_table.py)."""
    points = [point for found in zone_points().values() for point in found]
    trips = generate_trips(spark, GeneratorSpec(rows=400, seed=5, dirty_fraction=0.0)).select(
        "pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude").collect()
    for trip in trips:
        for end in ("pickup", "dropoff"):
            lon, lat = trip[f"{end}_longitude"], trip[f"{end}_latitude"]
            nearest = min(math.hypot(lon - x, lat - y) for x, y in points)
            assert nearest < 0.0025, (end, lon, lat)  # 5 sigma of the jitter


def test_noise_floor_of_clipped_noise():
    assert noise_floor_rmse(2.0) == pytest.approx(2.0 * 0.99751, rel=1e-4)
    assert noise_floor_rmse(1.0, clip=50.0) == pytest.approx(1.0)


def test_parquet_months_are_written_in_parallel_one_task_per_file(spark, tmp_path):
    """Each task computes the rows of one month's file and writes it: no shuffle, files_per_month files a month."""
    spec = GeneratorSpec(rows=4000, months=2, files_per_month=3, dirty_fraction=0.0)
    assert generate_trips(spark, spec).rdd.getNumPartitions() == 6
    write_trips(spark, spec, str(tmp_path / "raw"))
    for month in ("2015-01", "2015-02"):
        files = glob.glob(str(tmp_path / "raw" / f"month={month}" / "part-*.parquet"))
        assert len(files) == 3
        for file in files:
            months = {row["m"] for row in spark.read.parquet(file)
                      .select(F.date_format("pickup_datetime", "yyyy-MM").alias("m")).distinct().collect()}
            assert months == {month}
    assert sorted(p.name for p in (tmp_path / "raw").glob("month=*")) == ["month=2015-01", "month=2015-02"]
    assert spark.read.parquet(str(tmp_path / "raw")).count() == 4000


def test_unset_files_per_month_gives_files_of_about_a_million_rows():
    assert GeneratorSpec(rows=200_000).parquet_files_per_month() == 1
    assert GeneratorSpec(rows=20_000_000, months=3).parquet_files_per_month() == 7
    assert GeneratorSpec(rows=20_000_000, months=3, files_per_month=1).parquet_files_per_month() == 1
