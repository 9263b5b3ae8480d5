"""Train distributed XGBoost on the ingested trips and record model, metrics and lineage in the store."""
import sys

from pipelines.cli import run_stage
from pipelines.registry import pipeline_module


def report(result, config) -> str:
    return pipeline_module(config.pipeline).summary(result, config)

if __name__ == "__main__":
    sys.exit(run_stage("train", __doc__, report=report))
