"""A fixed holdout file (``input.test_uri``): NVIDIA's taxi-small case through the shipped ``taxi_small`` confs.

The slice in tests/data/taxi_small (400 training and 100 test lines of NVIDIA's files, licence there) stands in
for the full files the confs name; everything else is the shipped configuration.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines.tabular import pipeline as tabular
from pipelines.tabular.ingest import holdout_location
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_stats
from spark_ml_pipeline.runs.xgboost_run import summary
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
SLICE = ROOT / "tests" / "data" / "taxi_small"
FEATURE_FIELDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # the notebook's 15: all but the label, 17th
SMALL = ["spark.master=local[2]", "spark.shuffle_partitions=2", "report.enabled=false"]


def slice_config(name, store, *extra, test_uri=SLICE / "test.csv"):
    return load_config(name, ["local"], [f"store.root={store}", f"input.uri={SLICE / 'train.csv'}",
                                         f"input.test_uri={test_uri}", *SMALL, *extra])


def test_notebook_setup_scores_the_fixed_test_file_like_native_xgboost(spark, tmp_path):
    """taxi_small as shipped: each file's first line skipped (the notebook's header=true), every other training row
    trains (no validation, no early stopping), the test file is the test set, and the product's RMSE is native
    xgboost's with the notebook's parameters on the same rows."""
    config = slice_config("taxi_small", tmp_path)
    result = tabular.run(spark, config)
    assert result.rows["rows_in"] == 399 == result.rows["rows_train"] and result.rows["rows_validation"] == 0
    assert result.rows["rows_test"] == result.rows["rows_test_in"] == 99
    assert "validation_rmse" not in result.metrics and result.metrics["best_iteration"] is None

    train = pd.read_csv(SLICE / "train.csv", header=None, skiprows=1).astype(np.float32)
    test = pd.read_csv(SLICE / "test.csv", header=None, skiprows=1).astype(np.float32)
    booster = xgb.train({"tree_method": "hist", "grow_policy": "depthwise", "max_depth": 6, "eta": 0.3,
                         "objective": "reg:squarederror"}, xgb.DMatrix(train[FEATURE_FIELDS], train[9]), 100)
    native = float(np.sqrt(np.mean((booster.predict(xgb.DMatrix(test[FEATURE_FIELDS])) - test[9]) ** 2)))
    assert result.metrics["test_rmse"] == pytest.approx(native, rel=1e-4)
    assert "test rows from input.test_uri: read 99 · quarantined 0" in summary(result, config)


def test_the_holdout_is_validated_and_accounted_for_like_the_input(spark, tmp_path):
    test_file = tmp_path / "test.csv"
    lines = (SLICE / "test.csv").read_text().splitlines()
    test_file.write_text("\n".join([*lines[:50], "not,a,trip", lines[50].replace(",", ",,", 1)]) + "\n")
    config = slice_config("taxi_small_tuned", tmp_path / "store", "model.n_estimators=50", test_uri=test_file)
    result = tabular.run(spark, config)
    location = holdout_location(config)
    stats = read_stats(spark, location)
    assert stats.rows_in == 51 == stats.rows_valid + stats.rows_quarantined  # 52 lines, the first skipped
    assert stats.quarantined_by_reason == {"malformed_line": 2}
    assert read_quarantine(spark, location).count() == 2
    assert result.rows["rows_test"] == 49 and result.rows["rows_test_quarantined"] == 2
    # validation rows come out of the training file only; together they are all its valid rows
    assert result.rows["rows_train"] + result.rows["rows_validation"] == result.rows["rows_valid"] == 399
    assert 0 < result.rows["rows_validation"] < 80 and result.metrics["validation_rmse"] > 0


def test_a_fixed_test_file_and_a_time_split_are_refused_together(tmp_path):
    with pytest.raises(ConfigError, match=r"split\.time_column: input\.test_uri names the test rows"):
        slice_config("taxi_small", tmp_path, "split.time_column=hour")
