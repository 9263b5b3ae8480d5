"""Parallel-trial efficiency of the search: T(8 trials, k=1) / (2 x T(8 trials, k=2)) on taxi_fare.

    .venv/bin/python bench/tune_parallel.py [--rows 100000] [--trials 8] [--repeats 2]

Both searches run the same 8 configurations (random sampler, same seed, no pruner, a space without
conditions) on the same cached features in one Spark session (local[2], FAIR scheduling), alternating
k=1 and k=2. T is the wall time from the first trial's start to the last trial's end (the study's own
timestamps), so data preparation is not counted. Efficiency 1.0 means two trials at once on half the
workers each take exactly half the time; target >= 0.85.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "tune_parallel"
SPACE = {
    "max_depth": {"type": "int", "low": 4, "high": 9},
    "learning_rate": {"type": "logfloat", "low": 0.05, "high": 0.3},
    "subsample": {"type": "float", "low": 0.6, "high": 1.0},
    "min_child_weight": {"type": "logfloat", "low": 0.5, "high": 10.0},
}


def search_seconds(result, config) -> float:
    import optuna

    from spark_ml_pipeline.tune.search import open_storage

    study = optuna.load_study(study_name=result.study_name, storage=open_storage(config))
    trials = [t for t in study.trials if t.datetime_complete]
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.runtime.discovery import find_pipeline
    from spark_ml_pipeline.runtime.session import get_session
    from spark_ml_pipeline.tune.search import tune

    shutil.rmtree(OUT, ignore_errors=True)
    base = [f"store.root={OUT / 'store'}", "run_date=2026-01-01", f"generate.rows={args.rows}", "generate.months=1",
            f"model.n_estimators={args.rounds}", "model.early_stopping_rounds=null", "spark.master=local[2]",
            "spark.driver_memory=6g", "tune.sampler=random", "tune.pruner=none", "tune.promote=false",
            "tune.report=false", f"tune.n_trials={args.trials}", "tune.seed=11",
            "spark.extra={spark.scheduler.mode: FAIR}"]
    config = load_config("taxi_fare", ["local"], base)
    spark = get_session(config.spark, config.compute)
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for k in (1, 2):
            run = load_config("taxi_fare", ["local"], [*base, f"tune.parallelism={k}",
                                                       f"tune.study_name=bench-k{k}-r{repeat}"])
            run = run.model_copy(update={"tune": run.tune.model_copy(update={"space": _space()})})
            started = time.perf_counter()
            result = tune(spark, run, find_pipeline("taxi_fare").tuner, progress=lambda line: None)
            seconds[k].append(search_seconds(result, run))
            print(f"repeat {repeat} k={k}: {result.finished} trials, trials' span {seconds[k][-1]:.1f} s "
                  f"(call {time.perf_counter() - started:.1f} s)", flush=True)
    ratios = [one / (2 * two) for one, two in zip(seconds[1], seconds[2])]
    summary = {"rows": args.rows, "trials": args.trials, "rounds": args.rounds, "seconds_k1": seconds[1],
               "seconds_k2": seconds[2], "efficiency_per_repeat": ratios,
               "efficiency_median": statistics.median(ratios), "speedup_median": statistics.median(
                   one / two for one, two in zip(seconds[1], seconds[2]))}
    print(f"T(k=1) {statistics.median(seconds[1]):.1f} s, T(k=2) {statistics.median(seconds[2]):.1f} s -> "
          f"speed-up {summary['speedup_median']:.2f}x, efficiency T1/(2 T2) {summary['efficiency_median']:.2f} "
          f"(per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.85)", flush=True)
    (OUT / "results.json").write_text(json.dumps(summary, indent=2))


def _space():
    from spark_ml_pipeline.runtime.config_models import ParamSpec

    return {name: ParamSpec(**spec) for name, spec in SPACE.items()}


if __name__ == "__main__":
    main()
