"""Search quality: TPE vs random search at an equal budget, on the taxi_fare feature table.

    .venv/bin/python bench/tune_quality.py [--rows 200000] [--seeds 0,1,2,3,4] [--trials 30] [--rounds 200]

What is compared is the sampler, nothing else. The data is prepared once with the pipeline's own code
(generate -> ingest -> the deterministic hash split -> the feature stages, ``--rows`` generated trips, one
month); the training rows train, the validation rows score (the test rows are not touched). Every trial trains
native XGBoost (``xgboost.train``, ``hist``, 1 thread, fixed seed 0, so a configuration's value is
deterministic, row and column subsampling included) for at most ``--rounds`` rounds with early stopping
(``--patience``) on the validation rows; the trial's value is the best validation RMSE. Each sampler, built by
the search's own ``make_sampler`` (TPE: multivariate, grouped, 5 random start-up trials; random), runs
``--trials`` trials in an in-memory Optuna study per seed over the same space of eight XGBoost parameters
(``SPACE``, sampled by the search's ``search_space.suggest``). Samplers alternate per seed.

The search driver (Spark trials, journal storage, pruning, parallel trials) is not exercised here; its cost is
benchmarked by bench/tune_parallel.py. Reported per sampler: the best validation RMSE after the budget (median,
min-max over seeds), after 10 and 20 trials, and the trials needed to come within ``--tolerance`` of the best
value either sampler found in any run (median over seeds; a run that never gets there is "not reached" and
counts as worse than any number). Results and every trial: bench/out/tune_quality/results.json; a plot of the
best-so-far RMSE by trial (bench/out/tune_quality/best_so_far.png) when matplotlib is installed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pickle
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "tune_quality"
# tune.space format; ranges a practitioner would search, each with a region that hurts.
SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 12},
    "learning_rate": {"type": "logfloat", "low": 0.01, "high": 0.5},
    "min_child_weight": {"type": "logfloat", "low": 0.5, "high": 300.0},
    "subsample": {"type": "float", "low": 0.4, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.3, "high": 1.0},
    "reg_lambda": {"type": "logfloat", "low": 0.001, "high": 100.0},
    "reg_alpha": {"type": "logfloat", "low": 0.001, "high": 100.0},
    "gamma": {"type": "logfloat", "low": 0.001, "high": 10.0},
}
FIXED = {"objective": "reg:squarederror", "tree_method": "hist", "max_bin": 256, "eval_metric": "rmse",
         "nthread": 1, "seed": 0}
# One thread: on the shared 2-core machine, xgboost's OpenMP threads spin-wait for each other while descheduled,
# and nthread=2 was many times slower than nthread=1 (--threads-check measures it); the values are the same.


def prepare(rows: int) -> dict:
    """Generate, ingest, split and featurize with the pipeline's code; the train and validation rows as numpy."""
    from pyspark.ml import PipelineModel

    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare.pipeline import ensure_generated, ingest, taxi_feature_stages
    from pipelines.taxi_fare.train import split_trips
    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.runtime.session import get_session

    config = load_config("taxi_fare", ["local"], [f"store.root={OUT / 'store'}", "run_date=2026-01-01",
                                                  f"generate.rows={rows}", "generate.months=1",
                                                  "spark.master=local[2]", "spark.driver_memory=4g"])
    spark = get_session(config.spark, config.compute)
    manifest = ensure_generated(spark, config)
    stats = ingest(spark, config)
    splits, _ = split_trips(spark, config)
    features = PipelineModel(taxi_feature_stages(config, assemble_into=None))
    columns = feature_columns(config.features.categories)
    data = {"columns": columns, "rows_valid": stats.rows_valid, "noise_floor_rmse": manifest["noise_floor_rmse"],
            "split": config.split.model_dump()}
    for name, frame in (("train", splits.train), ("validation", splits.validation)):
        table = features.transform(frame).select(*columns, LABEL).toPandas()
        data[name] = (table[columns].to_numpy(dtype="float32"), table[LABEL].to_numpy(dtype="float32"))
    spark.stop()
    return data


