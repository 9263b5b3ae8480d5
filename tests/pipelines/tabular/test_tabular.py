"""A new tabular data set is one conf file: written into a temporary conf directory, run, searched and scored.

Each data set is a CSV this test generates (a few thousand rows, missing numeric values, and bad rows of every
kind the validation must quarantine); the jobs run in this process (the shared local[2] session) exactly as
their command lines do, with ``--conf-dir``.
"""
import csv
import json
import math
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel

from jobs import score as score_job
from jobs import tune as tune_job
from spark_ml_pipeline.ingest.quarantine import read_quarantine, read_stats
from spark_ml_pipeline.runtime.cli import run_stage
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.io import join, to_uri
from spark_ml_pipeline.score import batch
from spark_ml_pipeline.store.tracking import Store

RUN_DATE = "2026-01-15"
SMALL = ["spark.master=local[2]", f"run_date={RUN_DATE}", "model.num_workers=1", "model.n_estimators=80",
         "model.learning_rate=0.2", "model.max_depth=5", "model.early_stopping_rounds=10"]


def write_csv(path: Path, header: list[str], rows: list, extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
        for line in extra_lines:
            handle.write(line + "\n")
    return path


def fmt(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


# --- the regression data set: a delivery time from distance, load, area and the hour ------------------

REGRESSION_HEADER = ["id", "x1", "x2", "area", "shape", "when", "lat1", "lon1", "lat2", "lon2", "y"]
# bad rows appended to the clean ones: (reason, how many)
REGRESSION_BAD = {"malformed_line": 3, "bad_value:x1": 4, "bad_value:x2": 2, "bad_value:when": 2, "required:y": 5,
                  "range:x1": 3, "allowed:area": 2}


def regression_rows(n: int, seed: int, start_id: int = 0, label: bool = True):
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1)
    effect = {"north": 0.0, "south": 6.0, "east": -6.0}
    rows = []
    for i in range(n):
        x1, x2 = rng.uniform(0, 10), rng.normal()
        area, shape = rng.choice(list(effect)), rng.choice(["circle", "square"])
        when = start + timedelta(hours=int(i * 3 + rng.integers(0, 3)))
        lat1, lon1 = 40.6 + rng.uniform(0, 0.3), -74.0 + rng.uniform(0, 0.3)
        lat2, lon2 = 40.6 + rng.uniform(0, 0.3), -74.0 + rng.uniform(0, 0.3)
        km = 12734.0 * math.asin(math.sqrt(0.5 - math.cos(math.radians(lat2 - lat1)) / 2 + math.cos(math.radians(
            lat1)) * math.cos(math.radians(lat2)) * (1 - math.cos(math.radians(lon2 - lon1))) / 2))
        y = (2 * x1 + 3 * x2 + effect[area] + (2.0 if shape == "square" else 0.0) + 1.5 * km
             + (4.0 if when.hour >= 12 else 0.0) + rng.normal(0, 0.5))
        x2_text = "" if rng.random() < 0.1 else fmt(x2)  # missing values: they must reach XGBoost as NaN
        row = [start_id + i, fmt(x1), x2_text, area, shape, when.strftime("%Y-%m-%d %H:%M:%S"),
               fmt(lat1), fmt(lon1), fmt(lat2), fmt(lon2)]
        rows.append(row + [fmt(y)] if label else row)
    return rows


def regression_bad_rows(n_clean: int):
    rows, lines = [], ["1,2,3"] * REGRESSION_BAD["malformed_line"]
    base = regression_rows(30, seed=99, start_id=n_clean)
    take = iter(base)

    def changed(column: str, value: str):
        row = list(next(take))
        row[REGRESSION_HEADER.index(column)] = value
        return row

    rows += [changed("x1", "abc") for _ in range(REGRESSION_BAD["bad_value:x1"])]
    rows += [changed("x2", "n/a?") for _ in range(REGRESSION_BAD["bad_value:x2"])]
    rows += [changed("when", "not a time") for _ in range(REGRESSION_BAD["bad_value:when"])]
    rows += [changed("y", "") for _ in range(REGRESSION_BAD["required:y"])]
    rows += [changed("x1", "500") for _ in range(REGRESSION_BAD["range:x1"])]
    rows += [changed("area", "west") for _ in range(REGRESSION_BAD["allowed:area"])]
    return rows, lines


def regression_pipeline(input_uri: str) -> dict:
    return {
        "kind": "tabular",
        "input": {"uri": input_uri, "format": "csv", "header": True},
        "schema": {"id": "bigint", "x1": "double", "x2": "double", "area": "string", "shape": "string",
                   "when": "timestamp", "lat1": "double", "lon1": "double", "lat2": "double", "lon2": "double",
                   "y": "double"},
        "label": "y",
        "task": "regression",
        "keys": ["id"],
        "features": {
            "numeric": ["x1", "x2"],
            "categorical": {"area": "index", "shape": {"encoding": "hash", "buckets": 16}},
            "datetime": {"when": ["hour", "day_of_week"]},
            "distances": {"trip_km": {"from_latitude": "lat1", "from_longitude": "lon1", "to_latitude": "lat2",
                                      "to_longitude": "lon2"}},
        },
        "validation": {"required": ["y"], "ranges": {"x1": {"min": 0, "max": 100}},
                       "allowed": {"area": ["north", "south", "east"]}},
        "split": {"validation_fraction": 0.15, "test_fraction": 0.15, "time_column": "when"},
        "tune": {"pruner": "none", "space": {"max_depth": {"type": "int", "low": 3, "high": 6},
                                             "learning_rate": {"type": "logfloat", "low": 0.1, "high": 0.3}}},
    }


# --- the multiclass data set: a species (string label) from measurements and a region ----------------

CLASSES = ["alpha", "beta", "gamma"]
MULTICLASS_HEADER = ["f1", "f2", "f3", "region", "species"]
MULTICLASS_BAD = {"malformed_line": 2, "bad_value:f1": 3, "required:species": 4, "allowed:species": 2,
                  "range:f2": 3}


def multiclass_rows(n: int, seed: int, label: bool = True):
    rng = np.random.default_rng(seed)
    centres = {"alpha": (0.0, 0.0, 0.0), "beta": (3.0, 1.0, 2.0), "gamma": (0.0, 3.5, -2.0)}
    region_of = {"alpha": ["n", "s"], "beta": ["s", "e"], "gamma": ["e", "n"]}
    rows = []
    for _ in range(n):
        species = CLASSES[int(rng.integers(0, 3))]
        f1, f2, f3 = (c + rng.normal(0, 0.8) for c in centres[species])
        region = rng.choice(region_of[species])
        f3_text = "NA" if rng.random() < 0.15 else fmt(f3)  # R-style missing values
        row = [fmt(f1), fmt(f2), f3_text, region]
        rows.append(row + [species] if label else row)
    return rows


def multiclass_bad_rows():
    base = iter(multiclass_rows(30, seed=98))

    def changed(column: str, value: str):
        row = list(next(base))
        row[MULTICLASS_HEADER.index(column)] = value
        return row

    rows = [changed("f1", "1.2.3") for _ in range(MULTICLASS_BAD["bad_value:f1"])]
    rows += [changed("species", "NA") for _ in range(MULTICLASS_BAD["required:species"])]
    rows += [changed("species", "delta") for _ in range(MULTICLASS_BAD["allowed:species"])]
    rows += [changed("f2", "99") for _ in range(MULTICLASS_BAD["range:f2"])]
    return rows, ['"unterminated,1,2', "1,2"]


def multiclass_pipeline(input_uri: str) -> dict:
    return {
        "kind": "tabular",
        "input": {"uri": input_uri, "format": "csv", "null_values": ["", "NA"]},
        "schema": {"f1": "double", "f2": "double", "f3": "double", "region": "string", "species": "string"},
        "label": "species",
        "task": "multiclass",
        "features": {"numeric": ["f1", "f2", "f3"], "categorical": ["region"]},
        "validation": {"required": ["species"], "ranges": {"f2": {"min": -20, "max": 20}},
                       "allowed": {"species": CLASSES}},
        "split": {"validation_fraction": 0.15, "test_fraction": 0.2, "seed": 3},
        "tune": {"pruner": "none", "space": {"max_depth": {"type": "int", "low": 2, "high": 5},
                                             "min_child_weight": {"type": "logfloat", "low": 0.5, "high": 4.0}}},
    }


# --- one data set end to end -------------------------------------------------------------------------

class DataSet:
    def __init__(self, name, conf_dir, store_root, overrides, clean_rows, bad):
        self.name, self.conf_dir, self.store_root = name, conf_dir, store_root
        self.overrides = [f"store.root={store_root}", *SMALL, *overrides]
        self.clean_rows, self.bad = clean_rows, bad

    def argv(self, *extra):
        return [self.name, *self.overrides, *extra, "--conf-dir", str(self.conf_dir)]

    def config(self):
        return load_pipeline(self.name, ["local"], self.overrides, self.conf_dir)[0]


@pytest.fixture(scope="module")
def regression(tmp_path_factory, conf_dir_with):
    tmp = tmp_path_factory.mktemp("tabular_regression")
    rows = regression_rows(2400, seed=1)
    bad_rows, bad_lines = regression_bad_rows(2400)
    data = write_csv(tmp / "data" / "deliveries.csv", REGRESSION_HEADER, rows + bad_rows, bad_lines)
    conf = conf_dir_with(tmp, "deliveries", regression_pipeline(str(data)))
    return DataSet("deliveries", conf, tmp / "store", [], len(rows), REGRESSION_BAD)


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory, conf_dir_with):
    tmp = tmp_path_factory.mktemp("tabular_multiclass")
    rows = multiclass_rows(2000, seed=2)
    bad_rows, bad_lines = multiclass_bad_rows()
    # two files: a glob of the directory is the input
    write_csv(tmp / "data" / "part-1.csv", MULTICLASS_HEADER, rows[:1000] + bad_rows)
    write_csv(tmp / "data" / "part-2.csv", MULTICLASS_HEADER, rows[1000:], bad_lines)
    conf = conf_dir_with(tmp, "species", multiclass_pipeline(f"{tmp / 'data'}/*.csv"))
    return DataSet("species", conf, tmp / "store", [], len(rows), MULTICLASS_BAD)


