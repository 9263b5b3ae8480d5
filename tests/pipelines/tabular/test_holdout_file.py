"""``input.test_uri`` (a fixed holdout file), ``input.skip_lines`` and ``split.validation_fraction: 0`` on tiny
CSV files written here: both inputs ingested and accounted for, the test set exactly the holdout's valid rows,
validation rows never trained on, the search and scoring of such a conf, and the refusals in one line each.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel

from jobs import score as score_job
from jobs import tune as tune_job
from pipelines.tabular import pipeline as tabular
from pipelines.tabular.ingest import holdout_location, ingest_location
from spark_ml_pipeline.ingest.quarantine import read_stats, read_valid
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import to_uri
from spark_ml_pipeline.runs.xgboost_run import fit_model
from spark_ml_pipeline.score import batch
from spark_ml_pipeline.store.tracking import Store
from spark_ml_pipeline.train.metrics import regression_metrics
from spark_ml_pipeline.train.xgboost import xgb_estimator

RUN_DATE = "2026-01-15"
HEADER = ["id", "x", "kind", "y"]
FAST = ["spark.master=local[2]", f"run_date={RUN_DATE}", "report.enabled=false", "model.num_workers=1",
        "model.n_estimators=20", "model.max_depth=3", "model.early_stopping_rounds=null"]


def rows(n: int, start_id: int, seed: int) -> list[list[str]]:
    """y = 3x + a step by kind, plus a little noise."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(n):
        x, kind = rng.uniform(0, 10), str(rng.choice(["a", "b"]))
        found.append([str(start_id + i), f"{x:.4f}", kind, f"{3 * x + (5 if kind == 'b' else 0) + rng.normal():.4f}"])
    return found


BAD_LINES = ["1,2", "9001,abc,a,1.0", "9002,1.0,a,"]  # malformed_line, bad_value:x, required:y
BAD_REASONS = {"bad_value:x": 1, "malformed_line": 1, "required:y": 1}


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def pipeline(uri: Path, test_uri: Path | None, **sections) -> dict:
    conf = {"kind": "tabular",
            "input": {"uri": str(uri), "format": "csv", "header": True,
                      **({"test_uri": str(test_uri)} if test_uri else {})},
            "schema": {"id": "bigint", "x": "double", "kind": "string", "y": "double"},
            "label": "y", "task": "regression", "keys": ["id"],
            "features": {"numeric": ["x"], "categorical": {"kind": "index"}},
            "validation": {"required": ["y"]},
            "split": {"validation_fraction": 0.0, "test_fraction": 0.2, "seed": 7},
            "tune": {"pruner": "none", "space": {"max_depth": {"type": "int", "low": 2, "high": 3}}}}
    for section, values in sections.items():
        conf[section] = {**conf[section], **values} if isinstance(values, dict) else values
    return conf


@pytest.fixture
def load(conf_dir_with):
    """``load(tmp_path, name, conf, *overrides)``: the config of a conf file written into a temporary conf dir."""
    def load_(tmp_path: Path, name: str, conf: dict, *overrides: str):
        return load_pipeline(name, ["local"], [f"store.root={tmp_path / 'store'}", *FAST, *overrides],
                             conf_dir_with(tmp_path, name, conf))[0]
    return load_


def csv_lines(found: list[list[str]], header: bool = True) -> list[str]:
    return [",".join(HEADER)] * header + [",".join(row) for row in found]


def test_both_inputs_are_ingested_and_the_test_set_is_the_holdouts_valid_rows(spark, tmp_path, load):
    train_rows, test_rows = rows(200, 0, seed=1), rows(50, 5000, seed=2)
    uri = write(tmp_path / "data" / "train.csv", csv_lines(train_rows) + BAD_LINES)
    test_uri = write(tmp_path / "data" / "test.csv", csv_lines(test_rows) + BAD_LINES[:2])
    config = load(tmp_path, "holdout", pipeline(uri, test_uri))
    result = tabular.run(spark, config)

    stats, test_stats = read_stats(spark, ingest_location(config)), read_stats(spark, holdout_location(config))
    assert stats.rows_in == 203 == stats.rows_valid + stats.rows_quarantined and stats.rows_valid == 200
    assert stats.quarantined_by_reason == BAD_REASONS
    assert test_stats.rows_in == 52 == test_stats.rows_valid + test_stats.rows_quarantined
    assert test_stats.quarantined_by_reason == {"bad_value:x": 1, "malformed_line": 1}

    # The test set is exactly the holdout's valid rows; every valid row of the input trains (validation 0).
    data = tabular.training_data(spark, config)
    expected = read_valid(spark, holdout_location(config)).select(*config.columns)
    assert_df_equality(data.splits.test, expected, ignore_row_order=True)
    assert {r.id for r in data.splits.test.collect()} == set(range(5000, 5050))
    assert data.splits.train.count() == 200 and data.splits.validation.isEmpty()
    r, m = result.rows, result.metrics
    assert (r["rows_train"], r["rows_validation"], r["rows_test"]) == (200, 0, 50)
    assert (r["rows_test_in"], r["rows_test_quarantined"]) == (52, 2)
    assert "validation_rmse" not in m and m["best_iteration"] is None
    assert m["test_rmse"] < 0.5 * m["baseline_test_rmse"]
    booster = PipelineModel.load(result.model_uri).stages[-1].get_booster()
    assert booster.num_boosted_rounds() == 20  # no early stopping: every round