def make_sampler(name: str, seed: int):
    """The sampler exactly as the search builds it (``spark_ml_pipeline.tune.search.make_sampler``), one trial
    at a time (so TPE has no constant liar); ``tpe_optuna_default`` is Optuna's ``TPESampler(seed=seed)``."""
    import optuna

    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.tune import search

    if name == "tpe_optuna_default":
        return optuna.samplers.TPESampler(seed=seed)
    config = load_config("taxi_fare", ["local"], [f"store.root={OUT / 'store'}", f"tune.sampler={name}",
                                                  f"tune.seed={seed}", "tune.parallelism=1"])
    return search.make_sampler(config)


def first_within(curve: list[float], threshold: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v <= threshold), None)


def median_trials(counts: list[int | None]) -> float | None:
    """Median with "not reached" (None) ranked after every number; None when the median itself is not reached."""
    ranked = sorted((math.inf if c is None else c) for c in counts)
    middle = statistics.median(ranked)
    return None if math.isinf(middle) else middle


def plot(path: Path, curves: dict, threshold: float, floor: float, trials: int) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = list(range(1, trials + 1))
    tops = []
    for name, runs in curves.items():
        by_trial = list(zip(*runs.values()))
        median = [statistics.median(v) for v in by_trial]
        line, = ax.plot(x, median, label=f"{name}: median over {len(runs)} seeds")
        ax.fill_between(x, [min(v) for v in by_trial], [max(v) for v in by_trial], color=line.get_color(),
                        alpha=0.15, label=f"{name}: min-max over seeds")
        tops.append(median[min(4, trials - 1)])
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="within 1 % of the best found")
    bottom = threshold / 1.01 * 0.998
    if floor >= bottom:
        ax.axhline(floor, color="black", linestyle=":", linewidth=1, label="noise floor of the data")
    ax.axvline(5.5, color="grey", linestyle=":", linewidth=1)
    ax.text(5.7, max(tops) * 1.005, "TPE's 5 random start-up trials\n(the same as random's first 5)", fontsize=8,
            va="top")
    ax.set_ylim(bottom, max(tops) * 1.01)
    ax.set_title(f"taxi_fare, 8-parameter XGBoost space: TPE vs random search\n(noise floor of the data "
                 f"{floor:.3f}{'' if floor >= bottom else ', below the plotted range'})", fontsize=10)
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation RMSE so far")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def threads_check(train, repeats: int) -> None:
    """One mid-range configuration trained with 1 and 2 xgboost threads, alternating: seconds and values."""
    params = {"max_depth": 8, "learning_rate": 0.1, "min_child_weight": 5.0, "subsample": 0.8,
              "colsample_bytree": 0.8, "reg_lambda": 1.0, "reg_alpha": 0.01, "gamma": 0.01}
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(repeats):
        for threads in (1, 2):
            result = train({**params, "nthread": threads})
            seconds[threads].append(result["seconds"])
            print(f"threads check: repeat {repeat} nthread {threads}: {result['seconds']:.1f} s, value "
                  f"{result['value']:.6f} ({result['rounds']} rounds; load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"threads check: median nthread 1 {statistics.median(seconds[1]):.1f} s, nthread 2 "
          f"{statistics.median(seconds[2]):.1f} s, ratio (median of paired) "
          f"{statistics.median(b / a for a, b in zip(seconds[1], seconds[2])):.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=200, help="most boosting rounds of a trial")
    parser.add_argument("--patience", type=int, default=20, help="early stopping rounds on the validation rows")
    parser.add_argument("--tolerance", type=float, default=0.01, help="relative, for 'trials to within'")
    parser.add_argument("--reuse-data", action="store_true",
                        help="reuse the feature table an earlier run saved (bench/out/tune_quality/data-<rows>.pkl)")
    parser.add_argument("--threads-check", type=int, default=0, metavar="REPEATS",
                        help="only time one configuration with nthread 1 and 2, alternating, REPEATS times each "
                             "(why FIXED has nthread 1); no search")
    parser.add_argument("--verbose", action="store_true", help="one line per trial")
    parser.add_argument("--samplers", default="tpe,random", help="tpe, random, tpe_optuna_default")
    args = parser.parse_args()

    import optuna
    import xgboost as xgb

    from spark_ml_pipeline.runtime.config_models import ParamSpec
    from spark_ml_pipeline.tune import search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started_all = time.perf_counter()
    load_start = os.getloadavg()
    print(f"load average at start (1, 5, 15 min): {load_start}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    cache = OUT / f"data-{args.rows}.pkl"
    if args.reuse_data and cache.exists():
        data = pickle.loads(cache.read_bytes())
        print(f"data: reusing {cache} (made by an earlier run of this script)", flush=True)
    else:
        shutil.rmtree(OUT / "store", ignore_errors=True)
        data = prepare(args.rows)
        cache.write_bytes(pickle.dumps(data))
    prepared = time.perf_counter()
    (x_train, y_train), (x_validation, y_validation) = data["train"], data["validation"]
    print(f"data: {len(y_train):,} training rows, {len(y_validation):,} validation rows, "
          f"{len(data['columns'])} features; noise floor RMSE {data['noise_floor_rmse']:.4f} "
          f"(prepared in {prepared - started_all:.0f} s)", flush=True)
    dtrain = xgb.QuantileDMatrix(x_train, y_train, max_bin=FIXED["max_bin"])
    dvalidation = xgb.QuantileDMatrix(x_validation, y_validation, ref=dtrain)
    space = {name: ParamSpec(**spec) for name, spec in SPACE.items()}

    def train(params: dict) -> dict:
        began = time.perf_counter()
        booster = xgb.train({**FIXED, **params}, dtrain, num_boost_round=args.rounds,
                            evals=[(dvalidation, "validation")], early_stopping_rounds=args.patience,
                            verbose_eval=False)
        return {"value": float(booster.best_score), "best_rounds": booster.best_iteration + 1,
                "rounds": booster.num_boosted_rounds(), "seconds": time.perf_counter() - began}

    if args.threads_check:
        threads_check(train, args.threads_check)
        return
    samplers = args.samplers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, dict[int, list[dict]]] = {name: {} for name in samplers}
    for seed in seeds:
        for name in (samplers if seed % 2 == 0 else samplers[::-1]):  # alternate which sampler goes first
            study = optuna.create_study(direction="minimize", sampler=make_sampler(name, seed))
            trials: list[dict] = []

            def objective(trial) -> float:
                params = search_space.suggest(trial, space)
                trials.append({"params": params, **train(params)})
                if args.verbose:
                    t = trials[-1]
                    print(f"  {name} seed {seed} trial {len(trials)}: {t['value']:.4f} ({t['best_rounds']} of "
                          f"{t['rounds']} rounds, {t['seconds']:.1f} s) {params}", flush=True)
                return trials[-1]["value"]

            began = time.perf_counter()
            study.optimize(objective, n_trials=args.trials)
            runs[name][seed] = trials
            print(f"{name:>18s} seed {seed}: best {min(t['value'] for t in trials):.4f} after {args.trials} trials "
                  f"(best of the first 10: {min(t['value'] for t in trials[:10]):.4f}; "
                  f"{time.perf_counter() - began:.0f} s)", flush=True)

    # Determinism: configurations trained again (the last of the first run, the best of all) give the same value.
    overall = min(((name, seed, t) for name, by_seed in runs.items() for seed, trials in by_seed.items()
                   for t in trials), key=lambda item: item[2]["value"])
    deterministic = all(train(t["params"])["value"] == t["value"]
                        for t in (runs[samplers[0]][seeds[0]][-1], overall[2]))
    # TPE's start-up trials come from RandomSampler(seed): with equal seeds both samplers start alike.
    startup = min(5, args.trials)
    shared_startup = {seed: [t["params"] for t in runs[samplers[0]][seed][:startup]]
                      == [t["params"] for t in runs[samplers[-1]][seed][:startup]] for seed in seeds}

    curves = {name: {seed: [min(t["value"] for t in trials[:n]) for n in range(1, args.trials + 1)]
                     for seed, trials in by_seed.items()} for name, by_seed in runs.items()}
    best = min(curve[-1] for by_seed in curves.values() for curve in by_seed.values())
    threshold = best * (1 + args.tolerance)
    summary = {}
    for name, by_seed in curves.items():
        final = [curve[-1] for curve in by_seed.values()]
        within = {seed: first_within(curve, threshold) for seed, curve in by_seed.items()}
        summary[name] = {
            "best_after_budget": dict(zip(by_seed, final)),
            "best_after_budget_median": statistics.median(final), "best_after_budget_min": min(final),
            "best_after_budget_max": max(final),
            "best_after_10_median": statistics.median(c[min(9, args.trials - 1)] for c in by_seed.values()),
            "best_after_20_median": statistics.median(c[min(19, args.trials - 1)] for c in by_seed.values()),
            "trials_to_within": within, "trials_to_within_median": median_trials(list(within.values())),
            "runs_reaching_within": sum(n is not None for n in within.values()),
            "trial_seconds_median": statistics.median(t["seconds"] for trials in runs[name].values()
                                                      for t in trials)}
    comparison = None
    if "tpe" in curves and "random" in curves:
        pairs = [(t[-1], r[-1]) for t in curves["tpe"].values() for r in curves["random"].values()]
        same_seed = [(curves["tpe"][seed][-1], curves["random"][seed][-1]) for seed in seeds]
        comparison = {"pairs": len(pairs), "tpe_lower": sum(t < r for t, r in pairs),
                      "ties": sum(t == r for t, r in pairs), "same_seed_tpe_lower": sum(t < r for t, r in same_seed),
                      "same_seed_ties": sum(t == r for t, r in same_seed)}
    for name, s in summary.items():
        reached = s["trials_to_within_median"]
        print(f"{name:>18s}: best after {args.trials} trials median {s['best_after_budget_median']:.4f} "
              f"(min {s['best_after_budget_min']:.4f}, max {s['best_after_budget_max']:.4f}; per seed "
              f"{', '.join(f'{v:.4f}' for v in s['best_after_budget'].values())}); after 10 "
              f"{s['best_after_10_median']:.4f}, after 20 {s['best_after_20_median']:.4f}; trials to within "
              f"{args.tolerance:.0%} of {best:.4f}: "
              f"{', '.join(str(n) if n else 'not reached' for n in s['trials_to_within'].values())} -> median "
              f"{reached if reached is not None else 'not reached'} ({s['runs_reaching_within']} of {len(seeds)} "
              f"runs reach it); median trial {s['trial_seconds_median']:.1f} s", flush=True)
    if comparison:
        print(f"TPE's best after {args.trials} trials is lower than random's in {comparison['tpe_lower']} of "
              f"{comparison['pairs']} (seed x seed) pairs ({comparison['ties']} ties), in "
              f"{comparison['same_seed_tpe_lower']} of {len(seeds)} same-seed pairs ({comparison['same_seed_ties']} "
              f"ties); first {startup} trials identical per seed: {shared_startup}", flush=True)
    print(f"best configuration: {overall[0]} seed {overall[1]}: {overall[2]['value']:.4f} with {overall[2]['params']} "
          f"({overall[2]['best_rounds']} rounds); noise floor {data['noise_floor_rmse']:.4f}; deterministic "
          f"objective (same configuration trained twice, same value): {deterministic}", flush=True)
    plotted = plot(OUT / "best_so_far.png", curves, threshold, data["noise_floor_rmse"], args.trials)
    load_end = os.getloadavg()
    seconds = time.perf_counter() - started_all
    print(f"load average at end (1, 5, 15 min): {load_end}; wall {seconds:.0f} s (data {prepared - started_all:.0f} s)"
          + (f"; plot {OUT / 'best_so_far.png'}" if plotted else "; matplotlib not installed: no plot"), flush=True)
    (OUT / "results.json").write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "rows": args.rows, "rows_train": len(y_train),
        "rows_validation": len(y_validation), "features": data["columns"], "split": data["split"],
        "noise_floor_rmse": data["noise_floor_rmse"], "space": SPACE, "fixed": FIXED, "rounds": args.rounds,
        "patience": args.patience, "trials": args.trials, "seeds": seeds, "tolerance": args.tolerance,
        "best_found": best, "threshold": threshold, "deterministic": deterministic,
        "shared_startup_trials": shared_startup, "summary": summary,
        "tpe_vs_random": comparison, "curves": curves, "runs": runs, "load_average_start": load_start,
        "load_average_end": load_end, "wall_seconds": seconds, "data_seconds": prepared - started_all},
        indent=2, default=str))


if __name__ == "__main__":
    main()
