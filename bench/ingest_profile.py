"""Where the taxi ingest's time goes, operator by operator, against a plain Parquet copy: one run, alternating.

    .venv/bin/python bench/ingest_profile.py [--rows 1000000] [--repeats 3]

Spark fuses a stage's operators into one generated method, so they cannot be timed apart inside a job; each
layer below is the one before plus one of the ingest's operators, written to Parquet as the ingest writes, and
the difference between neighbours is that operator's cost:

1. ``copy``      read the raw files, write them unchanged (the plain copy bench/ingest.py compares against)
2. ``typed``     + every file's own layout read, each column ``try_cast`` to its declared type (raw text kept only
                 for a value that does not fit), ``source_file``
3. ``rules``     + the validation rules except the file-month rule, the ``reason`` column
4. ``month``     + the file-month rule (a pickup in the month its file's name holds)
5. ``observed``  + the counts observed while writing (rows, per reason, bad values and nulls per column)
6. ``ingest``    the stage itself: + ``raw_line`` of quarantined rows, the write split into valid/quarantine, the
                 written footers' row counts checked, the atomic commit and the statistics

Generates legacy-schema trips once (bench/out/ingest/, as bench/ingest.py: 2 % dirty rows, one file per month
per million rows; ``--month-names`` names each file after its month, as the TLC's own files are, so that the
file-month rule has work to do). Prints each layer's median wall time and CPU seconds (this process and the JVM:
steadier than wall time on a busy machine) and their ratios to the copy; writes
bench/out/ingest/profile-N.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from process_cpu import tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "ingest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month-names", action="store_true", help="files named yellow_tripdata_YYYY-MM-<n>.parquet")
    args = parser.parse_args()

    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips
    from pipelines.taxi_fare.ingest import ValidationRules, ingest, tagged_trips
    from spark_ml_pipeline.ingest.files import list_input_files
    from spark_ml_pipeline.ingest.quarantine import RAW_PREFIX, observe_counts
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    spark = get_session(SparkConfig(master="local[2]", driver_memory="8g", shuffle_partitions=8), ComputeConfig())
    raw = OUT / f"raw-parquet-{args.rows}"
    if not (raw / "_manifest.json").exists():
        write_trips(spark, GeneratorSpec(rows=args.rows, files_per_month=max(1, args.rows // 1_000_000)), str(raw))
    if args.month_names:
        raw = month_named_copy(raw)
    files = list_input_files(spark, str(raw))

    def without_raw(frame):
        return frame.drop(*[c for c in frame.columns if c.startswith(RAW_PREFIX)])

    def tagged(rules: ValidationRules):
        return tagged_trips(spark, files, "parquet", rules=rules)

    def observed(trips):
        declared = [c[len(RAW_PREFIX):] for c in trips.rows.columns if c.startswith(RAW_PREFIX)]
        return observe_counts(trips.rows, declared)[0]

    no_month = ValidationRules(pickup_in_file_month=False)
    layers = {
        "copy": lambda target: spark.read.parquet(str(raw)).write.parquet(target),
        "typed": lambda target: without_raw(
            tagged(no_month).rows.drop("reason")).write.parquet(target),
        "rules": lambda target: without_raw(tagged(no_month).rows).write.parquet(target),
        "month": lambda target: without_raw(tagged(ValidationRules()).rows).write.parquet(target),
        "observed": lambda target: without_raw(observed(tagged(ValidationRules()))).write.parquet(target),
        "ingest": lambda target: ingest(spark, str(raw), target, "parquet"),
    }
    wall: dict[str, list[float]] = {name: [] for name in layers}
    cpu: dict[str, list[float]] = {name: [] for name in layers}
    names = list(layers)
    for repeat in range(args.repeats + 1):  # the first round warms every layer up and is not counted
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:  # each layer leads in turn
            target = OUT / f"profile-{name}"
            shutil.rmtree(target, ignore_errors=True)
            started, cpu_started = time.perf_counter(), tree_cpu_seconds()
            layers[name](str(target))
            seconds, cpu_seconds = time.perf_counter() - started, tree_cpu_seconds() - cpu_started
            if repeat:
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
            print(f"repeat {repeat} {name:9s} {seconds:6.2f} s wall {cpu_seconds:6.2f} s CPU"
                  f"{' (warm-up)' if not repeat else ''}", flush=True)
            shutil.rmtree(target, ignore_errors=True)

    result = {"rows": args.rows, "repeats": args.repeats, "month_names": args.month_names,
              "load_average": os.getloadavg(), "layers": {}}
    for name in names:
        figures = {}
        for kind, timings in (("wall", wall), ("cpu", cpu)):
            figures[f"{kind}_median_s"] = round(statistics.median(timings[name]), 2)
            figures[f"{kind}_ratio_to_copy"] = round(statistics.median(
                t / c for t, c in zip(timings[name], timings["copy"])), 3)
        result["layers"][name] = figures
        print(f"{name:9s} wall {figures['wall_median_s']:6.2f} s ({figures['wall_ratio_to_copy']:4.2f}x copy)  "
              f"CPU {figures['cpu_median_s']:6.2f} s ({figures['cpu_ratio_to_copy']:4.2f}x copy)", flush=True)
    print(f"load average {os.getloadavg()}", flush=True)
    suffix = "-month-names" if args.month_names else ""
    (OUT / f"profile-{args.rows}{suffix}.json").write_text(json.dumps(result, indent=2))


def month_named_copy(raw: Path) -> Path:
    """The generated files again, each named after its month (``month=2015-01/part-0…`` ->
    ``yellow_tripdata_2015-01-0.parquet``), as the TLC names its monthly files."""
    named = raw.with_name(raw.name + "-month-names")
    if not named.exists():
        named.mkdir()
        for month_dir in sorted(raw.glob("month=*")):
            for index, part in enumerate(sorted(month_dir.glob("part-*.parquet"))):
                shutil.copyfile(part, named / f"yellow_tripdata_{month_dir.name[len('month='):]}-{index}.parquet")
    return named


if __name__ == "__main__":
    main()
