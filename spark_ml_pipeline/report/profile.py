"""A run's prediction profile: what its predictions on the test set looked like, kept with the run
(``prediction_profile.json``) so a later scoring can be compared with it.

Scalar predictions keep a sample of values and their quantiles; class scores (an array per row) keep the
share of rows predicted as each class; other arrays (e.g. fields) keep a sample of their per-row means."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

PROFILE_ARTIFACT = "prediction_profile.json"
SAMPLE = 2000


def prediction_profile(predictions: pd.Series, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    if not len(predictions):
        return {"kind": "empty", "rows": 0}
    first = predictions.iloc[0]
    if np.ndim(first) == 0:
        return _numeric(np.asarray(predictions, dtype=float), "prediction")
    if class_names is not None:
        chosen = np.asarray([int(np.argmax(v)) for v in predictions])
        shares = np.bincount(chosen, minlength=len(class_names)) / len(chosen)
        return {"kind": "classes", "rows": int(len(chosen)), "classes": list(class_names),
                "shares": [float(s) for s in shares]}
    means = np.asarray([float(np.mean(np.stack(v) if isinstance(v[0], (list, np.ndarray)) else v))
                        for v in predictions])
    return _numeric(means, "mean of the predicted values per row")


def _numeric(values: np.ndarray, quantity: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    sample = values if len(values) <= SAMPLE else rng.choice(values, SAMPLE, replace=False)
    return {"kind": "numeric", "quantity": quantity, "rows": int(len(values)),
            "quantiles": [float(q) for q in np.quantile(values, np.linspace(0, 1, 21))],
            "sample": [float(v) for v in sample]}


def drift(current: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """How far the current profile is from the reference: for numbers the largest gap between their sampled
    distribution functions (Kolmogorov-Smirnov statistic) and the shift of the median; for classes the
    total variation distance of the class shares."""
    if current.get("kind") != reference.get("kind"):
        return {}
    if current["kind"] == "numeric":
        a, b = np.sort(current["sample"]), np.sort(reference["sample"])
        grid = np.concatenate([a, b])
        gap = np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a)
                            - np.searchsorted(b, grid, side="right") / len(b)))
        return {"ks_statistic": float(gap), "median_shift": float(np.median(a) - np.median(b))}
    if current["kind"] == "classes":
        return {"total_variation": float(0.5 * np.abs(np.subtract(current["shares"], reference["shares"])).sum())}
    return {}
