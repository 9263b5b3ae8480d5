"""Quiet by default: TensorFlow's start-up lines stay out of a job's output unless ``--verbose`` (or
``SPARK_ML_PIPELINE_VERBOSE=1``) asks for them. Real processes: each probe parses a job's command line with the
jobs' own parser, runs a body through ``Job.run`` and imports TensorFlow inside it, as a stage does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spark_ml_pipeline.runtime.verbosity import TF_LOG_LEVEL_ENV, VERBOSE_ENV, environment

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys
from spark_ml_pipeline.runtime.cli import Job, parser

args = parser("jobs.quiet_probe", "a job that imports TensorFlow").parse_intermixed_args(sys.argv[1:])


def body():
    import tensorflow as tf  # a stage's first TensorFlow import, after the command line was read

    print("probe sum", float(tf.reduce_sum(tf.ones(3)).numpy()), flush=True)


sys.exit(Job(args).run(body))
"""
# What TensorFlow (2.15 to 2.19) prints once per process on x86 Linux (C++ INFO lines): the oneDNN notice, and on CPUs
# with instructions the binary was not built for, cpu_feature_guard's "rebuild TensorFlow" advice.
NOISE = ("oneDNN custom operations are on", "cpu_feature_guard", "rebuild TensorFlow with the appropriate compiler",
         "I tensorflow/", "absl::InitializeLog")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (TF_LOG_LEVEL_ENV, VERBOSE_ENV, "TF_ENABLE_ONEDNN_OPTS")}
    return {**env, **extra}


def _probes(cases: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, str]:
    """Run the probes at once (each loads TensorFlow: seconds); their stdout + stderr by case name."""
    running = {name: subprocess.Popen([sys.executable, "-c", PROBE, "taxi_fare", *argv], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name, (argv, env) in cases.items()}
    outputs = {}
    for name, process in running.items():
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name}: exit {process.returncode}\n{out}"
        assert "probe sum 3.0" in out, out
        outputs[name] = out
    return outputs


def test_tensorflow_start_up_lines_only_when_asked():
    out = _probes({"default": ([], _clean_env()), "--verbose": (["--verbose"], _clean_env())})
    assert not [line for line in out["default"].splitlines() if any(n in line for n in NOISE)], out["default"]
    verbose = out["--verbose"]
    assert "oneDNN custom operations are on" in verbose or "cpu_feature_guard" in verbose, verbose


def test_every_process_of_a_run_gets_the_verbosity():
    """What the driver puts in its environment, passes to the Horovod ranks and to executors
    (``spark.executorEnv.*``): quiet by default, loud when asked, a level the user set wins."""
    assert environment(environ={}) == {VERBOSE_ENV: "0", TF_LOG_LEVEL_ENV: "2"}
    # SPARK_ML_PIPELINE_VERBOSE=1 is what --verbose sets (runtime/verbosity.configure), and works on its own.
    assert environment(environ={VERBOSE_ENV: "1"}) == {VERBOSE_ENV: "1", TF_LOG_LEVEL_ENV: "0"}
    assert environment(verbose=True, environ={}) == {VERBOSE_ENV: "1", TF_LOG_LEVEL_ENV: "0"}
    assert environment(environ={TF_LOG_LEVEL_ENV: "1"})[TF_LOG_LEVEL_ENV] == "1"
