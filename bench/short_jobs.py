"""Where a short job's seconds go: ``jobs.ingest`` and ``jobs.score`` on 1,000 trips, timed end to end and by phase.

    .venv/bin/python bench/short_jobs.py [--repeats 3]

Once: 1,000 legacy-schema trips generated (bench/out/short-jobs/raw) and a taxi_fare model trained on them (its
own store). Then, alternating, each ``repeats`` times:

- the real command (``python -m jobs.ingest taxi_fare ...`` / ``python -m jobs.score taxi_fare ...``), wall time;
- the same steps in a fresh interpreter with a clock between them: interpreter start, importing the job module,
  loading the configuration (which imports the pipeline's package), the Spark session (the JVM's start), the
  work itself, and the work again in the now warm session.

Each job runs twice per repeat: with the driver's class-data-sharing archive (``spark.class_archive=true``,
recorded by ``make setup``: spark_ml_pipeline/runtime/class_archive.py) and without it (``false``).

Prints medians per phase. The goal (issue 23) is under 5 s wall for both on 1,000 rows.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from spark_ml_pipeline.runtime.class_archive import archive_path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "short-jobs"
COMMON = ["spark.master=local[2]", "run_date=2026-01-01"]
ARCHIVE = {"with the class archive": "true", "without": "false"}

PHASES = """
import json, sys, time
launched = float(sys.argv[1]); clock = {"interpreter": time.time() - launched}
def tick(name, since=[time.time()]):
    now = time.time(); clock[name] = now - since[0]; since[0] = now
job, overrides, location = sys.argv[2], sys.argv[3:-1], sys.argv[-1]
import importlib; importlib.import_module(f"jobs.{job}"); tick("import the job")
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.session import get_session
config, definition = load_pipeline("taxi_fare", ["local"], overrides); tick("load the conf (the pipeline's package)")
if job == "score":
    from spark_ml_pipeline.score import batch
    from spark_ml_pipeline.store.tracking import check_store
    factory = batch.scorer_of(definition, config); check_store(config.store, root=False)
    resolved = batch.resolve_model(config, "champion"); tick("find the model (MLflow)")
spark = get_session(config.spark, config.compute); tick("Spark session (JVM start)")
def work(output):
    if job == "ingest":
        definition.stages["ingest"](spark, config)
    else:
        batch.score(spark, config, factory(spark, config), resolved, location, output, reference_name="champion")
work(location + "-scored-1"); tick("the work")
work(location + "-scored-2"); tick("the work again (warm JVM)")
print(json.dumps(clock))
"""


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    archive = archive_path()
    if archive is None or not archive.is_file():
        sys.exit(f"no class archive at {archive}: record it first (python scripts/build_class_archive.py)")
    shutil.rmtree(OUT, ignore_errors=True)
    raw, store = OUT / "raw", OUT / "store"
    shared = [f"store.root={store}", *COMMON]
    run(["-m", "jobs.generate", "taxi_fare", *shared, "generate.rows=1000", "generate.months=1",
         f"generate.output={raw}", "generate.format=parquet"])
    trips = [f"ingest.input={raw}", "ingest.format=parquet"]
    run(["-m", "jobs.run_pipeline", "taxi_fare", *shared, *trips, "model.n_estimators=20", "report.enabled=false"])
    commands = {
        "ingest": (["-m", "jobs.ingest", "taxi_fare", *shared, *trips], [*shared, *trips]),
        "score": (["-m", "jobs.score", "taxi_fare", *shared, f"input={raw}", "ingest.format=parquet"],
                  [*shared, "ingest.format=parquet"]),
    }
    cases = [(job, variant) for job in commands for variant in ARCHIVE]
    walls = {case: [] for case in cases}
    phases = {case: [] for case in cases}
    for repeat in range(args.repeats):
        for job, variant in cases:
            command, overrides = commands[job]
            setting = f"spark.class_archive={ARCHIVE[variant]}"
            output = OUT / f"scored-{repeat}-{ARCHIVE[variant]}"
            line = [*command, setting, *([f"output={output}"] if job == "score" else [])]
            started = time.perf_counter()
            run(line)
            walls[job, variant].append(time.perf_counter() - started)
            done = run(["-c", PHASES, repr(time.time()), job, *overrides, setting, str(raw)])
            phases[job, variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = {}
    for job, variant in cases:
        case = phases[job, variant]
        medians = {name: round(statistics.median(p[name] for p in case), 2) for name in case[0]}
        wall = round(statistics.median(walls[job, variant]), 2)
        results.setdefault(job, {})[variant] = {"wall_s": wall, "phases_s": medians}
        print(f"python -m jobs.{job} on 1,000 trips, {variant}: {wall} s wall (median of {args.repeats})")
        for name, seconds in medians.items():
            print(f"  {name:42s} {seconds:6.2f} s")
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
