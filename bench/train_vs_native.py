"""The taxi pipeline's own XGBoost fit vs native xgboost on the same rows, features and rounds, in one run.

    .venv/bin/python bench/train_vs_native.py [--rows 1000000] [--rounds 100] [--repeats 3]

Generates and ingests N trips once (bench/out/train_vs_native/), splits them as the pipeline does, and writes
the training rows' feature table (the pipeline's own feature stages) to Parquet once. Then rotates three sides,
early stopping off and a fixed number of rounds, the same parameters and threads:
(a) native ``xgboost.train`` on the feature table: pyarrow read -> QuantileDMatrix -> train;
(b) estimator: the pipeline's configured regressor (its worker layout, feature columns) fitted on the same
    feature table read by Spark: like with like, the cost of going through Spark and xgboost.spark;
(c) pipeline: the fit exactly as ``train`` runs it (``fit_pipeline``: the feature stages computed from the
    ingested training rows in the same job + the regressor).
Prints medians and the ratios (b)/(a) (target <= 1.10) and (c)/(a).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "train_vs_native"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import xgboost as xgb
    from pyspark.ml import PipelineModel

    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips
    from pipelines.taxi_fare.ingest import ingest
    from pipelines.taxi_fare.config import TaxiFareConfig
    from pipelines.taxi_fare.pipeline import taxi_feature_stages
    from spark_ml_pipeline.ingest.quarantine import read_valid
    from spark_ml_pipeline.runtime.config_models import SplitConfig
    from spark_ml_pipeline.runtime.session import get_session
    from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR, split_rows
    from spark_ml_pipeline.train.xgboost import WorkerLayout, fit_pipeline, xgb_estimator

    config = TaxiFareConfig(model={"n_estimators": args.rounds, "early_stopping_rounds": None},
                            spark={"master": "local[2]", "driver_memory": "8g"})
    spark = get_session(config.spark, config.compute)
    raw, ingested, table = OUT / f"raw-{args.rows}", OUT / f"ingest-{args.rows}", OUT / f"features-{args.rows}"
    if not (ingested / "_ingest.json").exists():
        write_trips(spark, GeneratorSpec(rows=args.rows, files_per_month=1), str(raw))
        ingest(spark, str(raw), str(ingested), "parquet")
    splits = split_rows(read_valid(spark, str(ingested)), SplitConfig())
    training = splits.train_with_indicator()
    columns = feature_columns(config.features.categories)
    if not table.exists():  # the rows the pipeline trains on (validation rows flagged), as feature columns
        (PipelineModel(taxi_feature_stages(config, assemble_into=None)).transform(training)
         .where(~training[VALIDATION_INDICATOR]).select(*columns, LABEL).write.parquet(str(table)))

    layout = WorkerLayout.of(config.model, spark.sparkContext)
    regressor = xgb_estimator(config.model, columns, LABEL, layout=layout, with_validation=False)
    booster_params = {"tree_method": "hist", "max_depth": config.model.max_depth, "eta": config.model.learning_rate,
                      "min_child_weight": config.model.min_child_weight, "max_bin": config.model.max_bin,
                      "lambda": config.model.reg_lambda, "objective": "reg:squarederror",
                      "nthread": layout.threads or 1, "seed": config.model.seed}
    if regressor.isDefined("monotone_constraints"):  # the shipped constraint, as the pipeline's regressor has it
        booster_params["monotone_constraints"] = regressor.getOrDefault("monotone_constraints")
    pipeline_train = training.where(~training[VALIDATION_INDICATOR])

    def native() -> None:
        frame = pq.read_table(table).to_pandas()
        matrix = xgb.QuantileDMatrix(frame[columns].astype("float32"), label=frame[LABEL], nthread=layout.threads,
                                     max_bin=config.model.max_bin)
        xgb.train(booster_params, matrix, num_boost_round=args.rounds)

    def estimator() -> None:
        fit_pipeline([], regressor, spark.read.parquet(str(table)))

    def pipeline() -> None:
        fit_pipeline(taxi_feature_stages(config, assemble_into=None), regressor, pipeline_train)

    sides = [("native", native), ("estimator", estimator), ("pipeline", pipeline)]
    timings: dict[str, list[float]] = {name: [] for name, _ in sides}
    for repeat in range(args.repeats + 1):  # the first round warms every side up and is not counted
        for name, run in sides[repeat % 3:] + sides[:repeat % 3]:  # each side leads in turn
            started = time.perf_counter()
            run()
            seconds = time.perf_counter() - started
            if repeat:
                timings[name].append(seconds)
            print(f"repeat {repeat} {name:9s} {seconds:6.2f} s{' (warm-up)' if not repeat else ''}", flush=True)

    def ratio(side: str) -> float:
        return round(statistics.median(s / n for s, n in zip(timings[side], timings["native"])), 3)

    result = {"rows": args.rows, "rounds": args.rounds,
              "layout": {"workers": layout.workers, "threads": layout.threads, "in_driver": layout.in_driver},
              **{f"{name}_median_s": round(statistics.median(t), 2) for name, t in timings.items()},
              "estimator_ratio_median": ratio("estimator"), "pipeline_ratio_median": ratio("pipeline"),
              "load_average": os.getloadavg()}
    print(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"results-{args.rows}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
