"""jobs.score end to end: a registered taxi model and a Keras run scored on dirty new files, clear errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from spark_ml_pipeline.runtime.config import load_pipeline

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DATE, SCORE_DATE, OTHER_DATE = "2026-02-01", "2026-02-02", "2026-02-03"
SMALL = ["spark.master=local[2]", "spark.shuffle_partitions=2"]


def score_job(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "jobs.score", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def check_first_version(result, name):
    """The first run of a pipeline registers its model as version 1 and takes the champion alias."""
    assert result.promotion.promoted and result.promotion.version == "1" and result.promotion.champion_version is None
    champion = MlflowClient(result.tracking_uri).get_model_version_by_alias(name, "champion")
    assert (str(champion.version), champion.run_id, champion.tags["model_uri"]) == ("1", result.run_id,
                                                                                result.model_uri)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for both pipelines (so a run of one can be offered to the other)."""
    return tmp_path_factory.mktemp("score_store")


# --- taxi_fare: XGBoost champion on TLC CSV -------------------------------------------------------------

LEGACY_HEADER = ("vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,pickup_longitude,"
                 "pickup_latitude,rate_code,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,"
                 "fare_amount,surcharge,mta_tax,tip_amount,tolls_amount,total_amount")
TRIP = ("CMT,2015-01-10 08:15:00,2015-01-10 08:31:00,{passengers},2.5,-73.98,40.75,1,N,-73.96,40.77,1,{fare},"
        "0.5,0.5,1,0,")
EXTRA_LINES = [TRIP.format(passengers=1, fare=""),  # no fare: scored (ingest: missing_value)
               TRIP.format(passengers=2, fare="n/a"),  # not a number: scored (ingest: malformed_line)
               TRIP.format(passengers=3, fare="-5.0"),  # out of range: scored (ingest: fare_out_of_range)
               TRIP.format(passengers=9, fare="12.0"),  # passenger_count_out_of_range, as at ingest
               "this,is,not,a,trip"]  # malformed_line, as at ingest


@pytest.fixture(scope="module")
def taxi(spark, store, tmp_path_factory):
    """A tiny XGBoost model trained by the pipeline (its run registers it as the champion), and new dirty CSV
    trips."""
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips

    config, definition = load_pipeline("taxi_fare", ["local"], [
        f"store.root={store}", f"run_date={TRAIN_DATE}", "generate.rows=3000", "generate.months=1",
        "model.n_estimators=20", "model.num_workers=1", "model.early_stopping_rounds=5", *SMALL])
    result = definition.stages["run"](spark, config)
    check_first_version(result, "taxi_fare")
    assert (f"  registry taxi_fare@champion · test_rmse {result.metrics['test_rmse']:.4f} · champion before - · "
            "promoted (model version 1)") in definition.summary(result, config)

    new_trips = tmp_path_factory.mktemp("new_trips") / "raw"
    manifest = write_trips(spark, GeneratorSpec(rows=1500, seed=11, output_format="csv", months=1,
                                                dirty_fraction=0.1), str(new_trips))
    (new_trips / "month=2015-01" / "extra.csv").write_text("\n".join([LEGACY_HEADER, *EXTRA_LINES]) + "\n")
    return config, result, new_trips, manifest