def run_pipeline(dataset, capsys, *overrides):
    assert run_stage("run", "run", argv=dataset.argv(*overrides), report=lambda d, r, c: d.summary(r, c)) == 0, \
        capsys.readouterr().err
    return capsys.readouterr().out


def registry_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("  registry "))


def latest_run(dataset):
    config = dataset.config()
    client = MlflowClient(Store(config.store).tracking_uri)
    experiment = client.get_experiment_by_name(config.pipeline)
    runs = client.search_runs([experiment.experiment_id], "tags.pipeline_kind = 'tabular'",
                              order_by=["attributes.start_time DESC"])
    return client, [r for r in runs if r.data.tags.get("kind") is None][0]


def check_ingest(spark, dataset):
    from pipelines.tabular.ingest import ingest_location

    config = dataset.config()
    stats = read_stats(spark, ingest_location(config))
    assert stats.rows_in == dataset.clean_rows + sum(dataset.bad.values())
    assert stats.rows_in == stats.rows_valid + stats.rows_quarantined
    assert stats.quarantined_by_reason == dict(sorted(dataset.bad.items()))
    quarantine = read_quarantine(spark, ingest_location(config))
    raw = {r["reason"]: r["raw_line"] for r in quarantine.select("reason", "raw_line").collect()}
    assert all(raw[reason] for reason in dataset.bad if reason.startswith(("malformed_line", "bad_value")))
    return stats


