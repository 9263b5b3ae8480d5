"""Taxi featurize wall time vs a plain Parquet read + write of the same input columns, in one run.

    .venv/bin/python bench/featurize.py [--rows 1000000,10000000] [--repeats 5] [--breakdown-rows 10000000]
                                        [--breakdown-repeats 3]

For each size: generate legacy-schema trips once (bench/out/featurize/), ingest them with the ingest stage,
then alternate, in paired repeats:

(a) plain: read the ingested valid trips, select exactly the columns the feature stages read (the columns of
    the featurize side's own Parquet scan, taken from its physical plan, so nothing else: no ``source_file``,
    no ``dropoff_datetime``/``payment_type``) and write them unchanged as Parquet;
(b) featurize: read the same trips, apply every feature stage (zone coordinates, time parts, haversine,
    airport flags, hashed categories) and write the feature table (feature columns + label), as the
    pipeline's featurize stage does.

Both sides therefore scan the same column chunks of the same files (checked: the two physical plans' read
schemas must be equal); they differ only in what they compute and write. The order alternates per repeat
(plain first, then featurize first, ...), after one untimed warm-up pair. Prints what each side reads and writes
(columns, bytes), the medians and the median of the per-repeat ratios (b)/(a) of wall time (target <= 1.3), and
the same for the CPU seconds the JVM used (local mode: driver and executor threads in one process), which a
shared machine inflates less than wall time. Results: bench/out/featurize/results.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "featurize"


def scan_schema(frame) -> list[tuple[str, str]]:
    """(column, type) of the Parquet scan in the frame's physical plan: what Spark actually reads."""
    leaves = frame._jdf.queryExecution().executedPlan().collectLeaves()
    scans = [leaves.apply(i) for i in range(leaves.length())]
    if len(scans) != 1 or not hasattr(scans[0], "requiredSchema"):
        raise RuntimeError(f"expected one file scan in the plan, found {[s.nodeName() for s in scans]}")
    return [(f["name"], f["type"]) for f in json.loads(scans[0].requiredSchema().json())["fields"]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parquet_bytes(directory: Path) -> tuple[int, int]:
    """Total bytes and number of the Parquet part files under ``directory``."""
    files = [p for p in directory.rglob("*.parquet")]
    return sum(p.stat().st_size for p in files), len(files)


def column_chunk_bytes(directory: Path, columns: list[str]) -> int:
    """Compressed bytes of these columns' chunks in the Parquet files under ``directory`` (what a scan of
    only these columns reads from disk, footers aside)."""
    import pyarrow.parquet as pq

    wanted, total = set(columns), 0
    for path in directory.rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.path_in_schema in wanted:
                    total += chunk.total_compressed_size
    return total


def breakdown(rows: int, run, sides: list[str], repeats: int) -> dict:
    """Each side once per repeat (the order rotating), wall and JVM CPU seconds; CPU added over plain."""
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in sides[repeat % len(sides):] + sides[:repeat % len(sides)]:
            seconds, used = run(side)
            wall[side].append(seconds)
            cpu[side].append(used)
            print(f"rows {rows:>10,} breakdown repeat {repeat} {side:26s} {seconds:6.2f} s wall, {used:6.2f} s JVM "
                  f"CPU (load {os.getloadavg()[0]:.1f})", flush=True)
    result = {}
    for side in sides:
        added = statistics.median(c - p for c, p in zip(cpu[side], cpu["plain"]))
        result[side] = {"wall_s": wall[side], "cpu_s": cpu[side], "wall_median_s": statistics.median(wall[side]),
                        "cpu_median_s": statistics.median(cpu[side]), "cpu_added_over_plain_median_s": added}
        print(f"rows {rows:>10,} breakdown {side:26s}: wall median {statistics.median(wall[side]):6.2f} s, JVM CPU "
              f"median {statistics.median(cpu[side]):6.2f} s, CPU over plain (median of paired) {added:+6.2f} s",
              flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown-rows", type=int, default=10_000_000,
                        help="at this size (if among --rows), also time each feature stage alone and the previous "
                             "baseline (all valid columns, source_file included); 0: skip")
    parser.add_argument("--breakdown-repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.ml import PipelineModel

    from features.taxi import LABEL, feature_columns, feature_stages
    from pipelines.taxi_fare.generator import GeneratorSpec, write_trips
    from pipelines.taxi_fare.ingest import ingest
    from pipelines.taxi_fare.zones import airport_coordinates, centroid_arrays
    from spark_ml_pipeline.ingest.quarantine import VALID, read_valid
    from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
    from spark_ml_pipeline.runtime.session import get_session

    load_start = os.getloadavg()
    print(f"load average at start (1, 5, 15 min): {load_start}", flush=True)
    spark = get_session(SparkConfig(master="local[2]", driver_memory="8g", shuffle_partitions=8), ComputeConfig())
    jvm = spark._jvm.java.lang.ProcessHandle.current().pid()  # local mode: driver and executor threads
    model = PipelineModel(feature_stages(centroid_arrays(), airport_coordinates(), assemble_into=None))
    written_by_features = [*feature_columns(), LABEL]
    stages = {f"stage:{type(stage).__name__}": stage for stage in model.stages}
    results: dict = {"date": datetime.date.today().isoformat(), "master": "local[2]", "driver_memory": "8g",
                     "repeats": args.repeats, "load_average_start": load_start, "sizes": {}}
    warmed_up = False
    for rows in (int(r) for r in args.rows.split(",")):
        raw, canonical = OUT / f"raw-{rows}", OUT / f"ingest-{rows}"
        if not (canonical / "_ingest.json").exists():
            started = time.perf_counter()
            write_trips(spark, GeneratorSpec(rows=rows, files_per_month=max(1, rows // 1_000_000)), str(raw))
            generated = time.perf_counter()
            stats = ingest(spark, str(raw), str(canonical), "parquet")
            print(f"rows {rows:>10,}: generated in {generated - started:.0f} s, ingested in "
                  f"{time.perf_counter() - generated:.0f} s ({stats.rows_valid:,} valid rows)", flush=True)

        def frame(kind: str):
            trips = read_valid(spark, str(canonical))
            if kind == "featurize":
                return model.transform(trips).select(*written_by_features)
            if kind == "plain_all_columns":
                return trips
            if kind.startswith("stage:"):  # one stage alone: the plain columns (as it leaves them) + its new ones
                out = stages[kind].transform(trips)
                return out.select(*consumed, *(c for c in out.columns if c not in trips.columns))
            return trips.select(*consumed)

        read_by_features = scan_schema(frame("featurize"))
        consumed = [name for name, _ in read_by_features]
        read_by_plain = scan_schema(frame("plain"))
        if read_by_plain != read_by_features:
            raise RuntimeError(f"the two sides read different columns: {read_by_plain} vs {read_by_features}")
        valid_dir = canonical / VALID
        valid_bytes, valid_files = parquet_bytes(valid_dir)
        read_bytes = column_chunk_bytes(valid_dir, consumed)
        all_columns = read_valid(spark, str(canonical)).columns
        print(f"rows {rows:>10,}: both sides read {len(consumed)} of the {len(all_columns)} valid-trip columns "
              f"({read_bytes / 2**20:.1f} MiB of column chunks of {valid_bytes / 2**20:.1f} MiB in {valid_files} "
              f"files): {', '.join(f'{n}:{t}' for n, t in read_by_features)}; not read: "
              f"{', '.join(c for c in all_columns if c not in consumed)}", flush=True)

        def run(kind: str) -> tuple[float, float]:
            target = OUT / f"out-{kind}"
            shutil.rmtree(target, ignore_errors=True)
            started, cpu_started = time.perf_counter(), cpu_seconds(jvm)
            frame(kind).write.parquet(str(target))
            return time.perf_counter() - started, cpu_seconds(jvm) - cpu_started

        if not warmed_up:  # one untimed pair: JIT and caches warm before the first timed repeat
            run("plain"), run("featurize")
            warmed_up = True
        timings: dict[str, list[float]] = {"plain": [], "featurize": []}
        cpu: dict[str, list[float]] = {"plain": [], "featurize": []}
        for repeat in range(args.repeats):
            for kind in (("plain", "featurize") if repeat % 2 == 0 else ("featurize", "plain")):
                wall, used = run(kind)
                timings[kind].append(wall)
                cpu[kind].append(used)
                print(f"rows {rows:>10,} repeat {repeat} {kind:9s} {wall:6.2f} s wall, {used:6.2f} s JVM CPU "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        written = {}
        for kind, columns in (("plain", consumed), ("featurize", written_by_features)):
            size, files = parquet_bytes(OUT / f"out-{kind}")
            written[kind] = {"columns": columns, "bytes": size, "files": files,
                             "rows": spark.read.parquet(str(OUT / f"out-{kind}")).count()}
        if written["plain"]["rows"] != written["featurize"]["rows"]:
            raise RuntimeError(f"the two sides wrote different row counts: {written}")
        ratios = [f / p for f, p in zip(timings["featurize"], timings["plain"])]
        ratio = statistics.median(ratios)
        cpu_ratios = [f / p for f, p in zip(cpu["featurize"], cpu["plain"])]
        results["sizes"][rows] = {
            "rows_valid": written["plain"]["rows"], "read_columns": [f"{n}:{t}" for n, t in read_by_features],
            "read_column_chunk_bytes": read_bytes, "valid_bytes_all_columns": valid_bytes, "written": written,
            "plain_s": timings["plain"], "featurize_s": timings["featurize"], "ratios": ratios,
            "plain_median_s": statistics.median(timings["plain"]),
            "featurize_median_s": statistics.median(timings["featurize"]), "ratio_median": ratio,
            "plain_cpu_s": cpu["plain"], "featurize_cpu_s": cpu["featurize"], "cpu_ratios": cpu_ratios,
            "plain_cpu_median_s": statistics.median(cpu["plain"]),
            "featurize_cpu_median_s": statistics.median(cpu["featurize"]),
            "cpu_ratio_median": statistics.median(cpu_ratios)}
        for kind in ("plain", "featurize"):
            w = written[kind]
            print(f"rows {rows:>10,}: {kind:9s} writes {len(w['columns'])} columns, {w['rows']:,} rows, "
                  f"{w['bytes'] / 2**20:.1f} MiB in {w['files']} files", flush=True)
        print(f"rows {rows:>10,}: featurize/plain ratio (median of {args.repeats} paired) {ratio:.2f} "
              f"(per repeat {', '.join(f'{r:.2f}' for r in ratios)}; featurize median "
              f"{statistics.median(timings['featurize']):.1f} s, plain read+write median "
              f"{statistics.median(timings['plain']):.1f} s)", flush=True)
        print(f"rows {rows:>10,}: JVM CPU seconds featurize/plain (median of {args.repeats} paired) "
              f"{statistics.median(cpu_ratios):.2f} (per repeat {', '.join(f'{r:.2f}' for r in cpu_ratios)}; "
              f"featurize median {statistics.median(cpu['featurize']):.1f} s, plain median "
              f"{statistics.median(cpu['plain']):.1f} s)", flush=True)
        if rows == args.breakdown_rows:
            results["breakdown"] = breakdown(rows, run, ["plain", "plain_all_columns", *stages],
                                             args.breakdown_repeats)
    results["load_average_end"] = os.getloadavg()
    print(f"load average at end (1, 5, 15 min): {results['load_average_end']}", flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
