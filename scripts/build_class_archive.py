"""Record the driver JVM's class-data-sharing archive (spark_ml_pipeline/runtime/class_archive.py).

One small taxi_fare run (generate, ingest, features, an XGBoost fit, evaluation, report, MLflow) in a scratch
store, its driver JVM told to write the classes it loaded when it exits. The JVM outlives the Python process
that started it by the seconds the dump takes, so the run gets a process group of its own and the archive is
taken (renamed into place, atomically) only once every process of that group has exited.

    python scripts/build_class_archive.py [--force]

An archive that cannot be recorded is a warning, not a failure: every job runs without one, only slower.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spark_ml_pipeline.runtime.class_archive import RECORD_ENV, archive_path

ROOT = Path(__file__).resolve().parents[1]
RECORDING_RUN = ["taxi_fare", "generate.rows=2000", "generate.months=1", "model.n_estimators=10",
                 "spark.master=local[2]", "spark.shuffle_partitions=2", "report.enabled=false"]


def wait_for_group(group: int, timeout: float) -> bool:
    """Whether every process of the group exited within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def record(target: Path) -> str | None:
    """Record the archive at ``target``; None when done, else what went wrong."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, RECORD_ENV: str(partial), "SPARK_LOCAL_IP": "127.0.0.1"}
        command = [sys.executable, "-m", "jobs.run_pipeline", *RECORDING_RUN, f"store.root={scratch}/store"]
        run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
        try:
            _, stderr = run.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, 9)
            run.wait()
            partial.unlink(missing_ok=True)
            return "the recording run took over 900 s and was stopped"
        exited = wait_for_group(run.pid, timeout=300)
    if run.returncode != 0:
        partial.unlink(missing_ok=True)
        last = stderr.strip().splitlines()[-1:] or ["no message"]
        return f"the recording run exited {run.returncode}: {last[0]}"
    if not exited or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        return "the driver JVM wrote no archive"
    partial.replace(target)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="record again even if the archive exists")
    args = parser.parse_args()
    target = archive_path()
    if target is None:
        print("setup: warning: no java found, no class archive recorded", file=sys.stderr)
        return
    if target.is_file() and not args.force:
        print(f"setup: class archive {target} (exists)")
        return
    started = time.monotonic()
    problem = record(target)
    if problem:
        print(f"setup: warning: no class archive recorded ({problem}); Spark starts without one, slower",
              file=sys.stderr)
    else:
        print(f"setup: class archive {target} ({target.stat().st_size / 2**20:.0f} MiB, "
              f"{time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
