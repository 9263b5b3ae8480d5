"""Taxi featurize wall time vs a plain Parquet read + write of the same rows, in one run.

    .venv/bin/python bench/featurize.py [--rows 1000000,10000000] [--repeats 3]

For each size: generate legacy-schema trips once (bench/out/featurize/), ingest them to the canonical
schema, then alternate (a) read + write the canonical rows unchanged and (b) read + all feature stages
+ write the feature table. Prints medians and the ratio (b)/(a); target <= 1.3.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "featurize"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.ml import PipelineModel

    from features.taxi import LABEL, feature_columns, feature_stages
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips
    from pipelines.taxi_fare.ingest import ingest
    from pipelines.taxi_fare.zones import airport_coordinates, centroid_arrays
    from spark_ml_pipeline.ingest.quarantine import read_valid
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    spark = get_session(SparkConfig(master="local[2]", driver_memory="8g", shuffle_partitions=8), ComputeConfig())
    results = {}
    for rows in (int(r) for r in args.rows.split(",")):
        raw, canonical = OUT / f"raw-{rows}", OUT / f"ingest-{rows}"
        if not (canonical / "_ingest.json").exists():
            write_trips(spark, GeneratorSpec(rows=rows, files_per_month=max(1, rows // 1_000_000)), str(raw))
            ingest(spark, str(raw), str(canonical), "parquet")
        model = PipelineModel(feature_stages(centroid_arrays(), airport_coordinates(), assemble_into=None))
        columns = [*feature_columns(), LABEL]
        plain, featurized = [], []
        for repeat in range(args.repeats):
            for kind, timings in (("plain", plain), ("features", featurized)):
                target = OUT / f"out-{kind}"
                shutil.rmtree(target, ignore_errors=True)
                started = time.perf_counter()
                frame = read_valid(spark, str(canonical))
                if kind == "features":
                    frame = model.transform(frame).select(*columns)
                frame.write.parquet(str(target))
                timings.append(time.perf_counter() - started)
                print(f"rows {rows:>10,} repeat {repeat} {kind:8s} {timings[-1]:6.2f} s", flush=True)
        ratio = statistics.median(f / p for f, p in zip(featurized, plain))
        results[rows] = {"plain_median_s": statistics.median(plain), "featurize_median_s": statistics.median(featurized),
                         "ratio_median": ratio, "repeats": args.repeats}
        print(f"rows {rows:>10,}: featurize/plain ratio (median of {args.repeats}) {ratio:.2f} "
              f"(featurize {statistics.median(featurized):.1f} s, plain read+write {statistics.median(plain):.1f} s)",
              flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
