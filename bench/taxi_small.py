"""NVIDIA's Spark XGBoost taxi example (taxi-small) through the product, next to native XGBoost on the same rows.

    .venv/bin/python bench/taxi_small.py [--data ../shared/data/real-taxi/spark-rapids-taxi-small/taxi/csv]

Runs ``python -m jobs.run_pipeline taxi_small`` (the notebook's setup from configuration only) and
``taxi_small_tuned`` (the product's own means: a haversine feature, early stopping, searched parameters), each in
bench/out/taxi-small/, and native ``xgboost.train`` with the notebook's parameters on the same files: all rows,
and the rows the notebook reads (``header=true`` drops each file's first line), with ``hist`` and, to show how
much the published figure depends on how splits are searched, ``exact``. Prints a markdown table of test RMSE.
The published figure (1.9142) was computed with ``gpu_hist`` on xgboost 1.7, which cannot run here (no GPU).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real-taxi" / "spark-rapids-taxi-small" / "taxi" / "csv"
LABEL_FIELD = 9
FEATURE_FIELDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # all but the label and the 17th
PUBLISHED = 1.9142


def product(pipeline: str, data: Path) -> tuple[float, int, str]:
    command = [sys.executable, "-m", "jobs.run_pipeline", pipeline, f"input.uri={data / 'train' / 'taxi-small.csv'}",
               f"input.test_uri={data / 'test' / 'taxi-small.csv'}", f"store.root={ROOT / 'bench/out/taxi-small'}",
               "report.enabled=false"]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rmse = float(re.search(r"test RMSE ([\d.]+)", output).group(1))
    rows = int(re.search(r"test ([\d,]+)\)", output).group(1).replace(",", ""))
    return rmse, rows, f"python -m jobs.run_pipeline {pipeline}"


def native(data: Path, skip_first_line: bool, tree_method: str) -> tuple[float, int]:
    read = lambda part: pd.read_csv(data / part / "taxi-small.csv", header=None,  # noqa: E731
                                    skiprows=1 if skip_first_line else 0).astype(np.float32)
    train, test = read("train"), read("test")
    booster = xgb.train({"tree_method": tree_method, "grow_policy": "depthwise", "max_depth": 6, "eta": 0.3,
                         "objective": "reg:squarederror"},
                        xgb.DMatrix(train[FEATURE_FIELDS], train[LABEL_FIELD]), 100)
    prediction = booster.predict(xgb.DMatrix(test[FEATURE_FIELDS]))
    return float(np.sqrt(np.mean((prediction - test[LABEL_FIELD]) ** 2))), len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="taxi/csv of the taxi-small archive")
    args = parser.parse_args()
    rows = [("NVIDIA's notebook as published (gpu_hist, xgboost 1.7, rows after each file's first)", PUBLISHED,
             1999, "taxi-gpu.ipynb")]
    for pipeline in ("taxi_small", "taxi_small_tuned"):
        rmse, count, command = product(pipeline, args.data)
        rows.append((f"the product: `{pipeline}`", rmse, count, command))
    for skip, method in ((False, "hist"), (True, "hist"), (True, "exact")):
        rmse, count = native(args.data, skip, method)
        which = "the notebook's rows" if skip else "all rows"
        rows.append((f"native xgboost.train, notebook parameters, {method}, {which}", rmse, count, "this script"))
    print("| setup | test rows | test RMSE | vs published |")
    print("|---|---:|---:|---:|")
    for name, rmse, count, command in rows:
        print(f"| {name} ({command}) | {count:,} | {rmse:.4f} | {rmse / PUBLISHED:.3f}x |")


if __name__ == "__main__":
    main()
