"""The command line shared by every job: ``PIPELINE [key=value ...] [--env ENV] [--conf-dir DIR]``."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

from pipelines.config import CONF_DIR_ENV, load_config
from pipelines.errors import PipelineError
from pipelines.registry import PIPELINES, pipeline_module

EPILOG = f"""\
configuration layers (later wins): conf/base.yaml < conf/<env>.yaml ... < conf/<pipeline>.yaml < key=value.
Overrides use dotted keys and YAML values, e.g. model.max_depth=6 spark.master='local[2]' generate.rows=1000000.
The configuration directory is conf/ beside the code, or ${CONF_DIR_ENV}, or --conf-dir.
examples:
  python -m jobs.run_pipeline taxi_fare
  python -m jobs.run_pipeline taxi_fare --env cluster model.num_workers=2
  spark-submit --master spark://127.0.0.1:7077 --py-files dist/spark_ml_pipeline.zip \\
      jobs/run_pipeline.py taxi_fare --env cluster
"""


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pipeline", choices=sorted(PIPELINES), help="named pipeline (its conf/<name>.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    p.add_argument("--env", default="local",
                   help="environment layer(s), comma-separated: local, cluster, gpu (default: local)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: conf/)")
    return p


def run_stage(stage: str, description: str, argv: Sequence[str] | None = None,
              report: Callable | None = None, prog: str | None = None) -> int:
    """Parse arguments, load and validate configuration (before Spark starts), run one stage."""
    args = parser(prog or f"jobs.{stage}", description).parse_intermixed_args(argv)
    try:
        config = load_config(args.pipeline, [e for e in args.env.split(",") if e], args.overrides, args.conf_dir)
        module = pipeline_module(args.pipeline)
        if stage not in module.STAGES:
            raise PipelineError(f"pipeline {args.pipeline!r} has no {stage!r} stage "
                                f"(it has: {', '.join(module.STAGES)})")
        from pipelines.session import get_session

        started = time.time()
        spark = get_session(config.spark, config.compute)
        result = module.STAGES[stage](spark, config)
        print(report(result, config) if report else f"{stage}: done in {time.time() - started:.1f} s\n{result}")
        return 0
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
