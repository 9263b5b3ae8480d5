"""Generate synthetic TLC-schema taxi trips (deterministic by seed, Parquet or CSV, by month)."""
import sys

from spark_ml_pipeline.runtime.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("generate", __doc__))
