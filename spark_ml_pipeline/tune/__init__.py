"""Tune: the parallel, resumable Optuna search, its spaces, reports, and the XGBoost and Keras tuners."""
