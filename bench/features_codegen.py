"""The taxi features behind the split's filter, with and without HotSpot compiling huge methods, in one run.

    .venv/bin/python bench/features_codegen.py [--rows 1000000] [--repeats 3]

Whole-stage code generation fuses the scan, the split's filter and every feature expression of the fit's input
into one Java method. Over 8,000 bytes of bytecode HotSpot leaves a method interpreted unless the JVM runs with
``-XX:-DontCompileHugeMethods`` (which spark_conf, scripts/submit.sh and the Airflow DAG now set). Each side is
a fresh JVM (the option is fixed at JVM start): the pipeline's session with the option on, and the same session
with the option left out. Sides alternate; each process computes the training rows' features (split flag,
feature stages, as the fit reads them) into Spark's ``noop`` sink, one untimed warm-up then ``--repeats`` timed.
Uses the ingested trips of bench/train_vs_native.py (run it first for the same ``--rows``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
INGESTED = ROOT / "bench" / "out" / "train_vs_native"


def child(rows: int, repeats: int, compile_huge: bool) -> None:
    from pyspark.ml import PipelineModel

    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare import tlc
    from pipelines.taxi_fare.config import TaxiFareConfig
    from pipelines.taxi_fare.pipeline import taxi_feature_stages
    from spark_ml_pipeline.ingest.quarantine import read_valid
    from spark_ml_pipeline.runtime import session
    from spark_ml_pipeline.runtime.config_models import SplitConfig
    from spark_ml_pipeline.train.splits import VALIDATION_INDICATOR, split_rows

    if not compile_huge:
        session.COMPILE_HUGE_METHODS = ""  # the JVM's default
    config = TaxiFareConfig(spark={"master": "local[2]", "driver_memory": "8g"})
    spark = session.get_session(config.spark, config.compute)
    trips = read_valid(spark, str(INGESTED / f"ingest-{rows}"))
    flagged = split_rows(trips, SplitConfig(), key_columns=tlc.CANONICAL_ORDER).train_with_indicator()
    features = (PipelineModel(taxi_feature_stages(config, assemble_into=None)).transform(flagged)
                .select(*feature_columns(config.features.categories), LABEL, VALIDATION_INDICATOR))
    seconds = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        features.write.format("noop").mode("overwrite").save()
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"compile_huge": compile_huge, "seconds": seconds[1:]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.repeats, args.child == "on")
        return
    if not (INGESTED / f"ingest-{args.rows}" / "_ingest.json").exists():
        sys.exit(f"no ingested trips for {args.rows} rows: run bench/train_vs_native.py --rows {args.rows} first")
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for side in ("off", "on", "on", "off"):  # each side first once
        output = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--repeats", str(args.repeats),
                                 "--child", side], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        seconds = json.loads(output.strip().splitlines()[-1])["seconds"]
        timings[side] += seconds
        print(f"{side:3s} {' '.join(f'{s:.2f}' for s in seconds)}", flush=True)
    result = {"rows": args.rows, "median_s_option_on": round(statistics.median(timings["on"]), 2),
              "median_s_option_off": round(statistics.median(timings["off"]), 2),
              "load_average": os.getloadavg()}
    result["off_over_on"] = round(result["median_s_option_off"] / result["median_s_option_on"], 2)
    print(result)
    (ROOT / "bench" / "out" / "features_codegen.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
