"""Parallel, resumable hyperparameter search (Optuna) over the pipeline's tune.space; the best is refit,
tested and registered in MLflow, and gets the 'champion' alias only if it beats the current champion."""
import sys

from spark_ml_pipeline.runtime.cli import Job, parser
from spark_ml_pipeline.runtime.errors import ExitCode
from spark_ml_pipeline.tune import search, search_space

# Short forms accepted on the command line: `n_trials=12` means `tune.n_trials=12`.
ALIASES = ("n_trials", "parallelism", "timeout", "sampler", "pruner", "storage")

TUNE_EPILOG = """
search (the tune: section of conf/pipelines/<pipeline>.yaml; short forms n_trials= parallelism= timeout= sampler=
pruner= storage= stand for tune.n_trials= ...):
  python -m jobs.tune taxi_fare parallelism=2 n_trials=12
  python -m jobs.tune taxi_fare sampler=grid            # the grid of categoricals and grid: lists
  python -m jobs.tune taxi_fare timeout=600 tune.pruner=successive_halving
Re-running the same command resumes the same study (store/optuna/<pipeline>-<hash>.journal): finished
trials are kept, trials a crash left running are re-run, and n_trials counts finished trials across runs.
Ctrl-C stops after recording what finished. The report is store/optuna/<study>/report.html.
"""


def expand_aliases(overrides):
    expanded = []
    for item in overrides:
        key, sep, value = item.partition("=")
        expanded.append(f"tune.{key.strip()}={value}" if sep and key.strip() in ALIASES else item)
    return expanded


def main(argv=None) -> int:
    p = parser("jobs.tune", __doc__)
    p.epilog = (p.epilog or "") + TUNE_EPILOG
    args = p.parse_intermixed_args(argv)
    job = Job(args)

    def body() -> int:
        config, definition = job.load(expand_aliases(args.overrides))
        search_space.check_space(config)
        search.preflight(config)  # the store, the tracking server and the study's database answer: before Spark
        if config.tune.parallelism > 1 and "spark.scheduler.mode" not in config.spark.extra:
            # Fair sharing between the trials' pools (must be set before the session starts).
            config.spark.extra = {**config.spark.extra, "spark.scheduler.mode": "FAIR"}
        spark = job.session(config)
        try:
            result = search.tune(spark, config, definition.tuner)
        except KeyboardInterrupt:
            print("interrupted: finished trials are recorded; re-run the same command to resume", file=sys.stderr)
            return ExitCode.INTERRUPTED
        print(search.summary(result))
        return ExitCode.INTERRUPTED if result.status == "interrupted" else ExitCode.OK

    return job.run(body)


if __name__ == "__main__":
    sys.exit(main())
