"""Score new files with a registered model: validate them with the pipeline's rules (quarantining bad rows),
apply the model, and commit predictions partitioned by run date, the quarantine and stats atomically."""
import sys

from spark_ml_pipeline.runtime.cli import Job, parser
from spark_ml_pipeline.score import batch
from spark_ml_pipeline.store.tracking import check_store

SCORE_EPILOG = """
scoring (input= and output= are required and are not configuration keys; every other key=value is an override):
  python -m jobs.score taxi_fare input=new_trips/ output=predictions/ ingest.format=csv
  python -m jobs.score taxi_fare --model 3 input=s3a://bucket/trips/ output=s3a://bucket/fares/ run_date=2026-01-15
  python -m jobs.score fashion_mnist --model runs:/<run id> input=images.parquet output=predictions/
Writes <output>/run_date=<date>/ (predictions + _scoring.json) and <output>/_quarantine/run_date=<date>/;
re-running a date replaces that date only. A second scoring run of the same pipeline and date exits 5 (locked);
exit codes: 2 configuration or model, 3 data, 4 store, 5 locked, 130 interrupted (docs/scheduling.md).
"""


def main(argv=None) -> int:
    p = parser("jobs.score", __doc__)
    p.epilog = (p.epilog or "") + SCORE_EPILOG
    p.add_argument("--model", default=None,
                   help="registered model alias (default: registry.alias, champion), version number, or "
                        "runs:/<run id>")
    args = p.parse_intermixed_args(argv)
    job = Job(args)

    def body() -> None:
        locations, overrides = batch.split_locations(args.overrides)
        config, definition = job.load(overrides)
        model = args.model or config.registry.alias
        factory = batch.scorer_of(definition, config)  # checks that need no Spark and write nothing come first
        # The registry must answer, once and quickly, before the model is resolved (the store root is not
        # created here: an empty local store is the resolver's clear error).
        check_store(config.store, root=False)
        resolved = batch.resolve_model(config, model)
        with job.lock(scope="score"):
            spark = job.session(config)
            result = batch.score(spark, config, factory(spark, config), resolved, locations.input, locations.output,
                                 reference_name=model)
        print(batch.summary(result))

    return job.run(body)


if __name__ == "__main__":
    sys.exit(main())
