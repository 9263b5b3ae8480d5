"""Real taxi trips: the pipeline against the baselines a user would try, on the same test rows.

    .venv/bin/python bench/taxi_real.py [--input '../shared/data/real-taxi/tlc-yellow-samples/*.csv'] [overrides]

Runs ``taxi_fare_real`` (conf/pipelines/taxi_fare_real.yaml: time split, the latest 10 % of trips by pickup time
are the test rows) as ``jobs.run_pipeline`` does, in its own store (bench/out/taxi-real/), then scores on the
very same test rows:

- the pipeline's committed model (zone centroids, time parts, hashed categories, XGBoost);
- the TLC's fare rule in force 2012-09 .. 2022-12 (shared/data/real-taxi/README.md): $2.50 on entry plus $0.50
  per 1/5 mile, on standard-rate trips (rate code 1); the time part of the meter ($0.50 per slow minute) is
  left out because the trip's duration is not a feature (like NVIDIA's example, the dropoff time is dropped);
- scikit-learn HistGradientBoosting on the same feature columns (train rows; its own early stopping);
- a distance-only linear model (least squares on trip_distance, train rows);
- the training rows' mean fare.

Prints the quarantine counts by reason and a markdown table: RMSE and MAE on all test rows and on the
standard-rate test rows, each with its ratio to the pipeline's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from sklearn.ensemble import HistGradientBoostingRegressor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.taxi import LABEL, feature_columns  # noqa: E402
from pipelines.taxi_fare import train as taxi_train  # noqa: E402
from spark_ml_pipeline.runtime.config import load_config  # noqa: E402
from spark_ml_pipeline.runtime.session import get_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "real-taxi" / "tlc-yellow-samples" / "*.csv"
STANDARD_RATE = 1
BOOTSTRAP = 1000


def fare_rule(distance_miles: np.ndarray) -> np.ndarray:
    """$2.50 on entry, $0.50 per 1/5 mile (the distance part of the meter)."""
    return 2.50 + 0.50 * np.ceil(distance_miles / 0.2 - 1e-9)


def figures(y: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    return float(np.sqrt(np.mean((prediction - y) ** 2))), float(np.mean(np.abs(prediction - y)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="the real TLC files (glob)")
    parser.add_argument("--store", default=str(ROOT / "bench" / "out" / "taxi-real"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides of taxi_fare_real")
    args = parser.parse_args()
    config = load_config("taxi_fare_real", ["local"], [f"ingest.input={args.input}", f"store.root={args.store}",
                                                       "report.enabled=false", *args.overrides])
    spark = get_session(config.spark, config.compute)
    result = taxi_train.run(spark, config)
    print(taxi_train.summary(result, config), flush=True)

    splits, _ = taxi_train.split_trips(spark, config)
    model = PipelineModel.load(result.model_uri)
    features = PipelineModel(model.stages[:-1])
    columns = feature_columns(config.features.categories)

    def table(frame, with_prediction: bool):
        chosen = [*columns, LABEL, "rate_code", *(["prediction"] if with_prediction else [])]
        return (model if with_prediction else features).transform(frame).select(*chosen).toPandas()

    train, test = table(splits.train, False), table(splits.test, True)
    x_train, y_train = train[columns].to_numpy(np.float64), train[LABEL].to_numpy(np.float64)
    x_test, y_test = test[columns].to_numpy(np.float64), test[LABEL].to_numpy(np.float64)
    standard = (test["rate_code"] == STANDARD_RATE).to_numpy()

    histgb = HistGradientBoostingRegressor(max_iter=1000, early_stopping=True, random_state=0).fit(x_train, y_train)
    slope, intercept = np.polyfit(train["trip_distance"].to_numpy(np.float64), y_train, 1)
    predictions = {
        "the pipeline (taxi_fare_real: XGBoost on zone centroids, time parts, categories)":
            test["prediction"].to_numpy(np.float64),
        "scikit-learn HistGradientBoosting, same feature columns": histgb.predict(x_test),
        f"distance-only linear model ({intercept:.2f} + {slope:.2f} x miles)":
            intercept + slope * test["trip_distance"].to_numpy(np.float64),
        "training mean": np.full(len(y_test), y_train.mean()),
        "TLC fare rule ($2.50 + $0.50 per 1/5 mile; standard rate only)":
            np.where(standard, fare_rule(test["trip_distance"].to_numpy(np.float64)), np.nan),
    }
    base_all = figures(y_test, predictions[next(iter(predictions))])
    base_standard = figures(y_test[standard], predictions[next(iter(predictions))][standard])
    print(f"\ntest rows: {len(y_test):,} (latest by pickup time: {test_period(splits.test)}), "
          f"standard-rate {int(standard.sum()):,}; train rows {len(y_train):,}\n")
    print("| model | RMSE all | MAE all | RMSE standard rate | MAE standard rate | RMSE vs pipeline (standard rate) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, prediction in predictions.items():
        everywhere = figures(y_test, prediction) if not np.isnan(prediction).any() else None
        rmse_std, mae_std = figures(y_test[standard], prediction[standard])
        cells = [f"{everywhere[0]:.3f}", f"{everywhere[1]:.3f}"] if everywhere else ["–", "–"]
        print(f"| {name} | {' | '.join(cells)} | {rmse_std:.3f} | {mae_std:.3f} | {rmse_std / base_standard[0]:.2f}x |")
    print(f"\n(pipeline on all test rows: RMSE {base_all[0]:.3f}, MAE {base_all[1]:.3f})")
    # RMSE over all rows is dominated by a few extreme fares: how sure is a difference? (paired bootstrap)
    ours = predictions[next(iter(predictions))]
    theirs = predictions["scikit-learn HistGradientBoosting, same feature columns"]
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(BOOTSTRAP):
        sample = rng.integers(0, len(y_test), len(y_test))
        differences.append(figures(y_test[sample], theirs[sample])[0] - figures(y_test[sample], ours[sample])[0])
    low, high = np.percentile(differences, [2.5, 97.5])
    print(f"HistGB RMSE minus the pipeline's, all test rows: {np.mean(differences):+.3f} "
          f"(95 % paired bootstrap interval {low:+.3f} .. {high:+.3f}; > 0: the pipeline is better)")
    largest = np.sort(np.abs(ours - y_test))[-10:]
    print(f"the pipeline's 10 largest absolute errors: {', '.join(f'{e:.0f}' for e in largest)} "
          f"(their share of its squared error: {np.sum(largest ** 2) / np.sum((ours - y_test) ** 2):.0%})")


def test_period(frame) -> str:
    first, last = frame.agg(F.min("pickup_datetime"), F.max("pickup_datetime")).first()
    return f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"


if __name__ == "__main__":
    main()
