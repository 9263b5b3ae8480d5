"""Train the pipeline's model (distributed XGBoost, or Keras on Horovod) on its ingested data;
record model, metrics and lineage in the store, and register the model (the champion when first or better)."""
import sys

from jobs.run_pipeline import preflight, report
from spark_ml_pipeline.runtime.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("train", __doc__, report=report, preflight=preflight))
