"""Search over a Keras pipeline: Horovod trials, epochs reported from rank 0, pruning inside the fit."""
import math

import pytest
from mlflow.tracking import MlflowClient

from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ConfigError

TINY_DARCY = ["run_date=2026-02-01", "model=mlp", "models.mlp.hidden=[64]", "data.train_limit=300",
              "data.test_limit=20", "training.epochs=3", "training.batch_size=16",
              "training.early_stopping_patience=0", "tune.n_trials=2", "tune.parallelism=1",
              "tune.pruner_startup_trials=1", "tune.space.learning_rate.low=1e-07"]
GOOD, HOPELESS = {"learning_rate": 0.003, "batch_size": 16}, {"learning_rate": 1e-07, "batch_size": 16}


@pytest.fixture(scope="module")
def keras_search(spark, tmp_path_factory):
    from spark_ml_pipeline.tune.search import open_study, tune

    store = tmp_path_factory.mktemp("keras_tune")
    config = load_config("darcy_surrogate", ["local"], [f"store.root={store}", *TINY_DARCY])
    study, _ = open_study(config, "minimize")
    study.enqueue_trial(GOOD)  # completes and sets the median every later trial is judged against
    study.enqueue_trial(HOPELESS)  # learns nothing in epoch 1: the median pruner stops it there
    return config, tune(spark, config, progress=lambda line: None)


def test_rank0_reports_every_epoch_and_the_pruner_stops_the_fit(keras_search):
    import optuna

    from spark_ml_pipeline.tune.search import open_storage

    config, result = keras_search
    assert result.status == "finished" and result.finished == 2
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(config))
    good, hopeless = study.trials
    assert good.params == GOOD and good.state.name == "COMPLETE"
    assert sorted(good.intermediate_values) == [1, 2, 3]  # written by rank 0 inside the Horovod fit
    assert good.value == pytest.approx(min(good.intermediate_values.values()))
    assert good.user_attrs["num_workers"] == 2  # parallelism 1: both slots are Horovod ranks of one fit
    assert hopeless.params == HOPELESS and hopeless.state.name == "PRUNED"
    assert list(hopeless.intermediate_values) == [1] and hopeless.user_attrs["epochs"] == 1  # stopped early
    assert hopeless.intermediate_values[1] > good.intermediate_values[1]


def test_keras_trials_are_child_runs_and_the_best_is_registered(spark, keras_search):
    from spark_ml_pipeline.train.keras_estimator import KerasModel
    from spark_ml_pipeline.store.tracking import Store

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
    assert str(champion.version) == result.model_version and champion.source.endswith(".keras")
    # The registered model scores a DataFrame through the Spark transformer.
    from spark_ml_pipeline.runtime.io import local_path

    rows = spark.createDataFrame([([0.5] * (16 * 16 * 3),)], "features array<float>")
    scored = KerasModel(modelPath=str(local_path(champion.source)), inputShape=[16, 16, 3]).transform(rows)
    assert len(scored.first()["prediction"]) == 256


def test_keras_space_may_not_change_the_shared_data(spark, tmp_path):
    from spark_ml_pipeline.tune.keras_tuner import KerasTuner

    config = load_config("darcy_surrogate", ["local"], [
        f"store.root={tmp_path}", "tune.space.split={type: float, low: 0.1, high: 0.2, "
                                  "key: training.validation_fraction}"])
    with pytest.raises(ConfigError, match=r"tune\.space\.split: .* training\.validation_fraction"):
        KerasTuner(spark, config).check_space()


# --- one search across model families: XGBoost and a Keras MLP on the same taxi features ------------------

def _taxi_conf(tmp_path, space):
    import shutil

    import yaml

    from tests.conftest import ROOT

    target = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", target)
    taxi = yaml.safe_load((target / "taxi_fare.yaml").read_text())
    taxi["tune"] = {"n_trials": 1, "parallelism": 1, "report": False, "space": space}
    (target / "taxi_fare.yaml").write_text(yaml.safe_dump(taxi))
    return target


def test_cross_family_search_registers_a_keras_champion_that_later_searches_can_judge(spark, tmp_path):
    from pyspark.ml import PipelineModel

    from spark_ml_pipeline.store.tracking import Store
    from spark_ml_pipeline.tune.search import tune

    tiny = [f"store.root={tmp_path / 'store'}", "run_date=2026-02-02", "generate.rows=6000", "generate.months=1",
            "keras.epochs=3", "keras.units=32", "model.n_estimators=5", "model.early_stopping_rounds=null"]
    keras_only = _taxi_conf(tmp_path / "k", {"family": {"type": "categorical", "choices": ["keras_mlp"],
                                                        "key": "family"},
                                             "units": {"type": "categorical", "choices": [32], "key": "keras.units"}})
    first = tune(spark, load_config("taxi_fare", ["local"], tiny, keras_only), progress=lambda line: None)
    assert first.best_params["family"] == "keras_mlp" and first.promoted
    client = MlflowClient(Store(load_config("taxi_fare", ["local"], tiny, keras_only).store).tracking_uri)
    champion = client.get_model_version_by_alias("taxi_fare", "champion")
    # The registered Keras-family model is a self-contained Spark pipeline: trips in, a scalar fare out.
    model = PipelineModel.load(champion.source)
    assert type(model.stages[-2]).__name__ == "KerasModel"
    assert model.stages[-2].getOrDefault("modelPath").startswith(str(tmp_path / "store"))

    xgb_only = _taxi_conf(tmp_path / "x", {"family": {"type": "categorical", "choices": ["xgboost"], "key": "family"},
                                           "max_depth": {"type": "int", "low": 2, "high": 3}})
    second = tune(spark, load_config("taxi_fare", ["local"], tiny, xgb_only), progress=lambda line: None)
    # The Keras champion was loaded and scored on the same test split; the alias moved only if XGBoost won.
    assert second.champion_value == pytest.approx(first.test_value, rel=1e-4)
    assert second.promoted == (second.test_value < first.test_value)
