"""Search over a Keras pipeline: distributed trials (on both backends), epochs reported from rank 0, pruning
inside the fit."""
import math

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel

from pipelines.darcy_surrogate.pipeline import TUNING as DARCY_TUNING
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.discovery import find_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.tune.keras_tuner import KerasTuner
from spark_ml_pipeline.tune.search import open_storage, open_study, tune

TINY_DARCY = ["run_date=2026-02-01", "model=mlp", "models.mlp.hidden=[64]", "data.train_limit=300",
              "data.test_limit=20", "training.epochs=3", "training.batch_size=16",
              "training.early_stopping_patience=0", "training.loss=mse", "training.lr_schedule=constant",
              "tune.n_trials=2", "tune.parallelism=1",
              "tune.pruner_startup_trials=1", "tune.space.learning_rate.low=1e-07"]
GOOD, HOPELESS = {"learning_rate": 0.003, "batch_size": 16}, {"learning_rate": 1e-07, "batch_size": 16}


@pytest.fixture(scope="module", params=["horovod", "tf_distribute"])
def keras_search(request, spark, tmp_path_factory):
    store = tmp_path_factory.mktemp("keras_tune")
    config = load_config("darcy_surrogate", ["local"], [f"store.root={store}", *TINY_DARCY,
                                                         f"training.backend={request.param}"])
    study, _ = open_study(config, "minimize")
    study.enqueue_trial(GOOD)  # completes and sets the median every later trial is judged against
    study.enqueue_trial(HOPELESS)  # learns nothing in epoch 1: the median pruner stops it there
    return config, tune(spark, config, find_pipeline("darcy_surrogate").tuner, progress=lambda line: None)


def test_rank0_reports_every_epoch_and_the_pruner_stops_the_fit(keras_search):
    config, result = keras_search
    assert result.status == "finished" and result.finished == 2
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(config))
    good, hopeless = study.trials
    assert good.params == GOOD and good.state.name == "COMPLETE"
    assert sorted(good.intermediate_values) == [1, 2, 3]  # written by rank 0 inside the distributed fit
    assert good.value == pytest.approx(min(good.intermediate_values.values()))
    assert good.user_attrs["num_workers"] == 2  # parallelism 1: both slots are ranks of one fit
    assert hopeless.params == HOPELESS and hopeless.state.name == "PRUNED"
    assert list(hopeless.intermediate_values) == [1] and hopeless.user_attrs["epochs"] == 1  # stopped early
    assert hopeless.intermediate_values[1] > good.intermediate_values[1]


def test_keras_trials_are_child_runs_and_the_best_is_registered(spark, keras_search):
    config, result = keras_search
    client = MlflowClient(Store(config.store).tracking_uri)
    children = client.search_runs([client.get_run(result.parent_run_id).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    trials = {r.info.run_name: r for r in children if r.info.run_name.startswith("trial-")}
    assert len(client.get_metric_history(trials["trial-0"].info.run_id, "epoch_val_loss")) == 3
    assert len(client.get_metric_history(trials["trial-1"].info.run_id, "epoch_val_loss")) == 1
    assert trials["trial-1"].data.tags["optuna.state"] == "PRUNED"

    assert result.promoted and math.isfinite(result.test_value) and 0 < result.test_value < 2
    champion = client.get_model_version_by_alias("darcy_surrogate", "champion")
    assert str(champion.version) == result.model_version
    # The registered model is a Spark pipeline (feature stages + Keras): it scores ingested rows directly.
    model = PipelineModel.load(champion.source)
    assert [type(stage).__name__ for stage in model.stages] == ["GridCoordinates", "KerasModel"]
    rows = spark.createDataFrame([([0.5] * (16 * 16),)], "coefficients array<float>")
    assert len(model.transform(rows).first()["prediction"]) == 256


def test_keras_space_may_not_change_the_shared_data(spark, tmp_path):
    config = load_config("darcy_surrogate", ["local"], [
        f"store.root={tmp_path}", "tune.space.split={type: float, low: 0.1, high: 0.2, "
                                  "key: training.validation_fraction}"])
    with pytest.raises(ConfigError, match=r"tune\.space\.split: .* training\.validation_fraction"):
        KerasTuner(spark, config, DARCY_TUNING).check_space()


# --- one search across model families: XGBoost and a Keras MLP on the same taxi features ------------------

def _taxi_conf(conf_dir, space):
    taxi_file = conf_dir / "pipelines" / "taxi_fare.yaml"
    taxi = yaml.safe_load(taxi_file.read_text())
    taxi["tune"] = {"n_trials": 1, "parallelism": 1, "report": False, "space": space}
    taxi_file.write_text(yaml.safe_dump(taxi))
    return conf_dir


def test_cross_family_search_registers_a_keras_champion_that_later_searches_can_judge(spark, tmp_path, copy_conf):
    taxi_tuner = find_pipeline("taxi_fare").tuner
    # One epoch and 3,000 trips: what is checked is which family won, was registered and judged, not how well.
    tiny = [f"store.root={tmp_path / 'store'}", "run_date=2026-02-02", "generate.rows=3000", "generate.months=1",
            "keras.epochs=1", "keras.units=32", "model.n_estimators=5", "model.early_stopping_rounds=null"]
    keras_only = _taxi_conf(copy_conf(tmp_path / "k"), {"family": {"type": "categorical", "choices": ["keras_mlp"],
                                                        "key": "family"},
                                             "units": {"type": "categorical", "choices": [32], "key": "keras.units"}})
    first = tune(spark, load_config("taxi_fare", ["local"], tiny, keras_only), taxi_tuner, progress=lambda line: None)
    assert first.best_params["family"] == "keras_mlp" and first.promoted
    client = MlflowClient(Store(load_config("taxi_fare", ["local"], tiny, keras_only).store).tracking_uri)
    champion = client.get_model_version_by_alias("taxi_fare", "champion")
    # The registered Keras-family model is a self-contained Spark pipeline: trips in, a scalar fare out.
    model = PipelineModel.load(champion.source)
    assert type(model.stages[-2]).__name__ == "KerasModel"
    assert model.stages[-2].getOrDefault("modelPath").startswith(str(tmp_path / "store"))

    xgb_only = _taxi_conf(copy_conf(tmp_path / "x"), {"family": {"type": "categorical", "choices": ["xgboost"], "key": "family"},
                                           "max_depth": {"type": "int", "low": 2, "high": 3}})
    second = tune(spark, load_config("taxi_fare", ["local"], tiny, xgb_only), taxi_tuner, progress=lambda line: None)
    # The Keras champion was loaded and scored on the same test split; the alias moved only if XGBoost won.
    assert second.champion_value == pytest.approx(first.test_value, rel=1e-4)
    assert second.promoted == (second.test_value < first.test_value)
