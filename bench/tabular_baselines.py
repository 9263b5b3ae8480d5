"""Baselines for tabular pipelines, on the pipeline's own split: the mean / majority class, and scikit-learn's
HistGradientBoosting on the very same feature arrays, next to the pipeline's recorded XGBoost figures.

It reads the ingest output the pipeline committed for the run date (run the pipeline first), splits it with the
same ``split_rows`` (same keys, seed or time column), fits the same feature stages on the training rows, and
collects the feature arrays to pandas. HistGradientBoosting trains on the training rows (its own early stopping
on an internal 10 %), is scored on the test rows; the pipeline's figures are the latest MLflow run of that
pipeline and run date.

    python bench/tabular_baselines.py flights_delay penguins_species run_date=2026-11-28 store.root=/tmp/store
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, r2_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.tabular.pipeline import FEATURES_COLUMN, is_classification, training_data  # noqa: E402
from spark_ml_pipeline.runtime.config import load_config  # noqa: E402
from spark_ml_pipeline.runtime.config_models import run_date  # noqa: E402
from spark_ml_pipeline.runtime.session import get_session  # noqa: E402
from spark_ml_pipeline.store.tracking import Store  # noqa: E402


def arrays(model: PipelineModel, frame, label: str) -> tuple[np.ndarray, np.ndarray]:
    rows = model.transform(frame).select(FEATURES_COLUMN, label).toPandas()
    x = np.array(rows[FEATURES_COLUMN].tolist(), dtype=np.float64).reshape(len(rows), -1)
    return x, rows[label].to_numpy(dtype=np.float64)


def regression_figures(y: np.ndarray, prediction: np.ndarray) -> dict:
    return {"rmse": float(np.sqrt(np.mean((prediction - y) ** 2))), "mae": mean_absolute_error(y, prediction),
            "r2": r2_score(y, prediction)}


def classification_figures(y: np.ndarray, probability: np.ndarray, classes: int) -> dict:
    labels = list(range(classes))
    figures = {"log_loss": log_loss(y, np.clip(probability, 1e-15, 1), labels=labels),
               "accuracy": accuracy_score(y, probability.argmax(axis=1)),
               "macro_f1": f1_score(y, probability.argmax(axis=1), labels=labels, average="macro")}
    if classes == 2:
        figures["auc"] = roc_auc_score(y, probability[:, 1])
    return figures


def pipeline_figures(config) -> tuple[dict, str | None]:
    """The test metrics of the latest recorded pipeline run of this run date (not search refits)."""
    client = MlflowClient(Store(config.store).tracking_uri)
    experiment = client.get_experiment_by_name(config.store.experiment or config.pipeline)
    if experiment is None:
        return {}, None
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.run_date = '{run_date(config)}' and tags.pipeline_kind = 'tabular'",
                              order_by=["attributes.start_time DESC"])
    runs = [r for r in runs if r.data.tags.get("kind") is None
            and ("test_rmse" in r.data.metrics or "test_log_loss" in r.data.metrics)]
    if not runs:
        return {}, None
    metrics = runs[0].data.metrics
    return ({k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")} |
            {"fit_seconds": metrics.get("fit_seconds")}), runs[0].info.run_id


def bench(spark, name: str, overrides: list[str]) -> list[tuple[str, dict, float | None]]:
    config = load_config(name, ["local"], overrides)
    data = training_data(spark, config)  # the committed valid rows, the same split and fitted feature stages
    features = PipelineModel(data.feature_stages)
    x_train, y_train = arrays(features, data.splits.train, data.label)
    x_test, y_test = arrays(features, data.splits.test, data.label)
    rows = []
    if is_classification(config):
        classes = len(data.classes)
        prior = np.bincount(y_train.astype(int), minlength=classes) / len(y_train)
        rows.append(("class priors / majority class", classification_figures(y_test, np.tile(prior, (len(y_test), 1)),
                                                                              classes), None))
        model = HistGradientBoostingClassifier(random_state=0)
        started = time.time()
        model.fit(x_train, y_train.astype(int))
        seconds = time.time() - started
        rows.append(("scikit-learn HistGradientBoostingClassifier",
                     classification_figures(y_test, model.predict_proba(x_test), classes), seconds))
    else:
        rows.append(("training mean", regression_figures(y_test, np.full_like(y_test, y_train.mean())), None))
        model = HistGradientBoostingRegressor(random_state=0)
        started = time.time()
        model.fit(x_train, y_train)
        seconds = time.time() - started
        rows.append(("scikit-learn HistGradientBoostingRegressor", regression_figures(y_test,
                                                                                      model.predict(x_test)), seconds))
    figures, run_id = pipeline_figures(config)
    if figures:
        rows.append((f"pipeline: Spark XGBoost (MLflow run {run_id[:8]})", figures, figures.pop("fit_seconds")))
    print(f"\n{name} · run date {run_date(config)} · train {len(y_train):,} rows · test {len(y_test):,} rows · "
          f"{x_train.shape[1]} features")
    keys = ["rmse", "mae", "r2"] if not is_classification(config) else ["log_loss", "accuracy", "macro_f1", "auc"]
    keys = [k for k in keys if any(k in r[1] for r in rows)]
    print("| model | " + " | ".join(keys) + " | fit s |")
    print("|---|" + "---|" * (len(keys) + 1))
    for label, values, seconds in rows:
        cells = [f"{values[k]:.4f}" if k in values and not math.isnan(values[k]) else "-" for k in keys]
        print(f"| {label} | " + " | ".join(cells) + f" | {'-' if seconds is None else f'{seconds:.1f}'} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pipelines", nargs="+", help="tabular pipeline names, then key=value overrides")
    args = p.parse_args(argv)
    names = [a for a in args.pipelines if "=" not in a]
    overrides = [a for a in args.pipelines if "=" in a]
    config = load_config(names[0], ["local"], overrides)
    spark = get_session(config.spark, config.compute)
    for name in names:
        bench(spark, name, overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
