"""Train: deterministic splits, metrics, distributed XGBoost, and Keras trained data-parallel on Spark with Horovod
or TensorFlow's MultiWorkerMirroredStrategy (the estimator, the per-rank training function, the two backends and
their launchers, the model zoo, training-batch augmentations), and a search trial's reporting from inside a fit.
Its surface is its modules.

TensorFlow and Horovod are imported inside the functions that use them, not at module top: they take seconds
and gigabytes to import, and most processes that import this package (the Spark driver of an XGBoost run,
scoring workers of other models, the search driver) never build a network."""

__all__ = ["augmentation", "deep_learning", "gan_estimator", "gan_rank", "horovod_network", "keras_estimator",
           "keras_rank", "keras_settings", "losses", "metrics", "models", "rank_backends", "rank_test_hooks", "splits",
           "tf_distribute_launch", "tf_distribute_worker", "trial_reporting", "xgboost"]