def test_validation_fraction_zero_without_a_holdout_file(spark, tmp_path, load):
    uri = write(tmp_path / "data" / "train.csv", csv_lines(rows(200, 0, seed=3)))
    config = load(tmp_path, "no_validation", pipeline(uri, None))
    result = tabular.run(spark, config)
    r = result.rows
    assert r["rows_validation"] == 0 and r["rows_train"] + r["rows_test"] == r["rows_valid"] == 200
    assert 20 <= r["rows_test"] <= 60 and "validation_rmse" not in result.metrics


def test_skipped_first_lines_validation_held_out_search_and_scoring(spark, tmp_path, capsys, load):
    """Header-less files whose first line is not a row (input.skip_lines: 1); validation rows without early
    stopping are scored per round, never trained on; the search tests its refit on the holdout file's rows, and
    scoring reads new files with the same options, every line accounted for."""
    junk = "id,x,kind,y"  # were it read as a row, it would be quarantined as bad_value:id
    write(tmp_path / "data" / "train" / "part-1.csv", [junk, *csv_lines(rows(120, 0, seed=4), header=False)])
    write(tmp_path / "data" / "train" / "part-2.csv", [junk, *csv_lines(rows(120, 1000, seed=5), header=False)])
    test_uri = write(tmp_path / "data" / "test.csv", [junk, *csv_lines(rows(40, 5000, seed=6), header=False)])
    conf = pipeline(tmp_path / "data" / "train", test_uri, input={"header": False, "skip_lines": 1},
                    split={"validation_fraction": 0.2})
    name, store = "skipping", tmp_path / "store"
    config = load(tmp_path, name, conf)
    result = tabular.run(spark, config)
    r = result.rows
    assert (r["rows_in"], r["rows_quarantined"], r["rows_test_in"], r["rows_test"]) == (240, 0, 40, 40)
    assert r["rows_train"] + r["rows_validation"] == 240 and 20 < r["rows_validation"] < 80
    data = tabular.training_data(spark, config)
    fitted = fit_model(data, xgb_estimator(config.model, data.features, data.label, data.task)).stages[-1]
    assert len(fitted.training_summary.validation_objective_history["rmse"]) == 20  # held out, every round
    assert "validation_rmse" in result.metrics and result.metrics["best_iteration"] is None

    argv = [name, f"store.root={store}", *FAST, "--conf-dir", str(tmp_path / "conf")]
    assert tune_job.main([*argv, "n_trials=1", "parallelism=1"]) == 0, capsys.readouterr().err
    # The refit (train + validation rows; version 2, the run registered version 1) is tested on the holdout
    # file's 40 valid rows, and so is the run's model it is compared with.
    refit = MlflowClient(Store(config.store).tracking_uri).get_model_version(name, "2")
    assert refit.tags["optuna.trial"] == "0" and result.promotion.version == "1"
    holdout = read_valid(spark, holdout_location(config)).select(*config.columns)
    rescored = regression_metrics(PipelineModel.load(refit.tags["model_uri"]).transform(holdout), "y")
    assert rescored["n"] == 40 and float(refit.tags["test_rmse"]) == pytest.approx(rescored["rmse"], abs=1e-5)
    assert float(refit.tags["champion_test_rmse"]) == pytest.approx(result.metrics["test_rmse"], abs=1e-5)

    new = write(tmp_path / "new" / "rows.csv", [junk, *csv_lines(rows(30, 7000, seed=7), header=False), "1,2"])
    output = tmp_path / "predictions"
    assert score_job.main([*argv, f"input={new}", f"output={output}", "--model", "champion"]) == 0, \
        capsys.readouterr().err
    scored = batch.read_stats(spark, to_uri(output), RUN_DATE)
    assert scored["rows_in"] == 31 == scored["rows_scored"] + scored["rows_quarantined"]
    assert scored["quarantined_by_reason"] == {"malformed_line": 1}


@pytest.mark.parametrize("change, message", [
    ({"input": {"skip_lines": 1}}, r"^input\.skip_lines: for CSV files without a header \(input\.header: false\)"),
    ({"input": {"header": False, "skip_lines": 2}}, r"key 'input\.skip_lines' .*less than or equal to 1"),
    ({"input": {"format": "parquet", "skip_lines": 1}}, r"^input\.skip_lines: only for CSV files"),
    ({"split": {"time_column": "x"}}, r"^split\.time_column: input\.test_uri names the test rows"),
])
def test_refused_combinations_are_one_line_naming_the_keys(tmp_path, change, message, load):
    conf = pipeline(tmp_path / "train.csv", tmp_path / "test.csv")
    for section, values in change.items():
        conf[section] = {**conf[section], **values}
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, "refused", conf)
    problems = str(raised.value).splitlines()[1:]
    assert len(problems) == 1 and re.search(message, problems[0].strip()), problems
