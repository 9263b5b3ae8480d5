"""Optuna pruners by the names the configuration uses (``tune.pruner``)."""
from __future__ import annotations

import optuna


def make_pruner(name: str, startup_trials: int = 3):
    """``median``: stop a trial whose intermediate value is worse than the median of earlier trials at the
    same step (after ``startup_trials`` finished trials); ``successive_halving``; ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r} (median, successive_halving, none)")
