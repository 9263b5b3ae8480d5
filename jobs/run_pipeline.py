"""Run a whole pipeline: (generate) -> ingest/validate/quarantine -> features -> train -> store -> registry
(the model's new version takes the 'champion' alias when it is the first or beats it on the same test rows)."""
import sys

from spark_ml_pipeline.runtime.cli import run_stage
from spark_ml_pipeline.store.tracking import check_store


def report(definition, result, config) -> str:
    return definition.summary(result, config)


def preflight(config) -> None:
    """The store root takes files and the tracking store answers: checked before Spark starts."""
    check_store(config.store)


if __name__ == "__main__":
    sys.exit(run_stage("run", __doc__, report=report, prog="jobs.run_pipeline", preflight=preflight))
