"""spark-ml-pipeline's reusable library, one package per stage of the data's trip.

``runtime`` (configuration, session, errors, I/O, command line, pipeline discovery, plugin contracts) <
``ingest`` (input files, validation and quarantine), ``report`` (HTML pages) and ``studies`` (Optuna study
storages) < ``train`` (splits, metrics, XGBoost, Keras on Horovod, the model zoo) < ``store`` (MLflow tracking,
the run recorder, lineage, the model registry) < ``runs`` (one recorded training run of XGBoost or Keras) <
``tune`` (the search) and ``score`` (batch scoring). It never imports the named pipelines (``pipelines/``); it
finds them by name. Importing it imports no package below.
"""

__version__ = "0.2.0"
__all__ = ["ingest", "report", "runs", "runtime", "score", "store", "studies", "train", "tune"]
