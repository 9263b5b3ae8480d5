"""Draft conf/pipelines/<name>.yaml for a new data set from a sample of its files: every column's type (date
formats and numbers written as text included), features by type and cardinality, validation ranges from the
sample's quantiles, the label required, a comment on every choice. Never overwrites an existing conf."""
import argparse
import sys

from pipelines.tabular.draft import SAMPLE_ROWS, conf_path, draft, refuse_existing, write_draft
from spark_ml_pipeline.runtime.cli import Job, envs_of
from spark_ml_pipeline.runtime.config import default_conf_dir, shared_config

EPILOG = """
examples:
  python -m jobs.draft penguins package:palmerpenguins/data/penguins.csv --label species
  python -m jobs.draft trips 'data/real-taxi/tlc-yellow-samples/*.csv' --label fare_amount
  python -m jobs.draft sales exports/sales.json --label revenue --task regression --sample-rows 50000
then: python -m jobs.ingest <name> --check   (the quarantine a run would see)
      python -m jobs.run_pipeline <name>     (runs without edits when --label was given)
exit codes: 0 written, 2 bad arguments or the conf exists, 3 unreadable data.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="jobs.draft", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pipeline", help="the new pipeline's name: conf/pipelines/<name>.yaml is written")
    p.add_argument("uri", help="the input: a file, directory, glob or URI (csv, json, parquet, orc; .gz/.bz2), "
                               "or package:<package>/<path>")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides of the shared settings the draft reads with (spark.*, store.*)")
    p.add_argument("--label", default=None, help="the column to predict (without it the conf cannot train yet)")
    p.add_argument("--task", choices=["regression", "binary", "multiclass"], default=None,
                   help="default: from the label's values")
    p.add_argument("--exclude", default="", metavar="COL,COL",
                   help="columns to declare but not use as features (known only after the label, ...)")
    p.add_argument("--format", dest="input_format", choices=["csv", "json", "parquet", "orc"], default=None,
                   help="default: from the file name")
    p.add_argument("--sample-rows", type=int, default=SAMPLE_ROWS, help=f"rows sampled (default: {SAMPLE_ROWS:,})")
    p.add_argument("--stdout", action="store_true", help="print the draft instead of writing it")
    p.add_argument("--env", default="local", help="environment layer(s) for Spark and the store (default: local)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: conf/)")
    p.add_argument("--verbose", action="store_true", help="let libraries' INFO logs through")
    args = p.parse_intermixed_args(argv)
    job = Job(args)
    command = "python -m jobs.draft " + " ".join(sys.argv[1:] if argv is None else argv)

    def body() -> None:
        settings = shared_config(args.pipeline, envs_of(args), args.overrides, args.conf_dir)
        conf_dir = default_conf_dir() if args.conf_dir is None else args.conf_dir
        target = conf_path(conf_dir, args.pipeline)
        if not args.stdout:
            refuse_existing(target)
        result = draft(job.session(settings), settings, args.uri, args.label, args.task, args.input_format,
                       args.sample_rows, tuple(c for c in args.exclude.split(",") if c), command)
        if args.stdout:
            print(result.text, end="")
            return
        write_draft(conf_dir, args.pipeline, result.text)
        left_out = f"; left out: {', '.join(result.left_out)}" if result.left_out else ""
        print(f"wrote {target}: {len(result.features)} feature column(s){left_out} (the reasons are in its "
              f"comments)\nnext: python -m jobs.ingest {args.pipeline} --check, then python -m jobs.run_pipeline "
              f"{args.pipeline}")

    return job.run(body)


if __name__ == "__main__":
    sys.exit(main())