def test_regression_data_set_runs_from_one_conf_file_and_its_champion_moves_on_a_better_run(spark, regression, capsys,
                                                                                         tmp_path):
    """Every run registers its model: the first takes the champion alias (there is none yet) and is what scoring
    loads by default; a worse run leaves the alias; a better one on the same test rows moves it. Boosting rounds
    far apart (3, 1, then the configured 80) make worse and better certain."""
    first_out = run_pipeline(regression, capsys, "model.n_estimators=3")
    client, first = latest_run(regression)
    first_rmse = first.data.metrics["test_rmse"]
    assert (first.data.tags["promoted"], first.data.tags["model_version"]) == ("true", "1")
    assert registry_line(first_out) == (f"  registry deliveries@champion · test_rmse {first_rmse:.4f} · champion "
                                        "before - · promoted (model version 1)")
    champion = client.get_model_version_by_alias("deliveries", "champion")
    assert (str(champion.version), champion.run_id) == ("1", first.info.run_id)
    assert float(champion.tags["test_rmse"]) == pytest.approx(first_rmse, rel=1e-6)

    # Scoring right after the first run, as the README says: no --model, the champion.
    source = write_csv(tmp_path / "new" / "rows.csv", REGRESSION_HEADER, regression_rows(50, seed=8, start_id=20_000))
    output = tmp_path / "predictions"
    assert score_job.main(regression.argv(f"input={source}", f"output={output}")) == 0, capsys.readouterr().err
    assert f"model champion (registered version 1, MLflow run {first.info.run_id})" in capsys.readouterr().out
    scored = batch.read_stats(spark, to_uri(output), RUN_DATE)
    assert (scored["model_version"], scored["run_id"], scored["rows_scored"]) == ("1", first.info.run_id, 50)

    worse_out = run_pipeline(regression, capsys, "model.n_estimators=1")
    _, worse = latest_run(regression)
    assert worse.data.metrics["test_rmse"] > first_rmse
    assert (worse.data.tags["promoted"], worse.data.tags["model_version"]) == ("false", "2")
    assert re.fullmatch(rf"  registry deliveries@champion · test_rmse {worse.data.metrics['test_rmse']:.4f} · "
                        r"champion before [\d.]+ \(version 1\) · not promoted \(model version 2\)",
                        registry_line(worse_out))
    # The champion was measured again on the same test rows: the first run's figure.
    assert float(client.get_model_version("deliveries", "2").tags["champion_test_rmse"]) == pytest.approx(
        first_rmse, rel=1e-6)
    assert str(client.get_model_version_by_alias("deliveries", "champion").version) == "1"

    out = run_pipeline(regression, capsys)
    assert "deliveries (XGBoost regression of 'y')" in out and "test RMSE" in out
    check_ingest(spark, regression)
    client, run = latest_run(regression)
    assert (run.data.tags["promoted"], run.data.tags["model_version"]) == ("true", "3")
    assert registry_line(out).endswith(" · promoted (model version 3)")
    champion = client.get_model_version_by_alias("deliveries", "champion")
    assert (str(champion.version), champion.run_id) == ("3", run.info.run_id)
    assert run.data.metrics["test_rmse"] < first_rmse
    m = run.data.metrics
    for metric in ("test_rmse", "test_mae", "test_r2", "validation_rmse", "baseline_test_rmse", "rows_in",
                   "rows_quarantined", "quarantined_range.x1", "best_iteration"):
        assert metric in m, metric
    assert m["test_rmse"] < 0.4 * m["baseline_test_rmse"]  # far better than predicting the mean
    assert m["test_r2"] > 0.8
    assert m["rows_in"] == m["rows_valid"] + m["rows_quarantined"]
    assert run.data.params["label"] == "y" and run.data.params["schema.x2"] == "double"
    # The saved model scores rows with missing values (NaN for XGBoost), none dropped.
    model = PipelineModel.load(run.data.tags["model_uri"])
    config = regression.config()
    rows = spark.createDataFrame([(1, 5.0, None, "north", "circle", datetime(2025, 3, 1, 14), 40.7, -73.9, 40.8,
                                   -73.8, None)], ", ".join(f"{c} {t}" for c, t in config.columns.items()))
    assert model.transform(rows).where("prediction is not null").count() == 1


