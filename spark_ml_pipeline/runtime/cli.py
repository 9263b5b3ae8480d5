"""The command line shared by every job: ``PIPELINE [key=value ...] [--env ENV] [--conf-dir DIR]``."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

from spark_ml_pipeline.runtime.config import CONF_DIR_ENV, known_pipelines, load_pipeline
from spark_ml_pipeline.runtime.errors import PipelineError
from spark_ml_pipeline.runtime.session import get_session

EPILOG = f"""\
configuration layers (later wins): conf/base.yaml < conf/pipelines/<pipeline>.yaml < conf/env/<env>.yaml ...
< key=value. Overrides use dotted keys and YAML values, e.g. model.max_depth=6 spark.master='local[2]'.
The configuration directory is conf/ beside the code, or ${CONF_DIR_ENV}, or --conf-dir. A pipeline is a file
in conf/pipelines/; its `kind` (default: its name) is the package under pipelines/ that runs it.
examples:
  python -m jobs.run_pipeline taxi_fare
  python -m jobs.run_pipeline taxi_fare --env cluster model.num_workers=2
  spark-submit --master spark://127.0.0.1:7077 --py-files dist/spark_ml_pipeline.zip \\
      jobs/run_pipeline.py taxi_fare --env cluster
"""


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    known = ", ".join(known_pipelines()) if _conf_dir_exists() else "see conf/pipelines/"
    p.add_argument("pipeline", help=f"named pipeline: its conf/pipelines/<name>.yaml ({known})")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    p.add_argument("--env", default="local",
                   help="environment layer(s), comma-separated: local, cluster, gpu (default: local)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: conf/)")
    return p


def _conf_dir_exists() -> bool:
    try:
        known_pipelines()
        return True
    except OSError:
        return False


def envs_of(args) -> list[str]:
    return [e for e in args.env.split(",") if e]


def fail(exc: PipelineError) -> int:
    """One clear line on stderr, exit code 2: bad configuration or bad data, never a traceback."""
    print(f"error: {exc}", file=sys.stderr)
    return 2


def run_stage(stage: str, description: str, argv: Sequence[str] | None = None,
              report: Callable | None = None, prog: str | None = None) -> int:
    """Parse arguments, load and validate configuration (before Spark starts), run one stage.

    ``report(definition, result, config)`` makes the printed summary (default: the stage's result)."""
    args = parser(prog or f"jobs.{stage}", description).parse_intermixed_args(argv)
    try:
        config, definition = load_pipeline(args.pipeline, envs_of(args), args.overrides, args.conf_dir)
        if stage not in definition.stages:
            raise PipelineError(f"pipeline {args.pipeline!r} (kind {config.kind}) has no {stage!r} stage "
                                f"(it has: {', '.join(definition.stages)})")
        started = time.time()
        spark = get_session(config.spark, config.compute)
        result = definition.stages[stage](spark, config)
        print(report(definition, result, config) if report
              else f"{stage}: done in {time.time() - started:.1f} s\n{result}")
        return 0
    except PipelineError as exc:
        return fail(exc)
