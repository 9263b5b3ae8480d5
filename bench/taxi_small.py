"""NVIDIA's Spark XGBoost taxi example (taxi-small) through the product, next to native XGBoost on the same rows.

    .venv/bin/python bench/taxi_small.py [--data ../shared/data/real-taxi/spark-rapids-taxi-small/taxi/csv]

Runs ``python -m jobs.run_pipeline taxi_small`` (the notebook's setup from configuration only: its rows, each
file's first line skipped as its ``header=true`` does, its 15 features and parameters), the same with
``input.skip_lines=0`` (every line of both files), and ``taxi_small_tuned`` (the product's own means: a haversine
feature, early stopping, searched parameters), each in bench/out/taxi-small/; then native ``xgboost.train`` with
the notebook's parameters on the same files read with pandas: the notebook's rows with ``hist`` as xgboost runs it
here (the intercept estimated from the labels, xgboost >= 2.0), with ``base_score=0.5`` (xgboost 1.7's default,
the notebook's version) and with ``exact``; and all rows. Prints a markdown table: setup, test rows, test RMSE,
command. The published figure (1.9142) was computed with ``gpu_hist`` on xgboost 1.7, which cannot run here (no
GPU, xgboost 3.2).
"""
from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real-taxi" / "spark-rapids-taxi-small" / "taxi" / "csv"
STORE = "bench/out/taxi-small"
LABEL_FIELD = 9
FEATURE_FIELDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # all but the label and the 17th
NOTEBOOK = {"tree_method": "hist", "grow_policy": "depthwise", "max_depth": 6, "eta": 0.3,
            "objective": "reg:squarederror"}  # SparkXGBRegressor's defaults: 100 rounds, the rest xgboost's
PUBLISHED = 1.9142


def product(pipeline: str, data: Path, *overrides: str) -> tuple[float, int, str]:
    """Test RMSE and test rows of ``python -m jobs.run_pipeline <pipeline>`` (the data at ``data``)."""
    shown = [f"store.root={STORE}", "report.enabled=false", *overrides]
    command = [sys.executable, "-m", "jobs.run_pipeline", pipeline, f"input.uri={data / 'train' / 'taxi-small.csv'}",
               f"input.test_uri={data / 'test' / 'taxi-small.csv'}", *shown]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    run_id = re.search(r"MLflow run (\w+)", output).group(1)  # the summary rounds: the run's metrics do not
    metrics = MlflowClient(f"sqlite:///{ROOT / STORE / 'mlflow.db'}").get_run(run_id).data.metrics
    return metrics["test_rmse"], int(metrics["rows_test"]), " ".join(["python -m jobs.run_pipeline", pipeline, *shown])


def native(data: Path, skip_first_line: bool, **params) -> tuple[float, int]:
    """xgboost.train with the notebook's parameters (updated by ``params``) on the files read with pandas."""
    read = lambda part: pd.read_csv(data / part / "taxi-small.csv", header=None,  # noqa: E731
                                    skiprows=1 if skip_first_line else 0).astype(np.float32)
    train, test = read("train"), read("test")
    booster = xgb.train({**NOTEBOOK, **params}, xgb.DMatrix(train[FEATURE_FIELDS], train[LABEL_FIELD]), 100)
    prediction = booster.predict(xgb.DMatrix(test[FEATURE_FIELDS])).astype(np.float64)
    return float(np.sqrt(np.mean((prediction - test[LABEL_FIELD].astype(np.float64)) ** 2))), len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="taxi/csv of the taxi-small archive")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = [("NVIDIA's notebook as published (gpu_hist, xgboost 1.7; header=true drops each file's first line)",
             1999, PUBLISHED, "taxi-gpu.ipynb")]
    for name, pipeline, overrides in (
            ("the product: `taxi_small` (the notebook's rows, features and parameters)", "taxi_small", ()),
            ("the product: `taxi_small`, every line of both files", "taxi_small", ("input.skip_lines=0",)),
            ("the product: `taxi_small_tuned` (+ haversine km, early stopping, searched parameters)",
             "taxi_small_tuned", ())):
        rmse, count, command = product(pipeline, args.data, *overrides)
        rows.append((name, count, rmse, command))
    script = f"bench/taxi_small.py (xgboost {xgb.__version__})"
    for name, skip, params in (
            ("native xgboost.train, the notebook's rows, hist", True, {}),
            ("native, the notebook's rows, hist, base_score 0.5 (xgboost 1.7's default intercept)", True,
             {"base_score": 0.5}),
            ("native, the notebook's rows, exact", True, {"tree_method": "exact"}),
            ("native, every line of both files, hist", False, {})):
        rmse, count = native(args.data, skip, **params)
        rows.append((name, count, rmse, script))
    print(f"taxi-small, {started:%Y-%m-%d %H:%M} UTC")
    print("| setup | test rows | test RMSE | command |")
    print("|---|---:|---:|---|")
    for name, count, rmse, command in rows:
        print(f"| {name} | {count:,} | {rmse:.4f} | `{command}` |")


if __name__ == "__main__":
    main()
