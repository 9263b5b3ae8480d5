"""Compute the feature table (time parts, haversine distance, airport flags, hashed categories)."""
import sys

from spark_ml_pipeline.runtime.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("featurize", __doc__))
