"""Data-parallel Keras scaling on this machine, on both backends: 1 rank x 1 thread (Horovod) vs 2 ranks x 1 thread
on Horovod and on tf_distribute (TensorFlow's MultiWorkerMirroredStrategy in Spark barrier tasks).

    .venv/bin/python bench/keras_scaling.py [--rows 20000] [--epochs 3] [--batch-size 128]
        [--warmup-epochs 0] [--lr-schedule constant] [--repeats 1] [--backends horovod,tf_distribute]

Trains the Fashion-MNIST CNN on the same rows with each setting (same per-rank batch, learning rate
scaled by ranks, optionally warmed up to it), measures training throughput (samples/s over epochs after
the first, which includes graph tracing) and epoch time, efficiency = T2 / (2 x T1) per backend, and the final
test accuracy of each (target: within 0.5 points of one rank). With --repeats the settings alternate
(1 rank, then 2 ranks on each backend, and again) and medians are used.
"""
from __future__ import annotations

import argparse
import statistics
import time

from dl_runner import OUT, append, session


def fit(spark, ranks: int, backend: str, rows: int, epochs: int, extra: list[str]) -> dict:
    from pipelines.fashion_mnist.pipeline import CLASSES, ingest, prepare
    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.train import deep_learning as dl
    from spark_ml_pipeline.train.metrics import classification_metrics

    # A fresh work directory per invocation: a finished fit in the store would be reused, not re-timed.
    config = load_config("fashion_mnist", ["local"], [
        f"store.root={OUT / 'store'}", "model=cnn", f"training.seed={int(time.time())}",
        f"training.num_proc={ranks}", f"training.backend={backend}", "training.threads_per_rank=1",
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
    return {"ranks": ranks, "backend": backend, "throughput": samples_per_epoch / statistics.median(seconds),
            "epoch_seconds": rank0["epoch_seconds"], "test_accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--lr-schedule", default="constant")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default="horovod,tf_distribute", help="2-rank backends, comma-separated")
    args = parser.parse_args()
    extra = [f"training.batch_size={args.batch_size}", f"training.warmup_epochs={args.warmup_epochs}",
             f"training.lr_schedule={args.lr_schedule}"]
    settings = [(1, "horovod"), *((2, backend) for backend in args.backends.split(","))]
    spark = session()
    runs: dict[tuple[int, str], list[dict]] = {setting: [] for setting in settings}
    for repeat in range(args.repeats):
        for ranks, backend in settings:
            run = fit(spark, ranks, backend, args.rows, args.epochs, extra)
            runs[ranks, backend].append(run)
            print(f"repeat {repeat} {ranks} rank(s) {backend}: {run['throughput']:.0f} samples/s, epoch seconds "
                  f"{', '.join(f'{s:.1f}' for s in run['epoch_seconds'])}, test accuracy {run['test_accuracy']:.4f}",
                  flush=True)
    one = runs[1, "horovod"]
    summary = {}
    for (ranks, backend), measured in runs.items():
        summary[f"{ranks}-{backend}"] = {
            "ranks": ranks, "backend": backend, "runs": measured,
            "throughput": statistics.median(r["throughput"] for r in measured),
            "epoch_seconds": statistics.median(s for r in measured for s in (r["epoch_seconds"][1:]
                                                                              or r["epoch_seconds"])),
            "test_accuracy": statistics.median(r["test_accuracy"] for r in measured),
            "efficiency": statistics.median(b["throughput"] / (ranks * a["throughput"])
                                            for a, b in zip(one, measured)),
            "accuracy_gap_points": 100 * (statistics.median(r["test_accuracy"] for r in measured)
                                          - statistics.median(r["test_accuracy"] for r in one))}
    append(OUT / "keras_scaling.jsonl", {"rows": args.rows, "epochs": args.epochs, "settings": extra,
                                         "results": summary})
    for name, result in summary.items():
        print(f"{name}: {result['throughput']:.0f} samples/s, {result['epoch_seconds']:.1f} s per epoch, "
              f"efficiency T{result['ranks']}/({result['ranks']} T1) {result['efficiency']:.2f}, test accuracy "
              f"{result['test_accuracy']:.4f} ({result['accuracy_gap_points']:+.2f} points vs 1 rank)")


if __name__ == "__main__":
    main()