def test_multiclass_data_set_with_string_labels(spark, multiclass, capsys, check_report):
    out = run_pipeline(multiclass, capsys)
    assert "test accuracy" in out and "classes alpha, beta, gamma" in out
    # A classifier is judged by its test log loss; the first run takes the alias.
    assert re.fullmatch(r"  registry species@champion · test_log_loss [\d.]+ · champion before - · "
                        r"promoted \(model version 1\)", registry_line(out))
    check_ingest(spark, multiclass)
    client, run = latest_run(multiclass)
    m = run.data.metrics
    for metric in ("test_log_loss", "test_accuracy", "test_macro_f1", "baseline_test_accuracy",
                   "baseline_test_log_loss", "validation_log_loss"):
        assert metric in m, metric
    assert "test_auc" not in m  # AUC is for binary tasks
    assert m["test_accuracy"] > m["baseline_test_accuracy"] + 0.3
    assert m["test_log_loss"] < 0.5 * m["baseline_test_log_loss"]
    assert m["test_macro_f1"] > 0.8
    matrix = json.loads(Path(client.download_artifacts(run.info.run_id, "confusion_matrix.json")).read_text())
    assert matrix["labels"] == CLASSES
    assert sum(map(sum, matrix["matrix"])) == m["rows_test"]
    assert sum(matrix["matrix"][i][i] for i in range(3)) / m["rows_test"] == pytest.approx(m["test_accuracy"])
    # The run's report: confusion matrix, per-class rates, curves, calibration, importance named by feature.
    report = Path(client.download_artifacts(run.info.run_id, "report.html"))
    assert len(check_report(report, screenshot="report_tabular_classification")) == 7
    assert all(f'"{name}"' in report.read_text() for name in ("alpha", "beta", "gamma"))
    # Predictions carry the original labels.
    model = PipelineModel.load(run.data.tags["model_uri"])
    scored = model.transform(spark.createDataFrame([(3.0, 1.0, None, "s")], "f1 double, f2 double, f3 double, "
                                                                           "region string"))
    assert scored.first()["predicted_species"] == "beta"


