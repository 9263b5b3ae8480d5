"""Ingest: schemas, validation, quarantine with reasons, accounting, atomic reruns and clear errors."""
import gzip
import os

import pytest
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.errors import DataError
from pipelines.taxi_fare.ingest import ingest
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_stats, read_valid


@pytest.mark.parametrize("dataset, input_format, version", [("legacy_csv", "csv", "legacy"),
                                                            ("current_parquet", "parquet", "current")])
def test_every_dirty_row_is_quarantined_with_its_reason(spark, tmp_path, request, expected_reasons, dataset,
                                                       input_format, version):
    source, manifest = request.getfixturevalue(dataset)
    stats = ingest(spark, source, str(tmp_path / "out"), input_format)
    assert stats.schema == version
    assert stats.rows_in == manifest.rows
    assert stats.rows_in == stats.rows_valid + stats.rows_quarantined
    assert stats.rows_valid == manifest.clean_rows
    assert stats.quarantined_by_reason == expected_reasons(manifest)
    assert read_valid(spark, str(tmp_path / "out")).count() == stats.rows_valid
    quarantine = read_quarantine(spark, str(tmp_path / "out"))
    assert quarantine.where(F.col("reason").isNull()).count() == 0
    assert read_stats(spark, str(tmp_path / "out")).rows_quarantined == stats.rows_quarantined


def test_malformed_csv_lines_are_kept_as_raw_text(spark, tmp_path, legacy_csv):
    source, manifest = legacy_csv
    ingest(spark, source, str(tmp_path / "out"), "csv")
    malformed = read_quarantine(spark, str(tmp_path / "out")).where("reason = 'malformed_line'").collect()
    assert len(malformed) == manifest.dirty_rows["malformed_line"]
    assert all("#garbled#" in row["raw_line"] and row["source_file"].endswith(".txt") for row in malformed)


def test_valid_rows_are_canonical_and_in_range(spark, tmp_path, current_parquet):
    source, _ = current_parquet
    ingest(spark, source, str(tmp_path / "out"), "parquet")
    valid = read_valid(spark, str(tmp_path / "out"))
    assert valid.schema["pickup_datetime"].dataType.typeName() == "timestamp_ntz"
    bounds = valid.agg(F.min("fare_amount"), F.max("fare_amount"), F.min("passenger_count"),
                       F.max("passenger_count"), F.min("pickup_zone"), F.max("pickup_zone")).first()
    assert bounds[0] > 0 and bounds[1] <= 500 and bounds[2] >= 0 and bounds[3] <= 6
    assert 1 <= bounds[4] and bounds[5] <= 263


def test_rerun_of_the_same_output_replaces_it_atomically(spark, tmp_path, current_parquet):
    source, _ = current_parquet
    out = tmp_path / "run_date=2026-01-01"
    first = ingest(spark, source, str(out), "parquet")
    second = ingest(spark, source, str(out), "parquet")
    assert (first.rows_valid, first.quarantined_by_reason) == (second.rows_valid, second.quarantined_by_reason)
    assert read_valid(spark, str(out)).count() == first.rows_valid  # not doubled
    assert sorted(os.listdir(tmp_path)) == ["run_date=2026-01-01"]  # no temporary directories left


def test_real_file_column_spellings_are_accepted(spark, tmp_path):
    """Public files spell columns differently across years (RateCodeID, Airport_fee ...)."""
    csv_path = tmp_path / "yellow_tripdata_2016-01.csv"
    csv_path.write_text(
        "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,"
        "pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,"
        "fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount\n"
        "2,2016-01-01 00:00:00,2016-01-01 00:10:00,2,1.10,-73.990371704101563,40.734695434570313,1,N,"
        "-73.981842041015625,40.732406616210937,2,7.5,0.5,0.5,0,0,0.3,8.8\n"
        "2,2016-01-01 00:00:00,2016-01-01 00:00:00,1,0,0,0,1,N,0,0,2,-2.5,0,0.5,0,0,0.3,-1.7\n")
    stats = ingest(spark, str(csv_path), str(tmp_path / "out"), "csv")
    assert stats.schema == "legacy" and stats.rows_valid == 1
    assert stats.quarantined_by_reason == {"fare_out_of_range": 1}
    row = read_valid(spark, str(tmp_path / "out")).first()
    assert (row["rate_code"], row["vendor_id"], row["fare_amount"]) == (1, "2", 7.5)


def test_missing_required_column_names_the_column_and_file(spark, tmp_path):
    path = tmp_path / "trips.csv"
    path.write_text("vendor_id,pickup_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,"
                    "dropoff_longitude,dropoff_latitude\nCMT,2015-01-01 10:00:00,1,1.0,-73.9,40.7,-73.9,40.8\n")
    with pytest.raises(DataError, match=r"trips\.csv.*missing required legacy-schema column.*fare_amount"):
        ingest(spark, str(path), str(tmp_path / "out"), "csv")
    assert not (tmp_path / "out").exists()


def test_unrecognised_columns_and_missing_input_are_clear_errors(spark, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"other\.csv: cannot tell the TLC schema"):
        ingest(spark, str(path), str(tmp_path / "out"), "csv")
    with pytest.raises(DataError, match=r"nowhere.*no input files found"):
        ingest(spark, str(tmp_path / "nowhere"), str(tmp_path / "out"), "parquet")


def test_csv_files_of_one_input_are_each_read_with_their_own_header(spark, tmp_path):
    """Monthly files may order columns differently (and be compressed): every value lands in its own column."""
    source = tmp_path / "trips"
    source.mkdir()
    columns = ["pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance", "pickup_longitude",
               "pickup_latitude", "dropoff_longitude", "dropoff_latitude", "fare_amount"]
    values = ["2015-01-05 08:00:00", "2015-01-05 08:20:00", "1", "3.5", "-73.98", "40.75", "-73.95", "40.78", "15.5"]
    order = [8, 3, 2, 0, 1, 7, 6, 5, 4]  # the same trip, columns in another order
    (source / "part-1.csv").write_text(",".join(columns) + "\n" + ",".join(values) + "\n")
    (source / "part-2.csv").write_text(",".join(columns[i] for i in order) + "\n"
                                        + ",".join(values[i] for i in order) + "\n")
    with gzip.open(source / "part-3.csv.gz", "wt") as handle:
        handle.write(",".join(columns[i] for i in order) + "\n" + ",".join(values[i] for i in order) + "\n")
    stats = ingest(spark, str(source), str(tmp_path / "out"), "csv")
    assert (stats.rows_in, stats.rows_valid, stats.rows_quarantined) == (3, 3, 0)
    rows = read_valid(spark, str(tmp_path / "out")).select(
        "fare_amount", "trip_distance", "passenger_count", "pickup_longitude", "dropoff_latitude").distinct().collect()
    assert [tuple(r) for r in rows] == [(15.5, 3.5, 1, -73.98, 40.78)]
