"""Tune: the parallel, resumable Optuna search, its spaces, reports and dashboard, the tuner contract
(:mod:`~spark_ml_pipeline.tune.tuner`) and the XGBoost, Keras and GAN tuners. Its surface is its modules."""

__all__ = ["dashboard", "gan_tuner", "keras_tuner", "report", "search", "search_space", "trials", "tuner",
    "xgboost_tuner"]
