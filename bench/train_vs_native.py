"""The taxi pipeline's own XGBoost fit vs native xgboost on the same rows, features and rounds, in one run.

    .venv/bin/python bench/train_vs_native.py [--rows 1000000] [--rounds 100] [--repeats 3]

Generates and ingests N trips once (bench/out/train_vs_native/), splits them as the pipeline does, and writes
the training rows' feature table (the pipeline's own feature stages) to Parquet once. Then alternates:
(a) the pipeline's fit exactly as ``train`` runs it (``fit_pipeline``: feature stages + the configured regressor,
its worker layout, one partition per worker, large Arrow batches), early stopping off and a fixed number of
rounds; (b) native ``xgboost.train`` on the same feature table: pyarrow read -> QuantileDMatrix -> train, with
the same parameters and threads. Prints medians and the ratio (a)/(b); target <= 1.10.
"""
from __future__ import annotations

import argparse
import json
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
    from pipelines.taxi_fare.pipeline import FEATURES_COLUMN, TaxiFareConfig, taxi_feature_stages
    from spark_ml_pipeline.ingest.quarantine import read_valid
    from spark_ml_pipeline.runtime.config_models import SplitConfig
    from spark_ml_pipeline.runtime.session import get_session
    from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR, split_rows
    from spark_ml_pipeline.train.xgboost import WorkerLayout, fit_pipeline, xgb_regressor

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
    regressor = xgb_regressor(config.model, FEATURES_COLUMN, LABEL, layout=layout, with_validation=False)
    booster_params = {"tree_method": "hist", "max_depth": config.model.max_depth, "eta": config.model.learning_rate,
                      "min_child_weight": config.model.min_child_weight, "max_bin": config.model.max_bin,
                      "lambda": config.model.reg_lambda, "objective": "reg:squarederror",
                      "nthread": layout.threads or 1, "seed": config.model.seed}
    pipeline_train = training.where(~training[VALIDATION_INDICATOR])

    def native() -> None:
        frame = pq.read_table(table).to_pandas()
        matrix = xgb.QuantileDMatrix(frame[columns].astype("float32"), label=frame[LABEL], nthread=layout.threads,
                                     max_bin=config.model.max_bin)
        xgb.train(booster_params, matrix, num_boost_round=args.rounds)

    def pipeline() -> None:
        fit_pipeline(taxi_feature_stages(config), regressor, pipeline_train)

    timings = {"native": [], "pipeline": []}
    for repeat in range(args.repeats + 1):  # the first pair warms both up and is not counted
        for name, run in (("native", native), ("pipeline", pipeline)) if repeat % 2 else \
                (("pipeline", pipeline), ("native", native)):
            started = time.perf_counter()
            run()
            seconds = time.perf_counter() - started
            if repeat:
                timings[name].append(seconds)
            print(f"repeat {repeat} {name:8s} {seconds:6.2f} s{' (warm-up)' if not repeat else ''}", flush=True)
    ratio = statistics.median(p / n for p, n in zip(timings["pipeline"], timings["native"]))
    result = {"rows": args.rows, "rounds": args.rounds, "layout": {"workers": layout.workers, "threads": layout.threads},
              "native_median_s": round(statistics.median(timings["native"]), 2),
              "pipeline_median_s": round(statistics.median(timings["pipeline"]), 2), "ratio_median": round(ratio, 3)}
    print(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"results-{args.rows}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
