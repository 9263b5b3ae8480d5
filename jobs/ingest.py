"""Read the pipeline's input files, validate them, and commit valid rows and a quarantine (with reasons). With
--check: read only the first rows of the input, print what would be quarantined and why, and write nothing."""
import sys

from spark_ml_pipeline.ingest.check import check_ingest
from spark_ml_pipeline.runtime.cli import run_stage


def main(argv=None) -> int:
    return run_stage("ingest", __doc__, argv, check=check_ingest)


if __name__ == "__main__":
    sys.exit(main())
