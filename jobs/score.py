"""Score new files with a registered model: validate them with the pipeline's rules (quarantining bad rows),
apply the model, and commit predictions partitioned by run date, the quarantine and stats atomically."""
import sys

from spark_ml_pipeline.runtime.cli import envs_of, fail, parser
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.score import batch

SCORE_EPILOG = """
scoring (input= and output= are required and are not configuration keys; every other key=value is an override):
  python -m jobs.score taxi_fare input=new_trips/ output=predictions/ ingest.format=csv
  python -m jobs.score taxi_fare --model 3 input=s3a://bucket/trips/ output=s3a://bucket/fares/ run_date=2026-01-15
  python -m jobs.score fashion_mnist --model runs:/<run id> input=images.parquet output=predictions/
Writes <output>/run_date=<date>/ (predictions + _scoring.json) and <output>/_quarantine/run_date=<date>/;
re-running a date replaces that date only. Exit code 2: a configuration, model or data error (one line).
"""


def main(argv=None) -> int:
    p = parser("jobs.score", __doc__)
    p.epilog = (p.epilog or "") + SCORE_EPILOG
    p.add_argument("--model", default="champion",
                   help="registered model alias (default: champion), version number, or runs:/<run id>")
    args = p.parse_intermixed_args(argv)
    try:
        locations, overrides = batch.split_locations(args.overrides)
        config, definition = load_pipeline(args.pipeline, envs_of(args), overrides, args.conf_dir)
        result = batch.score_pipeline(config, definition, args.model, locations.input, locations.output)
        print(batch.summary(result))
        return 0
    except PipelineError as exc:
        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())
