"""What evaluating the training set every round costs native ``xgboost.train``, on the taxi feature table.

    .venv/bin/python bench/xgboost_train_eval.py [--rows 1000000] [--rounds 100] [--repeats 3]

xgboost.spark's fit (and so the pipeline's, in either layout) evaluates the training rows every round for the
training curve (``training_summary``, the report's learning curve, the search's train curve); bench/
train_vs_native.py's native side does not. Reads the feature table bench/train_vs_native.py writes, builds one
``QuantileDMatrix`` and boosts alternately without and with ``evals=[(training, "training")]``, the pipeline's
booster parameters and threads; a warm-up round first, then medians.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TABLES = ROOT / "bench" / "out" / "train_vs_native"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import xgboost as xgb

    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare.config import TaxiFareConfig

    table = TABLES / f"features-{args.rows}"
    if not table.exists():
        sys.exit(f"{table}: run bench/train_vs_native.py --rows {args.rows} first (it writes the feature table)")
    model = TaxiFareConfig().model
    frame = pq.read_table(table).to_pandas()
    columns = feature_columns(TaxiFareConfig().features.categories)
    matrix = xgb.QuantileDMatrix(frame[columns].astype("float32"), label=frame[LABEL], nthread=2,
                                 max_bin=model.max_bin)
    params = {"tree_method": "hist", "max_depth": model.max_depth, "eta": model.learning_rate,
              "min_child_weight": model.min_child_weight, "max_bin": model.max_bin, "lambda": model.reg_lambda,
              "objective": "reg:squarederror", "nthread": 2, "seed": model.seed}
    timings: dict[str, list[float]] = {"without": [], "with training eval": []}
    for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
        for side, timing in timings.items():
            evals = [(matrix, "training")] if side != "without" else []
            started = time.perf_counter()
            xgb.train(params, matrix, num_boost_round=args.rounds, evals=evals, evals_result={} if evals else None,
                      verbose_eval=False)
            if repeat:
                timing.append(time.perf_counter() - started)
    medians = {side: round(statistics.median(t), 2) for side, t in timings.items()}
    print(f"{args.rows:,} rows, {args.rounds} rounds: boosting {medians} s; the training eval adds "
          f"{medians['with training eval'] - medians['without']:.2f} s "
          f"({medians['with training eval'] / medians['without'] - 1:.0%})", flush=True)


if __name__ == "__main__":
    main()
