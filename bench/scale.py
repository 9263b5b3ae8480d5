"""How the taxi pipeline's cost grows: the whole run (generate -> ingest -> features + XGBoost -> store) per size.

    .venv/bin/python bench/scale.py [--rows 200000,2000000,20000000] [--driver-memory 16g] [ARG=VALUE ...]

Each size runs ``python -m jobs.run_pipeline taxi_fare generate.rows=N`` exactly as a user would (a fresh store
under bench/out/scale/, local mode, the shipped configuration plus any ARG=VALUE overrides), while the memory of
the whole process tree (the Python driver, the JVM, Spark's Python workers, XGBoost) is sampled every 0.5 s.
Prints and saves per size: wall time, time per stage (as the run reports it), peak resident memory (sum over
the tree), and the test RMSE over the noise floor; writes bench/out/scale/results.json, a Markdown table and
docs/img/taxi_cost_by_rows.png (seconds per stage against rows, log-log, with a linear reference).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from process_memory import TreeMemory

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "scale"
PLOT = ROOT / "docs" / "img" / "taxi_cost_by_rows.png"
STAGE_LINE = re.compile(r"^\s*time\s+(.*)$", re.M)


def run_size(rows: int, driver_memory: str, overrides: list[str]) -> dict:
    store = OUT / f"store-{rows}"
    shutil.rmtree(store, ignore_errors=True)
    command = [sys.executable, "-m", "jobs.run_pipeline", "taxi_fare", f"generate.rows={rows}",
               f"store.root={store}", "run_date=2026-11-28", f"spark.driver_memory={driver_memory}", *overrides]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(process.pid, interval=0.5) as memory:
        stdout, stderr = process.communicate()
    peak, samples = memory.peak, memory.samples
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"rows {rows}: exit {process.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}")
    stages = {}
    for part in STAGE_LINE.search(stdout).group(1).split(" · "):
        name, seconds = part.rsplit(" ", 2)[0], part.rsplit(" ", 2)[1]
        if name != "total":
            stages[name] = float(seconds)
    over_floor = re.search(r"RMSE/floor ([\d.]+)", stdout)
    # Boosting rounds grow with the data (early stopping): the train stage's own work, not overhead.
    with sqlite3.connect(store / "mlflow.db") as db:
        logged = dict(db.execute("select key, value from metrics where key in ('best_iteration', 'rows_train')"))
    return {"rows": rows, "wall_s": round(wall, 1), "stages_s": stages, "peak_rss_gib": round(peak / 2**30, 2),
            "rmse_over_floor": float(over_floor.group(1)) if over_floor else None, "command": " ".join(command[1:]),
            "best_iteration": logged.get("best_iteration"), "rows_train": logged.get("rows_train"),
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg(),
            "memory_samples": samples[::10]}


def plot(results: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    rows = [r["rows"] for r in results]
    for stage in results[-1]["stages_s"]:
        axes.plot(rows, [max(r["stages_s"].get(stage, 0), 0.1) for r in results], marker="o", label=stage)
    axes.plot(rows, [r["wall_s"] for r in results], marker="s", color="black", label="whole run (wall)")
    reference = results[-1]["wall_s"]
    axes.plot(rows, [reference * n / rows[-1] for n in rows], linestyle=":", color="grey",
              label="linear in rows (through the largest run)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("trips generated")
    axes.set_ylabel("seconds")
    axes.set_title("taxi_fare: time per stage vs rows (local[2], 2 cores)")
    axes.legend(fontsize=7)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=120)


def table(results: list[dict]) -> str:
    stages = list(results[-1]["stages_s"])
    lines = ["| rows | " + " | ".join(stages) + " | wall | peak RSS | RMSE/floor |",
             "|---:|" + "---:|" * (len(stages) + 3)]
    for r in results:
        cells = [f"{r['stages_s'].get(s, 0):.0f} s" for s in stages]
        lines.append(f"| {r['rows']:,} | " + " | ".join(cells) + f" | {r['wall_s']:.0f} s | {r['peak_rss_gib']} GiB "
                     f"| {r['rmse_over_floor']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="200000,2000000,20000000")
    parser.add_argument("--driver-memory", default="16g")
    parser.add_argument("--keep", action="store_true", help="keep other sizes' results from the last run")
    parser.add_argument("overrides", nargs="*", help="ARG=VALUE configuration overrides for every run")
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    saved = OUT / "results.json"
    # Sizes measured before (e.g. 100M rows run on its own) stay in the table unless measured again.
    results = [r for r in json.loads(saved.read_text()) if r["rows"] not in sizes] if args.keep and saved.exists() \
        else []
    for rows in sizes:
        result = run_size(rows, args.driver_memory, args.overrides)
        results = sorted([r for r in results if r["rows"] != rows] + [result], key=lambda r: r["rows"])
        print(f"rows {rows:>12,}: wall {result['wall_s']:7.1f} s · peak {result['peak_rss_gib']:5.2f} GiB · "
              f"{result['stages_s']} · RMSE/floor {result['rmse_over_floor']}", flush=True)
        shutil.rmtree(OUT / f"store-{rows}", ignore_errors=True)  # 100M rows of raw data is 5+ GB
        # Saved after each size: a long run keeps its finished sizes if a later one fails.
        saved.write_text(json.dumps(results, indent=2))
        (OUT / "table.md").write_text(table(results) + "\n")
    if len(results) > 1:  # the published figure (docs/benchmarks.md shows it)
        PLOT.parent.mkdir(parents=True, exist_ok=True)
        plot(results, PLOT)
    print(table(results))


if __name__ == "__main__":
    main()
