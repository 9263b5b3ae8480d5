"""What a report draws from a Spark DataFrame: a bounded, seeded sample of a few columns, as pandas/numpy."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Enough rows for stable deciles, curves and a readable scatter; few enough to draw every point in a browser.
DEFAULT_ROWS = 5000


def sample_rows(df: DataFrame, columns: Sequence[str], max_rows: int = DEFAULT_ROWS, seed: int = 0,
                total: int | None = None) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``columns`` (ML vectors as arrays): a seeded Bernoulli sample when the
    number of rows (``total``, counted if not given) is larger, so the sample is spread over the data."""
    types = {f.name: f.dataType for f in df.schema.fields}
    selected = df.select(*[vector_to_array(F.col(c)).alias(c) if isinstance(types[c], VectorUDT) else F.col(c)
                           for c in columns])
    total = selected.count() if total is None else total
    if total > max_rows:
        # A little above the wanted share, so the sample rarely falls short; the limit caps it.
        selected = selected.sample(withReplacement=False, fraction=min(1.0, 1.1 * max_rows / total), seed=seed)
    return selected.limit(max_rows).toPandas()


def stacked(column: pd.Series, shape: Sequence[int] | None = None) -> np.ndarray:
    """A column of equal-length arrays (or nested arrays) as one float array (rows first), optionally
    reshaped per row."""
    array = np.stack([np.asarray(np.stack(v) if len(v) and isinstance(v[0], (list, np.ndarray)) else v,
                                 dtype=float) for v in column])
    return array.reshape((len(column), *shape)) if shape else array


def vector_slot_names(df: DataFrame, column: str) -> list[str] | None:
    """The names of an ML vector column's slots, from the metadata VectorAssembler / OneHotEncoder leave
    (e.g. ``carrier_UA``); None when the column carries none."""
    attributes = df.schema[column].metadata.get("ml_attr", {})
    slots = [a for group in attributes.get("attrs", {}).values() for a in group]
    if not slots or len(slots) != attributes.get("num_attrs", len(slots)):
        return None
    names = [""] * len(slots)
    for slot in slots:
        names[slot["idx"]] = slot.get("name", f"f{slot['idx']}")
    return names
