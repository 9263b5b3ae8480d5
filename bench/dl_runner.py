"""Run a named deep-learning pipeline in-process from a benchmark and return its figures."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def session():
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    return get_session(SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="6g"), ComputeConfig())


def run_pipeline(spark, name: str, overrides: list[str], store: Path | None = None) -> dict:
    from spark_ml_pipeline.runtime.config import load_pipeline

    store = store or OUT / "store"
    config, definition = load_pipeline(name, ["local"], [f"store.root={store}", *overrides])
    started = time.time()
    result = definition.stages["run"](spark, config)
    return {"pipeline": name, "overrides": overrides, "model": config.model.kind,
            "seconds": round(time.time() - started, 1), "metrics": result.metrics, "rows": result.rows,
            "run_id": result.run_id, "model_uri": result.model_uri}


def append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record, default=str) + "\n")