def test_taxi_champion_scores_new_trips_like_the_model_in_process(spark, store, taxi, tmp_path, check_report):
    from jobs.score import main
    from pipelines.taxi_fare import ingest as tlc_ingest
    from pipelines.taxi_fare.scoring import KEYS
    from spark_ml_pipeline.ingest.quarantine import read_valid

    config, trained, new_trips, manifest = taxi
    output = tmp_path / "predictions"
    # The README's command right after a first run: no --model, so the champion that run took.
    args = ["taxi_fare", f"input={new_trips}", f"output={output}", f"store.root={store}",
            f"run_date={SCORE_DATE}", "ingest.format=csv", *SMALL]
    done = score_job(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"score taxi_fare · model champion (registered version 1, MLflow run {trained.run_id})" in done.stdout

    stats = json.loads((output / f"run_date={SCORE_DATE}" / "_scoring.json").read_text())
    assert stats["rows_in"] == manifest.rows + len(EXTRA_LINES) == stats["rows_scored"] + stats["rows_quarantined"]
    assert stats["model_version"] == "1" and stats["run_id"] == trained.run_id
    assert "fare_out_of_range" not in stats["quarantined_by_reason"]
    assert stats["quarantined_by_reason"]["passenger_count_out_of_range"] >= 1
    assert stats["quarantined_by_reason"]["malformed_line"] >= 1
    assert not any(name.startswith(".") for name in os.listdir(output))
    # The date's report compares its predictions with the training run's test predictions (same generator).
    report = output / f"run_date={SCORE_DATE}" / "_report.html"
    assert stats["report"].endswith(f"run_date={SCORE_DATE}/_report.html") and report.is_file()
    assert 0 <= stats["drift"]["ks_statistic"] < 0.25, stats["drift"]
    assert "Predictions compared with the training run" in report.read_text()
    assert "passenger_count_out_of_range" in report.read_text()
    assert len(check_report(report, screenshot="report_scoring")) == 1

    scored = spark.read.parquet(str(output))
    assert scored.columns == [*KEYS, "prediction", "model_version", "run_id", "run_date"]
    assert scored.count() == stats["rows_scored"]
    assert {(r.model_version, r.run_id, str(r.run_date)) for r in scored.select(
        "model_version", "run_id", "run_date").distinct().collect()} == {("1", trained.run_id, SCORE_DATE)}
    assert spark.read.parquet(str(output / "_quarantine")).count() == stats["rows_quarantined"]

    # The same rows through the pipeline's ingest and the loaded model, in this process: identical predictions.
    ingested = tmp_path / "ingested"
    ingest_stats = tlc_ingest.ingest(spark, str(new_trips), str(ingested), "csv")
    model = PipelineModel.load(trained.model_uri)
    keyed = read_valid(spark, str(ingested)).withColumn("_keys", F.struct(*KEYS))
    expected = model.transform(keyed).select(*[F.col("_keys")[k].alias(k) for k in KEYS], "prediction")
    mine = scored.select(*KEYS, "prediction")
    assert expected.count() == ingest_stats.rows_valid > 1000
    assert expected.exceptAll(mine).count() == 0
    # Scored besides: exactly the trips ingest rejected for their fare only (the generator's bad fares, the 3 extra).
    extra = mine.exceptAll(expected)
    assert extra.count() == ingest_stats.quarantined_by_reason["fare_out_of_range"] + 2
    assert extra.where(F.col("fare_amount").isNull() | (F.col("fare_amount") <= 0)
                       | (F.col("fare_amount") > 500)).count() == extra.count()
    assert extra.where(F.col("prediction").isNull()).count() == 0

    # Re-running the same date (the job's main, in this process) replaces it: still one partition, same rows.
    assert main(args) == 0
    assert sorted(os.listdir(output)) == ["_quarantine", f"run_date={SCORE_DATE}"]
    assert os.listdir(output / "_quarantine") == [f"run_date={SCORE_DATE}"]
    assert spark.read.parquet(str(output)).count() == stats["rows_scored"]


# --- fashion_mnist: a Keras run, by run URI and by registered version ------------------------------------

@pytest.fixture(scope="module")
def fashion(spark, store, tmp_path_factory):
    """A 1-epoch CNN on 600 images (its run registers it as version 1, the champion), and new images: 300 test
    images + 5 bad rows."""
    from spark_ml_pipeline.ingest.fashion_mnist import read_images

    config, definition = load_pipeline("fashion_mnist", ["local"], [
        f"store.root={store}", f"run_date={TRAIN_DATE}", "data.train_limit=600", "data.test_limit=200",
        "training.epochs=1", "training.num_proc=1", "training.batch_size=64", "models.cnn.filters=[8]",
        "models.cnn.dense=[16]", "models.cnn.convs_per_block=1", *SMALL])
    result = definition.stages["run"](spark, config)
    check_first_version(result, "fashion_mnist")

    images = read_images(spark, config.store, "test", 300)
    good = [0] * 784
    bad = spark.createDataFrame([
        (100_000, 1, None),  # missing_pixels
        (100_001, 1, good[:783]),  # wrong_pixel_count
        (100_002, 1, [300] + good[1:]),  # pixel_out_of_range
        (100_003, 1, [-1] + good[1:]),  # pixel_out_of_range
        (None, 1, good),  # missing_row_id
    ], "row_id long, label int, pixels array<smallint>")
    new_images = str(tmp_path_factory.mktemp("new_images") / "images.parquet")
    images.unionByName(bad).coalesce(2).write.parquet(new_images)
    return config, result, images, new_images


def expected_probabilities(spark, model_uri, images) -> dict:
    rows = PipelineModel.load(model_uri).transform(images).select("row_id", "prediction").collect()
    return {r.row_id: np.array(r.prediction) for r in rows}


def check_fashion_output(spark, output, date, expected, version, run_id):
    stats = json.loads((output / f"run_date={date}" / "_scoring.json").read_text())
    assert (stats["rows_in"], stats["rows_scored"], stats["rows_quarantined"]) == (305, 300, 5)
    assert stats["quarantined_by_reason"] == {"missing_pixels": 1, "missing_row_id": 1, "pixel_out_of_range": 2,
                                              "wrong_pixel_count": 1}
    assert stats["model_version"] == version and stats["run_id"] == run_id
    scored = spark.read.parquet(str(output)).where(F.col("run_date") == date)
    assert scored.columns == ["row_id", "label", "prediction", "model_version", "run_id", "run_date"]
    rows = scored.collect()
    assert len(rows) == 300 and {r.row_id for r in rows} == set(expected)
    for r in rows:
        assert len(r.prediction) == 10 and np.allclose(r.prediction, expected[r.row_id], atol=1e-5)
        assert (r.model_version, r.run_id) == (version, run_id)
    assert abs(sum(rows[0].prediction) - 1) < 1e-4


def test_fashion_run_and_version_score_like_the_model_in_process(spark, store, fashion, tmp_path):
    from jobs.score import main

    config, trained, images, new_images = fashion
    expected = expected_probabilities(spark, trained.model_uri, images)
    output = tmp_path / "predictions"

    done = score_job("fashion_mnist", "--model", f"runs:/{trained.run_id}", f"input={new_images}",
                     f"output={output}", f"store.root={store}", f"run_date={SCORE_DATE}", *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"model runs:/{trained.run_id} (MLflow run {trained.run_id}, not a registered version)" in done.stdout
    check_fashion_output(spark, output, SCORE_DATE, expected, None, trained.run_id)
    stats = json.loads((output / f"run_date={SCORE_DATE}" / "_scoring.json").read_text())
    assert set(stats["drift"]) == {"total_variation"} and 0 <= stats["drift"]["total_variation"] <= 1

    # The registered version, in this process (the job's main), on another date: both dates kept.
    assert main(["fashion_mnist", "--model", "1", f"input={new_images}", f"output={output}", f"store.root={store}",
                 f"run_date={OTHER_DATE}"]) == 0
    check_fashion_output(spark, output, OTHER_DATE, expected, "1", trained.run_id)
    check_fashion_output(spark, output, SCORE_DATE, expected, None, trained.run_id)
    assert sorted(os.listdir(output / "_quarantine")) == [f"run_date={SCORE_DATE}", f"run_date={OTHER_DATE}"]
    quarantine = spark.read.parquet(str(output / "_quarantine" / f"run_date={OTHER_DATE}"))
    assert sorted(r.reason for r in quarantine.collect()) == ["missing_pixels", "missing_row_id",
                                                              "pixel_out_of_range", "pixel_out_of_range",
                                                              "wrong_pixel_count"]


def test_a_keras_champion_is_measured_again_on_the_test_rows_of_a_later_run(spark, fashion):
    """What a later fashion_mnist run compares its model with: the champion's test accuracy on that run's test
    rows (here the same configuration's, so the champion's own figure)."""
    from pipelines.fashion_mnist import pipeline
    from spark_ml_pipeline.runs.keras_run import judge

    config, trained, _, _ = fashion
    measured = judge(trained.model_uri, pipeline.prepare(spark, config), pipeline.evaluate, "accuracy")
    assert measured == pytest.approx(trained.metrics["test_accuracy"], abs=1e-9)


# --- errors: one line naming what is wrong, exit code 2, before Spark starts -----------------------------

@pytest.mark.parametrize("pipeline, model, message", [
    ("taxi_fare", "challenger", "--model challenger: registered model 'taxi_fare' has no alias 'challenger'"),
    ("taxi_fare", "99", "--model 99: registered model 'taxi_fare' has no version '99'"),
    ("taxi_fare", "runs:/0123456789abcdef0123456789abcdef", "no such MLflow run"),
    ("taxi_fare", "FASHION_RUN", "is a model of pipeline 'fashion_mnist', not 'taxi_fare'"),
    ("no_such_pipeline", "champion", "unknown pipeline 'no_such_pipeline'"),
    ("fashion_autoencoder", "champion", "pipeline 'fashion_autoencoder' (kind fashion_autoencoder) declares no "
                                        "scorer"),
])
def test_unknown_model_or_pipeline_is_one_clear_line(store, taxi, fashion, tmp_path, pipeline, model, message):
    model = model.replace("FASHION_RUN", f"runs:/{fashion[1].run_id}")
    done = score_job(pipeline, "--model", model, f"input={tmp_path}/in", f"output={tmp_path}/out",
                     f"store.root={store}", timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_output_and_empty_store_are_one_clear_line(tmp_path):
    done = score_job("taxi_fare", f"input={tmp_path}/in", timeout=120)
    assert done.returncode == 2 and done.stderr == "error: command line: missing output=URI (the files to score " \
                                                   "and where predictions go)\n"
    done = score_job("taxi_fare", f"input={tmp_path}/in", f"output={tmp_path}/out", f"store.root={tmp_path}/none",
                     timeout=120)
    assert done.returncode == 2 and "holds no MLflow tracking database" in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "none").exists()


def test_unreadable_input_is_one_clear_line(store, taxi, tmp_path):
    done = score_job("taxi_fare", f"input={tmp_path}/nothing", f"output={tmp_path}/out", f"store.root={store}",
                     "ingest.format=csv", *SMALL)
    assert done.returncode == 3, done.stderr[-2000:]  # bad data
    assert done.stderr.strip().splitlines()[-1] == f"error: file://{tmp_path}/nothing: no input files found"
    assert "Traceback" not in done.stderr
