"""Real TLC trips (data/real-taxi/: 9,600 real 2018-2019 yellow trips, licence there) through the taxi pipeline:
ingest with no settings, every real defect quarantined with its reason, a time-split run whose model beats the
training mean and a distance-only line on the latest trips, and scoring of real files with the committed model.

Column spellings (known and a user's own) and the rules real files need are tested on small hand-written files.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from jobs.score import main as score_main
from pipelines.taxi_fare import pipeline as taxi_fare
from pipelines.taxi_fare import train as taxi_train
from pipelines.taxi_fare.config import ingest_location
from pipelines.taxi_fare.ingest import ingest
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_valid
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[3]
REAL_TRIPS = ROOT / "data" / "real-taxi" / "tlc-yellow-samples"
SMALL = ["spark.master=local[2]", "spark.shuffle_partitions=2"]
# Every reason real 2018-2019 files give (the slice holds the first six)
REAL_REASONS = {"location_out_of_range", "distance_out_of_range", "fare_out_of_range", "missing_value",
                "passenger_count_out_of_range", "rate_code_out_of_range", "pickup_outside_file_month",
                "pickup_out_of_range", "dropoff_before_pickup"}
HEADER = ("vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,rate_code_id,store_and_fwd_flag,"
          "pickup_location_id,dropoff_location_id,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
          "improvement_surcharge,total_amount,congestion_surcharge")
TRIP = "2,2019-03-05 08:00:00,2019-03-05 08:12:00,1,1.9,{rate},N,{pickup},237,1,9.5,0,0.5,2,0,0.3,12.3,2.5"


@pytest.fixture(scope="module")
def real_run(spark, tmp_path_factory):
    store = tmp_path_factory.mktemp("real_store")
    config = load_config("taxi_fare_real", ["local"], [f"store.root={store}", "run_date=2026-03-01",
                                                       f"ingest.input={REAL_TRIPS}/*.csv", "model.n_estimators=300",
                                                       "model.learning_rate=0.1", *SMALL])
    return config, taxi_train.run(spark, config)


def test_the_real_files_ingest_with_no_settings_and_every_row_is_accounted_for(spark, real_run):
    config, result = real_run
    rows = result.rows
    assert rows["rows_in"] == 24 * 400 == rows["rows_valid"] + rows["rows_quarantined"]
    reasons = result.quarantined_by_reason
    assert sum(reasons.values()) == rows["rows_quarantined"] > 0
    assert set(reasons) <= REAL_REASONS
    # zones 264/265, zero distances, zero or negative fares, rows with no passenger count: all in this slice
    assert {"location_out_of_range", "distance_out_of_range", "fare_out_of_range", "missing_value"} <= set(reasons)
    location = ingest_location(config)
    quarantine = read_quarantine(spark, location)
    assert quarantine.where(F.col("reason").isNull()).count() == 0
    assert quarantine.count() == rows["rows_quarantined"]
    valid = read_valid(spark, location)
    bounds = valid.agg(F.min("fare_amount"), F.min("pickup_zone"), F.max("pickup_zone"), F.min("trip_distance"),
                       F.count_if(F.col("rate_code").isNull())).first()
    assert bounds[0] > 0 and 1 <= bounds[1] and bounds[2] <= 263 and bounds[3] > 0
    # the snake_case spellings were mapped: rate codes, zones and vendors are there, not null
    assert bounds[4] == 0 and valid.where(F.col("vendor_id").isNull()).count() == 0


def test_a_time_split_run_on_real_trips_beats_the_mean_and_a_distance_line(spark, real_run):
    config, result = real_run
    splits, _ = taxi_train.split_trips(spark, config)
    latest_train = splits.train.agg(F.max("pickup_datetime")).first()[0]
    earliest_test = splits.test.agg(F.min("pickup_datetime")).first()[0]
    assert latest_train < earliest_test  # judged on trips after the ones it learned from
    train = splits.train.select("trip_distance", "fare_amount").toPandas()
    test = splits.test.select("trip_distance", "fare_amount").toPandas()
    assert len(test) == result.rows["rows_test"]
    slope, intercept = np.polyfit(train["trip_distance"], train["fare_amount"], 1)
    line_rmse = float(np.sqrt(np.mean((intercept + slope * test["trip_distance"] - test["fare_amount"]) ** 2)))
    mean_rmse = float(np.sqrt(np.mean((train["fare_amount"].mean() - test["fare_amount"]) ** 2)))
    rmse = result.metrics["test_rmse"]
    assert rmse < 0.35 * mean_rmse and rmse < 0.9 * line_rmse, (rmse, line_rmse, mean_rmse)
    assert result.noise_floor_rmse is None  # real data: no known floor
    summary = taxi_train.summary(result, config)
    assert "(predicting the mean: " in summary and "noise floor" not in summary and "location_out_of_range" in summary


def test_the_committed_model_scores_real_files(spark, real_run, tmp_path):
    config, result = real_run
    output = tmp_path / "predictions"
    code = score_main(["taxi_fare_real", "--model", f"runs:/{result.run_id}",
                       f"input={REAL_TRIPS}/yellow_tripdata_sample_2019-1*.csv", f"output={output}",
                       f"store.root={config.store.root}", "run_date=2026-03-02", *SMALL])
    assert code == 0
    stats = json.loads((output / "run_date=2026-03-02" / "_scoring.json").read_text())
    assert stats["rows_in"] == 3 * 400 == stats["rows_scored"] + stats["rows_quarantined"]
    assert "fare_out_of_range" not in stats["quarantined_by_reason"]  # the fare is what is predicted
    scored = spark.read.parquet(str(output / "run_date=2026-03-02"))
    error = scored.where(F.col("fare_amount") > 0).agg(F.avg(F.abs(F.col("prediction") - F.col("fare_amount")))).first()
    assert error[0] < 2.5  # mean absolute error in dollars on real trips


# --- spellings and the rules of real files ---------------------------------------------------------------

def test_the_tlcs_own_current_spelling_and_the_snake_case_one_read_alike(spark, tmp_path):
    tlc_header = ("VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
                  "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,"
                  "tolls_amount,improvement_surcharge,total_amount,congestion_surcharge")
    trip = TRIP.format(rate=1, pickup=161)
    (tmp_path / "tlc.csv").write_text(f"{tlc_header}\n{trip}\n")
    (tmp_path / "mirror.csv").write_text(f"{HEADER}\n{trip}\n")
    read = []
    for name in ("tlc", "mirror"):
        stats = ingest(spark, str(tmp_path / f"{name}.csv"), str(tmp_path / f"out-{name}"), "csv")
        assert (stats.schema, stats.rows_valid) == ("current", 1)
        read.append(tuple(read_valid(spark, str(tmp_path / f"out-{name}")).drop("source_file").first()))
    assert read[0] == read[1]


def test_a_users_own_names_are_mapped_with_ingest_columns(spark, tmp_path):
    (tmp_path / "trips.csv").write_text(
        "pickup_time,passengers,miles,fare,from_zone,to_zone\n2019-03-05 08:00:00,1,1.9,9.5,161,237\n")
    config = load_config("taxi_fare_real", ["local"], [
        f"store.root={tmp_path / 'store'}", f"ingest.input={tmp_path / 'trips.csv'}",
        "ingest.columns={pickup_time: pickup_datetime, passengers: passenger_count, miles: trip_distance, "
        "fare: fare_amount, from_zone: pickup_zone, to_zone: dropoff_zone}"])
    stats = taxi_fare.ingest(spark, config)
    assert (stats.schema, stats.rows_in, stats.rows_valid) == ("current", 1, 1)
    row = read_valid(spark, ingest_location(config)).first()
    assert (row["pickup_zone"], row["dropoff_zone"], row["fare_amount"], row["trip_distance"]) == (161, 237, 9.5, 1.9)


@pytest.mark.parametrize("mapping, message", [
    ("{PU: pickup_place}", r"ingest\.columns.*PU: unknown canonical column 'pickup_place' \(one of vendor_id, "),
    ("{PU: pickup_zone, pu_zone: pickup_zone}", r"ingest\.columns.*ambiguous: 'PU' and 'pu_zone' both map to "
                                                r"'pickup_zone'"),
])
def test_an_unknown_or_ambiguous_mapping_is_one_line_naming_the_key(tmp_path, mapping, message):
    with pytest.raises(ConfigError, match=message) as raised:
        load_config("taxi_fare_real", ["local"], [f"store.root={tmp_path}", f"ingest.columns={mapping}"])
    assert "\n" not in str(raised.value).strip().split("invalid configuration:")[-1].strip()


def test_a_file_spelling_one_column_twice_names_both_and_the_key(spark, tmp_path):
    (tmp_path / "both.csv").write_text(HEADER + ",PULocationID\n" + TRIP.format(rate=1, pickup=161) + ",161\n")
    with pytest.raises(DataError, match=r"both\.csv: columns 'pickup_location_id' and 'PULocationID' all spell "
                                        r"pickup_zone; set ingest\.columns"):
        ingest(spark, str(tmp_path / "both.csv"), str(tmp_path / "out"), "csv")


# The month is matched in the file's name in the driver; rows carry the name URL-encoded (a space, a percent sign).
@pytest.mark.parametrize("name", ["yellow_tripdata_2019-03.csv", "dir with space/yellow trip%data 2019-03.csv"])
def test_rate_codes_outside_the_tlc_list_and_pickups_outside_the_files_month_are_quarantined(spark, tmp_path, name):
    source = tmp_path / name
    source.parent.mkdir(exist_ok=True)
    source.write_text("\n".join([HEADER, TRIP.format(rate=1, pickup=161), TRIP.format(rate=99, pickup=161),
                                 TRIP.format(rate=1, pickup=161).replace("2019-03-05", "2019-04-01")]) + "\n")
    stats = ingest(spark, str(source), str(tmp_path / "out"), "csv")
    assert stats.rows_valid == 1
    assert stats.quarantined_by_reason == {"rate_code_out_of_range": 1, "pickup_outside_file_month": 1}
    config = load_config("taxi_fare_real", ["local"], [f"store.root={tmp_path / 'store'}", f"ingest.input={source}",
                                                       "ingest.pickup_in_file_month=false"])
    assert taxi_fare.ingest(spark, config).quarantined_by_reason == {"rate_code_out_of_range": 1}