@pytest.mark.parametrize("dataset_name", ["regression", "multiclass"])
def test_search_registers_a_champion_and_scoring_accounts_for_every_row(spark, request, dataset_name, capsys,
                                                                        tmp_path):
    dataset = request.getfixturevalue(dataset_name)
    argv = dataset.argv("n_trials=3", "parallelism=1", "model.n_estimators=40")
    assert tune_job.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "3/3 trials" in out
    config = dataset.config()
    client = MlflowClient(Store(config.store).tracking_uri)
    champion = client.get_model_version_by_alias(config.pipeline, "champion")
    metric = "test_rmse" if dataset_name == "regression" else "test_log_loss"
    assert float(champion.tags[metric]) > 0

    # New rows to score: without a label column (multiclass) or with missing labels (regression), plus bad rows
    # the same validation quarantines (the rules on the label are not applied when scoring).
    if dataset_name == "regression":
        rows = regression_rows(300, seed=7, start_id=10_000)
        for row in rows[:20]:
            row[-1] = ""  # unknown label: still scored
        bad, lines = [r[:] for r in rows[20:23]], ["1,2"]
        for row in bad:
            row[1] = "oops"
        header, expected = REGRESSION_HEADER, {"bad_value:x1": 3, "malformed_line": 1}
        outputs = {"prediction"}
    else:
        rows = multiclass_rows(300, seed=7, label=False)
        bad, lines = [["1", "50", "1", "s"]], ['"open,1']
        header, expected = MULTICLASS_HEADER[:-1], {"malformed_line": 1, "range:f2": 1}
        outputs = {"prediction", "probability", "predicted_species"}
    source = write_csv(tmp_path / "new" / "rows.csv", header, rows + bad, lines)
    rows_in = len(rows) + len(bad) + len(lines)
    output = tmp_path / "predictions"
    score_argv = dataset.argv(f"input={source}", f"output={output}", "--model", "champion")
    assert score_job.main(score_argv) == 0, capsys.readouterr().err
    assert "quarantined" in capsys.readouterr().out
    stats = batch.read_stats(spark, to_uri(output), RUN_DATE)
    assert stats["rows_in"] == rows_in == stats["rows_scored"] + stats["rows_quarantined"]
    assert stats["quarantined_by_reason"] == expected
    predictions = spark.read.parquet(join(to_uri(output), f"run_date={RUN_DATE}"))
    assert outputs <= set(predictions.columns)
    assert predictions.where("prediction is null").count() == 0
    if dataset_name == "multiclass":
        labels = {r[0] for r in predictions.select("predicted_species").distinct().collect()}
        assert labels <= set(CLASSES) and len(labels) == 3
    else:
        assert "id" in predictions.columns and predictions.count() == 300


def test_config_errors_name_the_key_in_one_line(tmp_path, capsys, conf_dir_with):
    pipeline = multiclass_pipeline(str(tmp_path / "none.csv"))
    pipeline["features"]["numeric"].append("f9")
    conf = conf_dir_with(tmp_path / "a", "broken", pipeline)
    with pytest.raises(ConfigError, match=r"features\.numeric: unknown column 'f9' \(not in schema: f1, f2"):
        load_pipeline("broken", ["local"], [], conf)
    assert run_stage("run", "run", argv=["broken", "--conf-dir", str(conf)]) == 2
    err = capsys.readouterr().err
    problem = [line for line in err.splitlines() if "f9" in line]
    assert len(problem) == 1 and "features.numeric" in problem[0] and "Traceback" not in err

    assert run_stage("run", "run", argv=["broken", "--conf-dir", str(conf), "features.numeric=[f1]",
                                         "schema.f2=dubble"]) == 2
    err = capsys.readouterr().err
    assert "key 'schema.f2' (set in command line): unknown Spark SQL type 'dubble'" in err

    pipeline = multiclass_pipeline(str(tmp_path / "none.csv"))
    pipeline["features"]["datetime"] = {"region": ["hour"]}
    conf = conf_dir_with(tmp_path / "b", "broken", pipeline)
    with pytest.raises(ConfigError, match=r"features\.datetime: column 'region' is string"):
        load_pipeline("broken", ["local"], [], conf)


def test_missing_package_file_is_a_clear_error(spark, tmp_path, capsys, conf_dir_with):
    pipeline = multiclass_pipeline("package:palmerpenguins/data/no-such.csv")
    conf = conf_dir_with(tmp_path, "nopkg", pipeline)
    assert run_stage("ingest", "ingest", argv=["nopkg", f"store.root={tmp_path}/store", "--conf-dir",
                                               str(conf)]) == 2
    assert "input.uri: package:palmerpenguins/data/no-such.csv: no data/no-such.csv" in capsys.readouterr().err
