"""Quiet by default: native libraries' start-up chatter stays off the console unless asked for.

TensorFlow prints, once in every process that imports it (the driver, each Spark Python worker that loads a Keras
model, each Horovod rank), C++ INFO lines such as the oneDNN notice (``port.cc``) and ``cpu_feature_guard.cc``'s
"This TensorFlow binary is optimized to use available CPU instructions ... rebuild TensorFlow with the appropriate
compiler flags". TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` once, when it is imported, so the level must be in the
process's environment before that: :func:`configure` puts it there at the start of every job (``Job``), and the
processes a job starts inherit it (the Spark JVM and its Python workers, the Horovod ranks), on a cluster through
the ``spark.executorEnv.*`` properties of :func:`environment`.

* Default: ``TF_CPP_MIN_LOG_LEVEL=2``: TensorFlow's C++ INFO and WARNING lines are dropped; its errors get through.
* ``--verbose`` (every job) or ``SPARK_ML_PIPELINE_VERBOSE=1``: ``TF_CPP_MIN_LOG_LEVEL=0``, everything gets through.
* A ``TF_CPP_MIN_LOG_LEVEL`` set in the environment by the user wins either way.

Spark (``spark.log_level`` and ``runtime/resources/log4j2.properties``), Horovod (``verbose=0``, the ranks' output
in ``ranks.log``) and XGBoost already keep to warnings; the project's own progress lines are plain prints.
Not covered: XLA's absl-logged lines (``WARNING: All log messages before absl::InitializeLog() ...``,
``Compiled cluster using XLA!``) appear only when a model is compiled with XLA, which no code path here asks for;
TensorFlow (2.15 to 2.19) offers no environment setting for absl's C++ log level.
"""
from __future__ import annotations

import os
from typing import Mapping

VERBOSE_ENV = "SPARK_ML_PIPELINE_VERBOSE"
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "2"  # 0 all, 1 no INFO, 2 no INFO/WARNING, 3 no ERROR either
VERBOSE_TF_LOG_LEVEL = "0"
TRUE_WORDS = {"1", "true", "yes", "on"}


def is_verbose(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SPARK_ML_PIPELINE_VERBOSE`` asks for the libraries' full output (1, true, yes, on)."""
    environ = os.environ if environ is None else environ
    return environ.get(VERBOSE_ENV, "").strip().lower() in TRUE_WORDS


def environment(verbose: bool | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables every process of a run needs, before it imports TensorFlow: the verbosity itself and
    TensorFlow's C++ log level (the one in ``environ``, when the user set one). ``verbose`` None: from ``environ``."""
    environ = os.environ if environ is None else environ
    verbose = is_verbose(environ) if verbose is None else verbose
    level = environ.get(TF_LOG_LEVEL_ENV) or (VERBOSE_TF_LOG_LEVEL if verbose else QUIET_TF_LOG_LEVEL)
    return {VERBOSE_ENV: "1" if verbose else "0", TF_LOG_LEVEL_ENV: level}


def configure(verbose: bool | None = None) -> dict[str, str]:
    """Set this process's (and so its children's) environment for ``verbose`` (None: keep what
    ``SPARK_ML_PIPELINE_VERBOSE`` says); must run before TensorFlow is imported. Returns the variables."""
    settings = environment(verbose if verbose else None)
    os.environ.update(settings)
    return settings
