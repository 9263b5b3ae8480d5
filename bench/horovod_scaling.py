"""Horovod data-parallel scaling on this machine: 2 ranks x 1 thread vs 1 rank x 1 thread.

    .venv/bin/python bench/horovod_scaling.py [--rows 20000] [--epochs 3] [--batch-size 128]
        [--warmup-epochs 0] [--lr-schedule constant] [--repeats 1]

Trains the Fashion-MNIST CNN on the same rows with each setting (same per-rank batch, learning rate
scaled by ranks, optionally warmed up to it), measures training throughput (samples/s over epochs after
the first, which includes graph tracing), efficiency = T2 / (2 x T1), and the final test accuracy of both
(target: within 0.5 points). With --repeats the settings alternate (1, 2, 1, 2, ...) and medians are used.
"""
from __future__ import annotations

import argparse
import statistics
import time

from dl_runner import OUT, append, session


def fit(spark, ranks: int, rows: int, epochs: int, extra: list[str]) -> dict:
    from pipelines.fashion_mnist.pipeline import CLASSES, ingest, prepare
    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.train import deep_learning as dl
    from spark_ml_pipeline.train.metrics import classification_metrics

    # A fresh work directory per invocation: a finished fit in the store would be reused, not re-timed.
    config = load_config("fashion_mnist", ["local"], [
        f"store.root={OUT / 'store'}", "model=cnn", f"training.seed={int(time.time())}", f"training.num_proc={ranks}", "training.threads_per_rank=1",
        f"training.epochs={epochs}", "training.early_stopping_patience=0", f"data.train_limit={rows}",
        f"run_date=2026-11-{20 + ranks}", *extra])
    ingest(spark, config)
    prepared = prepare(spark, config)
    estimator = dl.estimator_for(config, prepared)
    model = estimator.fit(prepared.train)
    accuracy = classification_metrics(model.transform(prepared.tests["test"]), classes=CLASSES)["accuracy"]
    rank0 = model.summary.rank_results[0]
    samples_per_epoch = model.summary.rows // \
        config.training.batch_size // ranks * config.training.batch_size * ranks
    seconds = rank0["epoch_seconds"][1:] or rank0["epoch_seconds"]
    return {"ranks": ranks, "throughput": samples_per_epoch / statistics.median(seconds),
            "epoch_seconds": rank0["epoch_seconds"], "test_accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--lr-schedule", default="constant")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    extra = [f"training.batch_size={args.batch_size}", f"training.warmup_epochs={args.warmup_epochs}",
             f"training.lr_schedule={args.lr_schedule}"]
    spark = session()
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for ranks in (1, 2):
            runs[ranks].append(fit(spark, ranks, args.rows, args.epochs, extra))
            print(f"repeat {repeat} {ranks} rank(s): {runs[ranks][-1]['throughput']:.0f} samples/s, "
                  f"test accuracy {runs[ranks][-1]['test_accuracy']:.4f}", flush=True)
    one, two = ({"ranks": k, "throughput": statistics.median(r["throughput"] for r in runs[k]),
                 "test_accuracy": statistics.median(r["test_accuracy"] for r in runs[k]), "runs": runs[k]}
                for k in (1, 2))
    efficiency = statistics.median(b["throughput"] / (2 * a["throughput"]) for a, b in zip(runs[1], runs[2]))
    record = {"rows": args.rows, "epochs": args.epochs, "settings": extra, "one_rank": one, "two_ranks": two,
              "efficiency": efficiency, "accuracy_gap_points": 100 * (two["test_accuracy"] - one["test_accuracy"])}
    append(OUT / "horovod_scaling.jsonl", record)
    print(f"1 rank x 1 thread: {one['throughput']:.0f} samples/s, test accuracy {one['test_accuracy']:.4f}")
    print(f"2 ranks x 1 thread: {two['throughput']:.0f} samples/s, test accuracy {two['test_accuracy']:.4f}")
    print(f"efficiency T2/(2 T1) = {efficiency:.2f} (target >= 0.85); accuracy 2-rank minus 1-rank "
          f"{record['accuracy_gap_points']:+.2f} points (target within 0.5)")


if __name__ == "__main__":
    main()
