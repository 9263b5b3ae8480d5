"""Taxi ingest wall time vs a plain Parquet read + write of the same rows, in one run; and a job's start-up.

    .venv/bin/python bench/ingest.py [--rows 1000000,10000000] [--repeats 3] [--format parquet|csv]

For each size: generate legacy-schema trips once (bench/out/ingest/, 2% dirty rows), then alternate (a) read
the raw files and write them unchanged as Parquet and (b) the ingest stage (every file's footer or header,
canonical types, validation, quarantine, the counts observed while writing and checked against the written
footers, one atomic commit). Prints medians and the ratio (b)/(a); target <= 1.5. Then times
``python -m jobs.ingest`` on a 1,000-row input end to end and reports its start-up (process start to the
stage's first line); target < 5 s.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "ingest"


def job_start_up(raw: Path) -> dict:
    """Wall time of ``python -m jobs.ingest`` and of its stage (what it prints), on a small input."""
    store = OUT / "job-store"
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "jobs.ingest", "taxi_fare", f"store.root={store}",
                             f"ingest.input={raw}", "ingest.format=parquet", "run_date=2026-01-01",
                             "spark.master=local[2]"], cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    stage = float(re.search(r"ingest: done in ([\d.]+) s", result.stdout).group(1))
    return {"wall_s": round(wall, 2), "stage_s": stage, "start_up_s": round(wall - stage, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args()

    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips
    from pipelines.taxi_fare.ingest import ingest
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    spark = get_session(SparkConfig(master="local[2]", driver_memory="8g", shuffle_partitions=8), ComputeConfig())
    results = {}
    for rows in (int(r) for r in args.rows.split(",")):
        raw = OUT / f"raw-{args.format}-{rows}"
        if not (raw / "_manifest.json").exists():
            write_trips(spark, GeneratorSpec(rows=rows, output_format=args.format,
                                             files_per_month=max(1, rows // 1_000_000)), str(raw))
        plain, ingested = [], []
        sides = [("plain", plain), ("ingest", ingested)]
        for repeat in range(args.repeats + 1):  # the first pair warms both sides up and is not counted
            for kind, timings in sides[repeat % 2:] + sides[:repeat % 2]:  # each side leads in turn
                target = OUT / f"out-{kind}"
                shutil.rmtree(target, ignore_errors=True)
                started = time.perf_counter()
                if kind == "plain":
                    reader = spark.read.option("header", True) if args.format == "csv" else spark.read
                    reader.format(args.format).load(str(raw)).write.parquet(str(target))
                else:
                    stats = ingest(spark, str(raw), str(target), args.format)
                seconds = time.perf_counter() - started
                if repeat:
                    timings.append(seconds)
                print(f"rows {rows:>10,} repeat {repeat} {kind:7s} {seconds:6.2f} s"
                      f"{' (warm-up)' if not repeat else ''}", flush=True)
        assert stats.rows_in == rows, stats
        ratio = statistics.median(i / p for i, p in zip(ingested, plain))
        results[rows] = {"format": args.format, "plain_median_s": round(statistics.median(plain), 2),
                         "ingest_median_s": round(statistics.median(ingested), 2), "ratio_median": round(ratio, 3),
                         "repeats": args.repeats, "rows_quarantined": stats.rows_quarantined}
        print(f"rows {rows:>10,}: ingest/plain ratio (median of {args.repeats}) {ratio:.2f} "
              f"(ingest {statistics.median(ingested):.1f} s, plain read+write {statistics.median(plain):.1f} s)",
              flush=True)
    small = OUT / "raw-parquet-1000"
    if not (small / "_manifest.json").exists():
        write_trips(spark, GeneratorSpec(rows=1000), str(small))
    spark.stop()
    results["job"] = job_start_up(small)
    print(f"python -m jobs.ingest on 1,000 rows: {results['job']}", flush=True)
    (OUT / f"results-{args.format}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
