"""Run a whole pipeline: (generate) -> ingest/validate/quarantine -> features -> train -> store."""
import sys

from spark_ml_pipeline.runtime.cli import run_stage


def report(definition, result, config) -> str:
    return definition.summary(result, config)


if __name__ == "__main__":
    sys.exit(run_stage("run", __doc__, report=report, prog="jobs.run_pipeline"))
