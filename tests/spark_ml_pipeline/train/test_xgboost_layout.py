"""How XGBoost fits are laid out: in the driver in local mode, barrier tasks otherwise; both the same model."""
import numpy as np
import pandas as pd
import pytest

from spark_ml_pipeline.runtime.config_models import XGBoostConfig
from spark_ml_pipeline.runtime.session import session_settings
from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR
from spark_ml_pipeline.train.xgboost import WorkerLayout, xgb_estimator

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def rows(spark):
    """600 rows, y = 3a - 2b + c², validation rows all at the end: the last Arrow batches hold no training rows."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(600, 3)), columns=FEATURES)
    frame["label"] = 3 * frame.a - 2 * frame.b + frame.c ** 2
    frame[VALIDATION_INDICATOR] = np.arange(600) >= 500
    return spark.createDataFrame(frame).repartition(1).cache()


def model_config(**overrides) -> XGBoostConfig:
    return XGBoostConfig(**{"n_estimators": 30, "max_depth": 4, "early_stopping_rounds": 5, **overrides})


def predictions(model, frame) -> np.ndarray:
    return np.array([r.prediction for r in model.transform(frame).orderBy("a").select("prediction").collect()])


def test_local_mode_fits_in_the_driver_on_every_core_and_a_cluster_layout_does_not(spark):
    sc = spark.sparkContext
    local = WorkerLayout.of(model_config(), sc)
    assert local == WorkerLayout(1, sc.defaultParallelism, in_driver=True)
    assert WorkerLayout.of(model_config(num_workers=2), sc) == WorkerLayout(2, max(1, sc.defaultParallelism // 2))
    assert xgb_estimator(model_config(), FEATURES, "label", layout=local)._in_driver
    assert not xgb_estimator(model_config(), FEATURES, "label", device="cuda", layout=local)._in_driver
    barrier = xgb_estimator(model_config(), FEATURES, "label", layout=WorkerLayout(1, 2))
    assert not barrier._in_driver
    # the tracker lives in a task: an executor lost in the rendezvous aborted a driver that hosted it (SIGABRT)
    assert barrier.getOrDefault("launch_tracker_on_driver") is False


def test_the_driver_fit_and_the_barrier_fit_learn_the_same_model(spark, rows):
    """Feature columns + a validation indicator, with Arrow batches of 100 rows: the batches that hold only
    validation rows made xgboost 3.2 raise KeyError 'values' in both layouts before the workaround."""
    fitted = {}
    with session_settings(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "100"}):
        for in_driver in (True, False):
            estimator = xgb_estimator(model_config(), FEATURES, "label",
                                      layout=WorkerLayout(1, 1, in_driver=in_driver))
            fitted[in_driver] = estimator.fit(rows)
            assert fitted[in_driver].uid == estimator.uid  # pyspark.ml's convention, kept by both
    driver, barrier = fitted[True], fitted[False]
    assert type(driver) is type(barrier)
    np.testing.assert_allclose(predictions(driver, rows), predictions(barrier, rows), rtol=1e-6)
    for summary in (driver.training_summary, barrier.training_summary):
        assert len(summary.validation_objective_history["rmse"]) == len(summary.train_objective_history["rmse"])
    assert driver.training_summary.validation_objective_history == \
        barrier.training_summary.validation_objective_history


def test_a_driver_fit_drives_a_handful_of_rows_near_zero_training_error(spark):
    """Eight rows, enough rounds and no regularisation: a correct training path memorises them."""
    frame = spark.createDataFrame(pd.DataFrame({"a": np.arange(8.0), "b": np.arange(8.0) % 3,
                                                "label": [5.0, -1.0, 3.0, 8.0, 0.5, 2.0, 7.0, -4.0]}))
    estimator = xgb_estimator(model_config(n_estimators=200, learning_rate=0.5, min_child_weight=0.0,
                                           reg_lambda=0.0, early_stopping_rounds=None), ["a", "b"], "label",
                              with_validation=False, layout=WorkerLayout(1, 1, in_driver=True))
    scored = estimator.fit(frame).transform(frame).toPandas()
    assert np.abs(scored.prediction - scored.label).max() < 0.05, scored


def test_a_classifier_fits_in_the_driver_with_probabilities(spark, rows):
    labelled = rows.withColumn("label", (rows.label > 0).cast("double"))
    model = xgb_estimator(model_config(), FEATURES, "label", "binary",
                          layout=WorkerLayout(1, 1, in_driver=True)).fit(labelled)
    scored = model.transform(labelled).toPandas()
    accuracy = (scored.prediction == scored.label).mean()
    assert accuracy > 0.9, accuracy
    assert np.allclose([sum(p) for p in scored.probability], 1.0)


def test_a_monotone_constraint_holds_in_the_fitted_model_and_names_real_features(spark):
    """y grows with ``a`` but the noise does not: constrained, the prediction never falls as ``a`` grows."""
    from spark_ml_pipeline.runtime.errors import ConfigError

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.uniform(0, 10, 400), "b": rng.normal(size=400), "c": rng.normal(size=400)})
    frame["label"] = frame.a + rng.normal(0, 3, 400)  # noisy: unconstrained trees zig-zag in a
    data = spark.createDataFrame(frame)
    grid = spark.createDataFrame(pd.DataFrame({"a": np.linspace(0, 10, 200), "b": 0.0, "c": 0.0}))
    config = model_config(n_estimators=60, early_stopping_rounds=None)
    free = predictions(xgb_estimator(config, FEATURES, "label", with_validation=False).fit(data), grid)
    constrained_config = model_config(n_estimators=60, early_stopping_rounds=None, monotone_constraints={"a": 1})
    constrained = predictions(xgb_estimator(constrained_config, FEATURES, "label", with_validation=False).fit(data),
                              grid)
    assert (np.diff(constrained) >= -1e-6).all()
    assert (np.diff(free) < -1e-3).any()  # the data alone would not have given it
    with pytest.raises(ConfigError, match="unknown feature.*distance"):
        xgb_estimator(model_config(monotone_constraints={"distance": 1}), FEATURES, "label")
    with pytest.raises(ConfigError, match="vector column 'features'"):
        xgb_estimator(constrained_config, "features", "label")
