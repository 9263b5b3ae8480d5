"""The fashion_gan pipeline end to end on a tiny slice of Fashion-MNIST (2 Horovod ranks, local mode): the run
records per-epoch losses and sample grids and a report, the judge's figures come from a real Fashion-MNIST
classifier (the fashion_mnist pipeline, trained here on a few hundred images), the committed generator scores
new rows through Spark exactly like in-process predict, and the search tunes the GAN by the judge's verdict."""
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel

from pipelines.fashion_gan.judge import prediction_metrics
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import local_path
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.train.models.gan import latent_vectors
from spark_ml_pipeline.tune.search import tune

DATE = "run_date=2026-03-01"
GAN = ["training.epochs=2", "training.batch_size=32", "data.train_limit=320", "training.recalibrate_batch_norm=2",
       "models.dcgan.noise_dim=8", "models.dcgan.label_embedding=4", "models.dcgan.generator_filters=[8,4]",
       "models.dcgan.discriminator_filters=[4,8]", "models.dcgan.kernel_size=3", "judge.samples_per_class=10", DATE]


@pytest.fixture(scope="module")
def judge_uri(tiny_dl_run):
    """The fashion_mnist pipeline's tiny run (tests/pipelines/conftest.py, shared): a real, if weak, classifier."""
    return tiny_dl_run("fashion_mnist")[2].model_uri


@pytest.fixture(scope="module")
def gan_run(spark, tmp_path_factory, judge_uri):
    store = tmp_path_factory.mktemp("gan-store")
    config, definition = load_pipeline("fashion_gan", ["local"], [f"store.root={store}", *GAN,
                                                                  f"judge.model_uri={judge_uri}"])
    return config, definition, definition.stages["run"](spark, config)


def test_the_run_records_losses_sample_grids_judge_figures_and_the_generator(gan_run, check_report):
    config, definition, result = gan_run
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model_committed"] == "true"
    for name in ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"):
        assert len(client.get_metric_history(result.run_id, f"epoch_{name}")) == 2
    grids = [a.path for a in client.list_artifacts(result.run_id, "samples")]
    assert grids == ["samples/epoch-0001.png", "samples/epoch-0002.png"]
    metrics = run.data.metrics
    assert metrics["rows_train"] == 320 and metrics["epochs_trained"] == 2
    # Judged by the real classifier: 100 generated samples, and as many real test images for scale.
    assert metrics["judge_samples"] == 100
    for share in ("judge_confident_share", "judge_requested_class_share", "judge_real_confident_share",
                  "judge_real_accuracy"):
        assert 0.0 <= metrics[share] <= 1.0, share
    assert 0.0 <= metrics["judge_class_entropy"] <= math.log(10) + 1e-9
    assert metrics["judge_class_entropy_ratio"] == pytest.approx(metrics["judge_class_entropy"] / math.log(10))
    assert metrics["judge_real_accuracy"] > 0.3  # the judge is a trained classifier, not chance
    assert run.data.tags["judge_model_uri"].endswith("/model")
    assert definition.summary(result, config).startswith("fashion_gan (dcgan)")
    # The report: losses per epoch, the first and last epochs' grids, the judge's verdict per class asked for.
    assert run.data.tags["report_uri"] == result.report and f"report  {result.report}" in definition.summary(
        result, config)
    report = local_path(result.report)
    check_report(report, screenshot="report_fashion_gan")
    page = report.read_text()
    assert page.count('<img alt="after epoch 1" src="data:image/png;base64,') == 1
    assert page.count('<img alt="after epoch 2" src="data:image/png;base64,') == 1
    assert "judged per class" in page and "Ankle boot" in page and "Learning curves" in page
    # The shipped judge samples with the truncation trick, and the page says so.
    assert config.judge.truncation == 0.5 and "noise truncated at ±0.5 (the truncation trick" in page


