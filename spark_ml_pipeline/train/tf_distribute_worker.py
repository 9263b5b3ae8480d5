"""One ``tf_distribute`` rank: a process of its own, started by its Spark barrier task.

``python -m spark_ml_pipeline.train.tf_distribute_worker PAYLOAD RESULT``: unpickles ``(train_fn, spec)`` from
PAYLOAD, runs ``train_fn(spec)`` and pickles its report to RESULT (written under a hidden name, then renamed:
a report is whole or absent). A process per rank, not the Spark Python worker itself: TensorFlow's collective
context is made once per process, and a killed rank must not take a reused Spark worker with it.

Spark-free.
"""
from __future__ import annotations

import os
import pickle
import sys


def main(payload: str, result: str) -> int:
    with open(payload, "rb") as handle:
        train_fn, spec = pickle.load(handle)
    report = train_fn(spec)
    partial = os.path.join(os.path.dirname(result), f".partial-{os.path.basename(result)}")
    with open(partial, "wb") as handle:
        pickle.dump(report, handle)
    os.replace(partial, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
