"""The four deep-learning pipelines end to end on tiny slices of their real data sets, in local mode."""
import pytest
from mlflow.tracking import MlflowClient

from pyspark.ml import PipelineModel

from spark_ml_pipeline.runtime.io import local_path

# The runs themselves: tests/pipelines/conftest.py (tiny_dl_run), shared with the tests that need a trained model.
EXPECTED_METRICS = {
    "fashion_mnist": ["test_accuracy", "test_macro_f1"],
    "fashion_autoencoder": ["test_reconstruction_mse"],
    "darcy_surrogate": ["test_relative_l2", "test32_relative_l2", "test32_full_relative_l2"],
    "tweet_sentiment": ["test_accuracy", "test_macro_f1", "baseline_tfidf_logreg_accuracy"],
}


REPORT_SECTIONS = {"fashion_mnist": "Most confident mistakes", "fashion_autoencoder": "Reconstructions",
                   "darcy_surrogate": "Sample predictions: fields", "tweet_sentiment": "Confusion matrix"}


@pytest.mark.parametrize("name", sorted(EXPECTED_METRICS))
def test_pipeline_runs_end_to_end_and_records_everything(spark, tiny_dl_run, name, check_report):
    expected_metrics = EXPECTED_METRICS[name]
    config, definition, result = tiny_dl_run(name)

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
    # The run registered its model: the first version of the pipeline's store, so the champion.
    assert (run.data.tags["promoted"], run.data.tags["model_version"]) == ("true", "1")
    assert f"  registry {name}@champion · test_" in definition.summary(result, config)
    assert client.get_model_version_by_alias(name, "champion").run_id == result.run_id
    # The committed model is one Spark pipeline: the feature stages training used, then the Keras model.
    model = PipelineModel.load(result.model_uri)
    assert type(model.stages[-1]).__name__ == "KerasModel"
    assert model.stages[-1].summary.history == {}  # fitted state lives on the fitted Model, not on disk


def test_fashion_autoencoder_vae_records_its_elbo_prior_samples_and_latent_means(spark, tmp_path, tiny_dl_run):
    """``model=vae``: the run records the test ELBO (nats per image) and a grid of decoded prior samples, and the
    latent means are written as the codes table, as the autoencoder's codes are."""
    import numpy as np

    from spark_ml_pipeline.ingest.fashion_mnist import read_images
    from spark_ml_pipeline.train.models.autoencoder import encoder_of

    config, definition, result = tiny_dl_run("fashion_autoencoder", "model=vae", "models.vae.filters=[8]",
                                             "models.vae.code_size=4")

    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model_kind"] == "vae"
    metrics = run.data.metrics
    assert 0 < metrics["test_reconstruction_mse"] < 0.2  # of the posterior mean's reconstruction, through Spark
    assert metrics["test_kl"] > 0 and metrics["test_reconstruction_nll"] > 0
    assert metrics["test_negative_elbo"] == pytest.approx(metrics["test_reconstruction_nll"] + metrics["test_kl"])
    assert 100 < metrics["test_negative_elbo"] < 28 * 28 * np.log(2)  # beats a constant 0.5 per pixel already
    assert result.metrics["test_negative_elbo"] == pytest.approx(metrics["test_negative_elbo"])
    assert len(client.get_metric_history(result.run_id, "epoch_val_loss")) == 1
    artifacts = {a.path: a for a in client.list_artifacts(result.run_id)}
    assert {"model", "report.html", "prior_samples.png"} <= set(artifacts)
    with open(client.download_artifacts(result.run_id, "prior_samples.png", str(tmp_path)), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    # The codes table holds the latent means: the trained model's encoder gives them for the same images.
    codes = spark.read.parquet(run.data.tags["codes_uri"])
    assert codes.count() == 500 and len(codes.first()["code"]) == 4
    scoring = PipelineModel.load(result.model_uri)
    features = PipelineModel(scoring.stages[:-1]).transform(read_images(spark, config.store, "test", 100))
    rows = features.join(codes.where("split = 'test'").select("row_id", "code"), "row_id").orderBy("row_id").collect()
    assert len(rows) == 100
    images = np.asarray([row["features"] for row in rows], "float32").reshape(-1, 28, 28)
    means = encoder_of(result.model.keras_model()).predict(images, verbose=0)
    np.testing.assert_allclose(np.asarray([row["code"] for row in rows]), means, rtol=1e-4, atol=1e-5)