def test_the_committed_generator_scores_through_spark_like_in_process_predict(spark, gan_run):
    config, _, result = gan_run
    rng = np.random.default_rng(7)
    noise, labels = rng.standard_normal((30, 8)).astype("float32"), np.arange(30) % 10
    rows = spark.createDataFrame(pd.DataFrame({"row_id": np.arange(30), "label": labels.astype("int32"),
                                               "noise": list(noise)}), "row_id long, label int, noise array<float>")
    model = PipelineModel.load(result.model_uri)
    assert [type(s).__name__ for s in model.stages] == ["SQLTransformer", "KerasModel"]
    scored = np.stack(model.transform(rows).orderBy("row_id").toPandas()["image"].to_numpy())
    expected = model.stages[-1].keras_model().predict(latent_vectors(noise, labels, config.model), verbose=0)
    np.testing.assert_allclose(scored, expected.reshape(30, -1), rtol=1e-5, atol=1e-6)


def test_judge_figures():
    sure = np.eye(10)[np.arange(20) % 10]  # every class twice, fully confident, as requested
    metrics = prediction_metrics(sure, np.arange(20) % 10, 0.9)
    assert metrics["confident_share"] == 1.0 and metrics["requested_class_share"] == 1.0
    assert metrics["class_entropy"] == pytest.approx(math.log(10))
    assert metrics["class_entropy_ratio"] == pytest.approx(1.0)
    collapsed = np.full((20, 10), 0.02)
    collapsed[:, 3] = 0.82  # one class, never confident
    metrics = prediction_metrics(collapsed, np.arange(20) % 10, 0.9)
    assert metrics["confident_share"] == 0.0 and metrics["class_entropy"] == 0.0
    assert metrics["requested_class_share"] == pytest.approx(0.1)


def test_the_search_tunes_the_gan_by_the_judges_verdict_and_registers_the_best(spark, tmp_path, judge_uri):
    overrides = [f"store.root={tmp_path}", *GAN, "training.epochs=1", f"judge.model_uri={judge_uri}",
                 "tune.n_trials=1", "tune.parallelism=1", "tune.report=false"]
    config, definition = load_pipeline("fashion_gan", ["local"], overrides)
    result = tune(spark, config, definition.tuner, progress=lambda line: None)
    assert result.status == "finished" and result.finished == 1
    assert set(result.best_params) == {"learning_rate", "discriminator_learning_rate", "label_smoothing"}
    assert 0.0 <= result.best_value <= 1.0  # the share judged as the class asked for
    # The best trial's own generator is committed (the whole data set trained it), judged on held-out noise.
    assert result.promoted and result.model_version == "1" and 0.0 <= result.test_value <= 1.0
    client = MlflowClient(Store(config.store).tracking_uri)
    children = client.search_runs([client.get_run(result.parent_run_id).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    trials = [r for r in children if r.info.run_name.startswith("trial-")]
    assert len(trials) == 1
    for trial in trials:
        assert 0.0 <= trial.data.metrics["judge_requested_class_share"] <= 1.0
        assert len(client.get_metric_history(trial.info.run_id, "epoch_g_loss")) == 1
    with pytest.raises(ConfigError, match="set judge.model_uri"):
        unjudged, _ = load_pipeline("fashion_gan", ["local"], [f"store.root={tmp_path / 'unjudged'}", *GAN])
        tune(spark, unjudged, definition.tuner, progress=lambda line: None)


def test_truncated_noise_stays_within_its_bound_and_is_seeded():
    from pipelines.fashion_gan.judge import truncated_normal

    draws = truncated_normal(np.random.default_rng(1), (2000, 8), 1.0)
    assert np.abs(draws).max() <= 1.0 and draws.std() > 0.45  # redrawn, not clipped: no pile-up at ±1
    assert (np.abs(draws) > 0.999).mean() < 0.01
    np.testing.assert_array_equal(draws, truncated_normal(np.random.default_rng(1), (2000, 8), 1.0))
    plain = truncated_normal(np.random.default_rng(1), (2000, 8), None)
    assert np.abs(plain).max() > 2.5
