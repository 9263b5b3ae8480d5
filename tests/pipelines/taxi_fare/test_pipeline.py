"""The taxi_fare pipeline end to end in local mode: real Spark, real XGBoost, a real MLflow store."""
import os

import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel
from pyspark.ml.pipeline import PipelineModelWriter

from features.taxi import feature_columns
from pipelines.taxi_fare import pipeline as taxi_fare
from pipelines.taxi_fare import train as taxi_train
from pipelines.taxi_fare.config import ingest_location
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import StoreError
from spark_ml_pipeline.runtime.io import local_path

RUN_DATE = "2026-01-15"


def small_config(store_root, *extra):
    return load_config("taxi_fare", ["local"], [
        f"store.root={store_root}", f"run_date={RUN_DATE}", "generate.rows=30000", "generate.months=2",
        "model.n_estimators=300", "model.learning_rate=0.15", "model.max_depth=7", *extra])


@pytest.fixture(scope="module")
def pipeline_run(spark, tmp_path_factory):
    store_root = tmp_path_factory.mktemp("store")
    config = small_config(store_root)
    return config, taxi_train.run(spark, config)


def test_model_reaches_the_noise_floor(pipeline_run):
    _, result = pipeline_run
    assert result.noise_floor_rmse == pytest.approx(2.0 * 0.9975, rel=1e-3)
    assert result.metrics["test_rmse"] <= 1.5 * result.noise_floor_rmse
    assert result.metrics["test_r2"] > 0.95
    assert result.rows["rows_in"] == 30000
    assert result.rows["rows_in"] == result.rows["rows_valid"] + result.rows["rows_quarantined"]
    assert result.rows["rows_train"] + result.rows["rows_validation"] + result.rows["rows_test"] == \
        result.rows["rows_valid"]


def test_store_holds_run_with_metrics_lineage_and_model(pipeline_run):
    config, result = pipeline_run
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    for metric in ("rows_in", "rows_valid", "rows_quarantined", "test_rmse", "test_mae", "test_r2",
                   "noise_floor_rmse", "best_iteration", "quarantined_fare_out_of_range"):
        assert metric in run.data.metrics, metric
    assert run.data.params["model.max_depth"] == "7"
    assert len(run.data.tags["data_fingerprint"]) == 64 and run.data.tags["git_commit"]
    assert run.data.tags["model_committed"] == "true"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"lineage.json", "config.json", "ingest_stats.json", "model"} <= artifacts
    lineage = client.download_artifacts(result.run_id, "lineage.json")
    assert '"input_files"' in open(lineage).read()


def test_report_shows_predictions_residuals_and_importance_in_a_browser(pipeline_run, check_report):
    config, result = pipeline_run
    report = local_path(result.report)
    assert report.parent == local_path(result.model_uri).parent  # next to the model, in the run's artifacts
    marks = check_report(report, screenshot="report_taxi_fare")
    assert len(marks) == 4  # learning curves, predicted vs actual, residual deciles, importance
    assert marks[1] >= result.rows["rows_test"]  # every test row (fewer than the sample size) is a point
    page = report.read_text()
    assert "trip_distance" in page and "Residuals by decile of the prediction" in page
    assert "Recorded per boosting round" in page


def test_saved_model_scores_new_trips_with_the_same_features(spark, pipeline_run):
    config, result = pipeline_run
    model = PipelineModel.load(result.model_uri)
    trips = spark.read.parquet(ingest_location(config) + "/valid").limit(50)
    scored = model.transform(trips).select("fare_amount", "prediction").collect()
    assert len(scored) == 50 and all(row["prediction"] is not None for row in scored)
    mean_abs_error = sum(abs(r["prediction"] - r["fare_amount"]) for r in scored) / len(scored)
    assert mean_abs_error < 4.0


def test_rerun_of_the_same_date_reuses_data_and_replaces_outputs(spark, pipeline_run):
    config, first = pipeline_run
    store = config.store
    manifest_before = os.path.getmtime(local_path(store.data("taxi_fare", "raw", "_manifest.json")))
    stats = taxi_fare.ingest(spark, config)
    assert os.path.getmtime(local_path(store.data("taxi_fare", "raw", "_manifest.json"))) == manifest_before
    assert taxi_fare.ensure_generated(spark, config)["rows"] == 30000
    assert stats.rows_valid == first.rows["rows_valid"]
    ingest_root = local_path(store.data("taxi_fare", "ingest"))
    assert sorted(os.listdir(ingest_root)) == [f"run_date={RUN_DATE}"]


def test_failed_model_write_leaves_no_model_and_a_failed_run(spark, pipeline_run, monkeypatch):
    config, first = pipeline_run
    config = config.model_copy(update={"model": config.model.model_copy(update={"n_estimators": 5})})
    original = PipelineModelWriter.saveImpl

    def save_then_crash(self, path):
        original(self, path)  # everything is written ... then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(PipelineModelWriter, "saveImpl", save_then_crash)
    with pytest.raises(StoreError, match=r"could not be written to file://.*/model \(OSError: disk full\); nothing"):
        taxi_train.train(spark, config)
    client = MlflowClient(first.tracking_uri)
    runs = client.search_runs([client.get_run(first.run_id).info.experiment_id], order_by=["start_time DESC"])
    failed = runs[0]
    assert failed.info.status == "FAILED"
    assert "model_committed" not in failed.data.tags
    artifact_dir = local_path(failed.info.artifact_uri)
    assert not (artifact_dir / "model").exists()
    assert not [p for p in os.listdir(artifact_dir) if p.startswith(".")]  # no temporary left behind


def test_featurize_writes_the_feature_table(spark, pipeline_run):
    config, result = pipeline_run
    location = taxi_fare.featurize(spark, config)
    table = spark.read.parquet(location)
    assert table.count() == result.rows["rows_valid"]
    assert set(feature_columns(config.features.categories)) < set(table.columns)


def test_summary_reports_time_per_stage_and_the_whole_run(pipeline_run):
    config, result = pipeline_run
    assert list(result.stage_seconds) == ["generate", "ingest", "train (features + XGBoost)", "evaluate", "store",
                                        "report"]
    assert result.seconds >= sum(result.stage_seconds.values())
    text = taxi_train.summary(result, config)
    assert f"ingest {result.stage_seconds['ingest']:.0f} s" in text and f"total {result.seconds:.0f} s" in text
