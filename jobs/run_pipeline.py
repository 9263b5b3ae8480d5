"""Run a whole pipeline: (generate) -> ingest/validate/quarantine -> features -> train -> store."""
import sys

from pipelines.cli import run_stage
from pipelines.registry import pipeline_module


def report(result, config) -> str:
    return pipeline_module(config.pipeline).summary(result, config)


if __name__ == "__main__":
    sys.exit(run_stage("run", __doc__, report=report, prog="jobs.run_pipeline"))
