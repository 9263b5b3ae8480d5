"""Search quality: how many TPE trials reach the best validation RMSE of a 16-point grid over the same space.

    .venv/bin/python bench/tune_quality.py [--rows 200000] [--seeds 0,1,2] [--max-trials 20]

On taxi_fare (same features, same split): first a 4 x 4 grid over max_depth x learning_rate (the
CrossValidator-style search), then, for each seed, TPE over the continuous ranges those grids sample,
until a trial's validation RMSE is <= the grid's best (or --max-trials). Prints, per seed, the trials TPE
needed (and to come within --tolerance of it), and the average; target <= 6. Pruning is off so every trial's
value is its full fit's; row subsampling is off (subsample 1.0) so a configuration's value is deterministic.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "tune_quality"
SPACE = {
    "max_depth": {"type": "int", "low": 3, "high": 10, "grid": [3, 5, 7, 9]},
    "learning_rate": {"type": "logfloat", "low": 0.02, "high": 0.4, "grid": [0.03, 0.06, 0.12, 0.25]},
}


def _space():
    from spark_ml_pipeline.runtime.config_models import ParamSpec

    return {name: ParamSpec(**spec) for name, spec in SPACE.items()}


def _trials(result, config) -> list:
    import optuna
    from optuna.trial import TrialState

    from spark_ml_pipeline.tune.search import open_storage

    study = optuna.load_study(study_name=result.study_name, storage=open_storage(config))
    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--tolerance", type=float, default=0.005, help="relative, for the 'within' count")
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()

    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.runtime.discovery import find_pipeline
    from spark_ml_pipeline.runtime.session import get_session
    from spark_ml_pipeline.tune.search import tune

    shutil.rmtree(OUT, ignore_errors=True)
    base = [f"store.root={OUT / 'store'}", "run_date=2026-01-01", f"generate.rows={args.rows}", "generate.months=1",
            f"model.n_estimators={args.rounds}", "model.early_stopping_rounds=20", "model.subsample=1.0", "spark.master=local[2]",
            "spark.driver_memory=6g", "tune.pruner=none", "tune.promote=false", "tune.report=false",
            f"tune.parallelism={args.parallelism}", "spark.extra={spark.scheduler.mode: FAIR}"]

    def search(*overrides):
        config = load_config("taxi_fare", ["local"], [*base, *overrides])
        config = config.model_copy(update={"tune": config.tune.model_copy(update={"space": _space()})})
        return config, tune(spark, config, find_pipeline("taxi_fare").tuner, progress=lambda line: None)

    spark = get_session(load_config("taxi_fare", ["local"], base).spark, load_config("taxi_fare", ["local"], base).compute)
    config, grid = search("tune.sampler=grid", "tune.n_trials=16", "tune.study_name=bench-grid")
    grid_trials = _trials(grid, config)
    grid_best = min(t.value for t in grid_trials)
    best_point = min(grid_trials, key=lambda t: t.value).params
    print(f"grid: {len(grid_trials)} trials, best validation RMSE {grid_best:.4f} at {best_point}", flush=True)

    needed: dict[int, int | None] = {}
    within: dict[int, int | None] = {}
    runs = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        config, result = search("tune.sampler=tpe", f"tune.seed={seed}", f"tune.n_trials={args.max_trials}",
                                f"tune.study_name=bench-tpe-{seed}")
        values = [t.value for t in _trials(result, config)]
        reached = next((i + 1 for i, v in enumerate(values) if v <= grid_best), None)
        needed[seed] = reached
        within[seed] = next((i + 1 for i, v in enumerate(values) if v <= grid_best * (1 + args.tolerance)), None)
        runs[seed] = values
        best6 = min(values[:6])
        print(f"seed {seed}: reached the grid's best after {reached or f'> {len(values)}'} trials; "
              f"best of the first 6: {best6:.4f} ({(best6 / grid_best - 1) * 100:+.2f} % vs grid); "
              f"best of {len(values)}: {min(values):.4f}; within {args.tolerance:.1%} after {within[seed]}", flush=True)
    counted = [n if n is not None else args.max_trials + 1 for n in needed.values()]
    mean = statistics.mean(counted)
    mean_within = statistics.mean(n if n is not None else args.max_trials + 1 for n in within.values())
    print(f"TPE trials to reach the 16-point grid's best: {needed} -> mean {mean:.1f} "
          f"(a miss counts as {args.max_trials + 1}); target <= 6. Within {args.tolerance:.1%}: {within} -> mean "
          f"{mean_within:.1f}", flush=True)
    (OUT / "results.json").write_text(json.dumps({
        "rows": args.rows, "rounds": args.rounds, "grid_best": grid_best, "grid_best_params": best_point,
        "grid_values": [t.value for t in grid_trials], "tpe_values": runs, "trials_needed": needed,
        "mean_trials_needed": mean, "trials_within_tolerance": within, "mean_trials_within": mean_within,
        "tolerance": args.tolerance, "parallelism": args.parallelism}, indent=2))


if __name__ == "__main__":
    main()
