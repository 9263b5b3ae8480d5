"""Horovod data-parallel scaling on this machine: 2 ranks x 1 thread vs 1 rank x 1 thread.

    .venv/bin/python bench/horovod_scaling.py [--rows 20000] [--epochs 3]

Trains the Fashion-MNIST CNN on the same rows with each setting (same per-rank batch, learning rate
scaled by ranks), measures training throughput (samples/s over epochs after the first, which includes
graph tracing), efficiency = T2 / (2 x T1), and the final test accuracy of both (target: within 0.5 points).
"""
from __future__ import annotations

import argparse
import statistics
import time

from dl_runner import OUT, append, session


def fit(spark, ranks: int, rows: int, epochs: int) -> dict:
    from pipelines import deep_learning as dl
    from pipelines.config import load_config
    from pipelines.fashion_mnist import CLASSES, ingest, prepare

    # A fresh work directory per invocation: a finished fit in the store would be reused, not re-timed.
    config = load_config("fashion_mnist", ["local"], [
        f"store.root={OUT / 'store'}", "model=cnn", f"training.seed={int(time.time())}", f"training.num_proc={ranks}", "training.threads_per_rank=1",
        f"training.epochs={epochs}", "training.early_stopping_patience=0", f"data.train_limit={rows}",
        f"run_date=2026-11-{20 + ranks}"])
    ingest(spark, config)
    prepared = prepare(spark, config)
    estimator = dl.estimator_for(config, prepared)
    model = estimator.fit(prepared.train)
    accuracy = dl.classification_metrics(model.transform(prepared.tests["test"]), classes=CLASSES)["accuracy"]
    rank0 = sorted(estimator.rank_results, key=lambda r: r["rank"])[0]
    samples_per_epoch = sum(r["rows"] for r in estimator.rank_results) // \
        config.training.batch_size // ranks * config.training.batch_size * ranks
    seconds = rank0["epoch_seconds"][1:] or rank0["epoch_seconds"]
    return {"ranks": ranks, "throughput": samples_per_epoch / statistics.median(seconds),
            "epoch_seconds": rank0["epoch_seconds"], "test_accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    spark = session()
    one = fit(spark, 1, args.rows, args.epochs)
    two = fit(spark, 2, args.rows, args.epochs)
    efficiency = two["throughput"] / (2 * one["throughput"])
    record = {"rows": args.rows, "epochs": args.epochs, "one_rank": one, "two_ranks": two, "efficiency": efficiency,
              "accuracy_gap_points": 100 * (two["test_accuracy"] - one["test_accuracy"])}
    append(OUT / "horovod_scaling.jsonl", record)
    print(f"1 rank x 1 thread: {one['throughput']:.0f} samples/s, test accuracy {one['test_accuracy']:.4f}")
    print(f"2 ranks x 1 thread: {two['throughput']:.0f} samples/s, test accuracy {two['test_accuracy']:.4f}")
    print(f"efficiency T2/(2 T1) = {efficiency:.2f} (target >= 0.85); accuracy 2-rank minus 1-rank "
          f"{record['accuracy_gap_points']:+.2f} points (target within 0.5)")


if __name__ == "__main__":
    main()
