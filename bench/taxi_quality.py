"""Taxi test RMSE over the noise floor for the model settings docs/benchmarks.md compares (issue 12).

    .venv/bin/python bench/taxi_quality.py [--rows 200000]

Each line is ``python -m jobs.run_pipeline taxi_fare`` as a user runs it, in one store (bench/out/taxi-quality/
<schema>/: the trips are generated once per schema and shared), with the overrides shown; prints the run's own
``RMSE/floor`` line. The legacy-schema table first, then current-schema data with and without the constraint.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "taxi-quality"
UNCONSTRAINED = "model.monotone_constraints.trip_distance=0"  # 0: no constraint ({} would merge, not replace)
CASES = [
    ("legacy", [UNCONSTRAINED]),
    ("legacy", []),  # as shipped: the fare never falls with the distance
    ("legacy", [UNCONSTRAINED, "model.learning_rate=0.05", "model.n_estimators=800"]),
    ("legacy", ["model.learning_rate=0.05", "model.n_estimators=800"]),
    ("legacy", [UNCONSTRAINED, "model.max_depth=6", "model.learning_rate=0.05", "model.n_estimators=1000"]),
    ("current", []),
    ("current", [UNCONSTRAINED]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    for schema, overrides in CASES:
        command = [sys.executable, "-m", "jobs.run_pipeline", "taxi_fare", f"store.root={OUT / schema}",
                   "run_date=2026-11-28", f"generate.rows={args.rows}", f"generate.tlc_schema={schema}", *overrides]
        output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        rmse = re.search(r"test RMSE ([\d.]+) .*\(RMSE/floor ([\d.]+)\)", output)
        print(f"{schema:8s} {' '.join(overrides) or '(as shipped)':70s} RMSE {rmse.group(1)} · "
              f"RMSE/floor {rmse.group(2)}", flush=True)


if __name__ == "__main__":
    main()
