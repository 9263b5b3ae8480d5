"""The four deep-learning pipelines end to end on tiny slices of their real data sets, in local mode."""
import pytest
from mlflow.tracking import MlflowClient

from pyspark.ml import PipelineModel

from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.io import local_path

TINY = ["training.epochs=1", "training.batch_size=32", "data.train_limit=400", "data.test_limit=100",
        "run_date=2026-03-01"]
CASES = {
    "fashion_mnist": (["models.cnn.filters=[8]", "models.cnn.dense=[16]", "models.cnn.convs_per_block=1"],
                      ["test_accuracy", "test_macro_f1"]),
    "fashion_autoencoder": (["models.conv.filters=[8]", "models.conv.code_size=6"], ["test_reconstruction_mse"]),
    # The shipped FNO: also scored on the 32x32 grid by the same weights (resolution transfer, through Spark).
    "darcy_surrogate": (["models.fno.width=8", "models.fno.modes=4", "models.fno.blocks=2",
                         "models.fno.projection=16"],
                        ["test_relative_l2", "test32_relative_l2", "test32_full_relative_l2"]),
    "tweet_sentiment": (["text.vocab_size=500", "models.bilstm.units=8",
                         "models.bilstm.embedding_dim=8", "text.max_length=20"],
                        ["test_accuracy", "test_macro_f1", "baseline_tfidf_logreg_accuracy"]),
}


REPORT_SECTIONS = {"fashion_mnist": "Most confident mistakes", "fashion_autoencoder": "Reconstructions",
                   "darcy_surrogate": "Sample predictions: fields", "tweet_sentiment": "Confusion matrix"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pipeline_runs_end_to_end_and_records_everything(spark, tmp_path, name, check_report):
    overrides, expected_metrics = CASES[name]
    config, definition = load_pipeline(name, ["local"], [f"store.root={tmp_path}", *TINY, *overrides])
    result = definition.stages["run"](spark, config)

    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    for metric in expected_metrics:
        assert metric in run.data.metrics, metric
    assert len(client.get_metric_history(result.run_id, "epoch_loss")) == 1  # per-epoch metrics
    assert len(client.get_metric_history(result.run_id, "epoch_val_loss")) == 1
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model", "lineage.json", "report.html", "prediction_profile.json"} <= artifacts
    assert result.report.endswith("/report.html") and run.data.tags["report_uri"] == result.report
    # The report in a browser: metrics, learning curves, then what this kind of model shows of its test set.
    report = local_path(result.report)
    check_report(report, screenshot=f"report_{name}")
    assert REPORT_SECTIONS[name] in report.read_text()
    assert run.data.tags["model_committed"] == "true" and len(run.data.tags["data_fingerprint"]) == 64
    assert run.data.metrics["rows_train"] > 0
    if name == "fashion_autoencoder":
        codes = spark.read.parquet(run.data.tags["codes_uri"])
        assert codes.count() == 500 and len(codes.first()["code"]) == 6
    if name == "tweet_sentiment":
        assert "feature_pipeline" in artifacts
        assert 0.3 < run.data.metrics["baseline_tfidf_logreg_accuracy"] <= 1.0
    if name == "darcy_surrogate":
        assert 0 < run.data.metrics["test_relative_l2"] < 2
        assert 0 < run.data.metrics["test32_full_relative_l2"] < 2
    assert definition.summary(result, config).startswith(name)
    # The committed model is one Spark pipeline: the feature stages training used, then the Keras model.
    model = PipelineModel.load(result.model_uri)
    assert type(model.stages[-1]).__name__ == "KerasModel"
    assert model.stages[-1].summary.history == {}  # fitted state lives on the fitted Model, not on disk
