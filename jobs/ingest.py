"""Read TLC trip files, validate them, and commit valid rows and a quarantine (with reasons)."""
import sys

from spark_ml_pipeline.runtime.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("ingest", __doc__))
