"""The taxi pipeline's own XGBoost fit vs native xgboost on the same rows, features and rounds, in one run.

    .venv/bin/python bench/train_vs_native.py [--rows 1000000] [--rounds 100] [--repeats 3] [--profile]

Generates and ingests N trips once (bench/out/train_vs_native/), splits them as the pipeline does, and writes
the training rows' feature table (the pipeline's own feature stages) to Parquet once. Then rotates three sides,
early stopping off and a fixed number of rounds, the same parameters and threads:
(a) native ``xgboost.train`` on the feature table: pyarrow read -> QuantileDMatrix -> train;
(b) estimator: the pipeline's configured regressor (its worker layout, feature columns) fitted on the same
    feature table read by Spark: like with like, the cost of going through Spark and xgboost.spark;
(c) pipeline: the fit exactly as ``train`` runs it (``fit_pipeline``: the feature stages computed from the
    ingested training rows in the same job + the regressor).
Prints medians and the ratios (b)/(a) (target <= 1.10) and (c)/(a), and each side's CPU seconds (this process
and the JVM: steadier than wall time on a busy machine).

``--profile`` also times each side's phases, by clocks around the fit's own functions (the module attributes of
``spark_ml_pipeline.train.xgboost`` are wrapped, nothing else changes):
- native: ``read`` (pyarrow, to pandas) · ``dmatrix`` (``QuantileDMatrix`` of one float32 frame) · ``boost``
- estimator / pipeline: ``plan`` (from the call to the first Arrow batch asked for: the pipeline's stages,
  parameter checks, the query planned) · ``input`` (the Spark job: scan, feature expressions, rows to Arrow, the
  socket, until the last batch is in) of which ``convert`` (each batch to pandas, then float32 arrays, in the
  driver) · ``dmatrix`` (the ``QuantileDMatrix`` over the batches) · ``boost`` (``xgboost.train``) · ``model``
  (the rest: the booster to an xgboost.spark model, the summary).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from process_cpu import tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "train_vs_native"


class Clock:
    """Seconds per phase of the current run."""

    def __init__(self):
        self.phases: dict[str, float] = defaultdict(float)

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] += seconds

    def reset(self) -> None:
        self.phases = defaultdict(float)


def instrument(clock: Clock) -> None:
    """Clocks around the fit's own steps in spark_ml_pipeline.train.xgboost."""
    from spark_ml_pipeline.train import xgboost as fit

    def timed(phase, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock.add(phase, time.perf_counter() - started)
        return wrapper

    # each Arrow batch to pandas, then to float32 arrays (CompactInput), as it arrives
    fit._ConvertedInPartitionOrder.converted = timed("convert", fit._ConvertedInPartitionOrder.converted)
    original_batches = fit.pandas_batches

    @contextlib.contextmanager
    def pandas_batches(frame, convert=lambda batch: batch):
        clock.add("_first_batch_asked", time.perf_counter())
        with original_batches(frame, convert) as batches:
            def watched():
                yield from batches
                clock.add("_last_batch_in", time.perf_counter())
            yield watched()
    fit.pandas_batches = pandas_batches
    fit.make_qdm = timed("dmatrix", fit.make_qdm)
    fit.xgboost_train = timed("boost", fit.xgboost_train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="time each side's phases")
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

    clock = Clock()
    if args.profile:
        instrument(clock)
    config = TaxiFareConfig(model={"n_estimators": args.rounds, "early_stopping_rounds": None},
                            spark={"master": "local[2]", "driver_memory": "8g"})
    spark = get_session(config.spark, config.compute)
    raw, ingested, table = OUT / f"raw-{args.rows}", OUT / f"ingest-{args.rows}", OUT / f"features-{args.rows}"
    if not (ingested / "_ingest.json").exists():
        write_trips(spark, GeneratorSpec(rows=args.rows), str(raw))
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
        started = time.perf_counter()
        frame = pq.read_table(table).to_pandas()
        clock.add("read", time.perf_counter() - started)
        started = time.perf_counter()
        matrix = xgb.QuantileDMatrix(frame[columns].astype("float32"), label=frame[LABEL], nthread=layout.threads,
                                     max_bin=config.model.max_bin)
        clock.add("dmatrix", time.perf_counter() - started)
        started = time.perf_counter()
        xgb.train(booster_params, matrix, num_boost_round=args.rounds)
        clock.add("boost", time.perf_counter() - started)

    def fitted(stages, frame):
        def run() -> None:
            started = time.perf_counter()
            fit_pipeline(stages, regressor, frame)
            total, phases = time.perf_counter() - started, clock.phases
            if args.profile:
                first, last = phases.pop("_first_batch_asked"), phases.pop("_last_batch_in")
                phases["plan"] = first - started
                phases["input"] = last - first  # includes convert
                phases["model"] = total - phases["plan"] - phases["input"] - phases["dmatrix"] - phases["boost"]
        return run

    sides = {"native": native, "estimator": fitted([], spark.read.parquet(str(table))),
             "pipeline": fitted(taxi_feature_stages(config, assemble_into=None), pipeline_train)}
    timings: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    for repeat in range(args.repeats + 1):  # the first round warms every side up and is not counted
        for name in names[repeat % 3:] + names[:repeat % 3]:  # each side leads in turn
            clock.reset()
            started, cpu_started = time.perf_counter(), tree_cpu_seconds()
            sides[name]()
            figures = dict(total=time.perf_counter() - started, cpu=tree_cpu_seconds() - cpu_started)
            if args.profile:
                figures.update(clock.phases)
            if repeat:
                timings[name].append(figures)
            print(f"repeat {repeat} {name:9s} " + " ".join(f"{k} {v:.2f}" for k, v in figures.items())
                  + (" (warm-up)" if not repeat else ""), flush=True)

    def ratio(side: str, figure: str) -> float:
        return round(statistics.median(s[figure] / n[figure] for s, n in zip(timings[side], timings["native"])), 3)

    result = {"rows": args.rows, "rounds": args.rounds, "load_average": os.getloadavg(),
              "layout": {"workers": layout.workers, "threads": layout.threads, "in_driver": layout.in_driver},
              "medians": {name: {k: round(statistics.median(run.get(k, 0.0) for run in runs), 3) for k in runs[0]}
                          for name, runs in timings.items()},
              **{f"{side}_ratio_median": ratio(side, "total") for side in ("estimator", "pipeline")},
              **{f"{side}_cpu_ratio_median": ratio(side, "cpu") for side in ("estimator", "pipeline")}}
    for name, medians in result["medians"].items():
        print(f"{name:9s} " + "  ".join(f"{k} {v:.2f}" for k, v in medians.items()), flush=True)
    print({k: v for k, v in result.items() if k != "medians"}, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"results-{args.rows}{'-profile' if args.profile else ''}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
