"""A new local store's first MLflow run: its database copied from the empty schema vs built by MLflow's migrations.

    .venv/bin/python bench/local_store.py [--repeats 5]

Each repeat, alternating, in a fresh interpreter each (mlflow imported before the clock starts): (a) the
product's path, ``Store(...).run(...)`` on a new store root (the database copied from the empty schema,
spark_ml_pipeline/store/local_database.py); (b) the same with the store's ``mlflow.db`` built by MLflow itself
(``SqlAlchemyStore`` on the empty file: every migration, as before the copy). Prints medians of the seconds from
opening the store to its first run's end.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIRST_RUN = """
import json, sys, time
from pathlib import Path
import mlflow
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from spark_ml_pipeline.runtime.config_models import StoreConfig
from spark_ml_pipeline.store.tracking import Store
root, side = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
if side == "migrations":  # MLflow builds the database: what every new store did before the copy
    root.mkdir(parents=True)
    SqlAlchemyStore(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()).engine.dispose()
with Store(StoreConfig(root=str(root))).run("bench", "first") as run:
    mlflow.log_metric("x", 1.0)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sides = ("copied schema", "migrations")
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for side in sides if repeat % 2 == 0 else reversed(sides):
                root = Path(scratch) / f"{side.split()[0]}-{repeat}"
                done = subprocess.run([sys.executable, "-c", FIRST_RUN, str(root), side.split()[0]], cwd=ROOT,
                                      capture_output=True, text=True, check=True)
                seconds[side].append(json.loads(done.stdout.splitlines()[-1])["seconds"])
    for side in sides:
        print(f"{side:14s} median {statistics.median(seconds[side]):.2f} s  "
              f"({', '.join(f'{s:.2f}' for s in seconds[side])})")


if __name__ == "__main__":
    main()
