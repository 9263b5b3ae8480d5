"""spark-ml-pipeline's reusable library, one package per stage of the data's trip.

``runtime`` (configuration, session, errors, I/O, command line, pipeline discovery, plugin contracts) <
``ingest`` (input files, validation and quarantine), ``report`` (HTML pages) and ``studies`` (Optuna study
storages) < ``train`` (splits, metrics, XGBoost, Keras on Horovod, the model zoo) < ``store`` (MLflow tracking,
the run recorder, lineage, the model registry) < ``runs`` (one recorded training run of XGBoost or Keras) <
``tune`` (the search) and ``score`` (batch scoring). It never imports the named pipelines (``pipelines/``); it
finds them by name. Importing it imports no package below.
"""

import importlib.util as _importlib_util
import os as _os

# The Keras code here is Keras 2 (`from tensorflow import keras`). TensorFlow 2.16+ makes tf.keras Keras 3 unless
# TF_USE_LEGACY_KERAS=1 (then it is the tf-keras package, Keras 2). Set on import of this package, before tf.keras
# is first used; the processes a run starts inherit it (Spark's JVM and Python workers, the Horovod ranks), and a
# cluster's workers import this package before any project code runs. Only where tf-keras is installed: TensorFlow
# 2.15 reads the variable too, and with it but without tf-keras its tf.keras fails (RecursionError).
if _importlib_util.find_spec("tf_keras") is not None:
    _os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.2.0"
__all__ = ["ingest", "report", "runs", "runtime", "score", "store", "studies", "train", "tune"]
