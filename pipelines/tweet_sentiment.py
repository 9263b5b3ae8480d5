"""The ``tweet_sentiment`` pipeline: 3-class tweet sentiment with LSTM / BiLSTM, next to a Spark ML
TF-IDF + logistic-regression baseline trained and tested on the same split.

Text is cleaned, tokenised and mapped to padded integer sequences in Spark; the vocabulary is fitted on
the training split only, and saved with the run (the feature pipeline) so scoring uses the same ids."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import HashingTF, IDF
from pyspark.sql import functions as F

from features.text import clean_text, fit_vocabulary, to_sequences, tokenizer
from pipelines import deep_learning as dl
from pipelines.config_models import Section
from pipelines.datasets.tweets import LABELS, load_tweets, tweets_csv_path
from pipelines.io import HadoopFS, atomic_output
from pipelines.lineage import local_file_stats
from pipelines.store import Store

NAME = "tweet_sentiment"


class TextSection(Section):
    vocab_size: PositiveInt = 8000
    min_doc_freq: float = Field(2.0, gt=0)
    max_length: PositiveInt = 40
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    baseline_features: PositiveInt = 1 << 16


class TweetSentimentConfig(dl.DeepPipelineConfig):
    pipeline: Literal["tweet_sentiment"] = NAME
    text: TextSection = TextSection()


def raw_location(store: Store) -> str:
    return store.data(NAME, "raw")


def ingest(spark, config: TweetSentimentConfig) -> int:
    store = Store(config.store)
    if not HadoopFS(spark).exists(raw_location(store)):
        frame = load_tweets().reset_index(drop=True)
        frame["row_id"] = range(len(frame))
        with atomic_output(spark, raw_location(store)) as temporary:
            spark.createDataFrame(frame[["row_id", "text", "label"]],
                                  "row_id long, text string, label int").write.parquet(temporary)
    return spark.read.parquet(raw_location(store)).count()


def _split(spark, config: TweetSentimentConfig):
    tweets = spark.read.parquet(raw_location(Store(config.store)))
    bucket = F.pmod(F.xxhash64(F.lit(config.training.seed + 1), "row_id"), F.lit(10_000)) / 10_000.0
    test = tweets.where(bucket < config.text.test_fraction)
    train = tweets.where(bucket >= config.text.test_fraction)
    if config.data.train_limit:
        train = train.where(F.col("row_id") < config.data.train_limit)
    if config.data.test_limit:
        test = test.limit(config.data.test_limit)
    return train, test


def prepare(spark, config: TweetSentimentConfig):
    train, test = _split(spark, config)
    tokenize = tokenizer()
    train_tokens = tokenize.transform(clean_text(train)).cache()
    vocabulary = fit_vocabulary(train_tokens, config.text.vocab_size, config.text.min_doc_freq)
    terms = vocabulary.vocabulary

    def sequences(df):
        return to_sequences(df, terms, config.text.max_length, output="features")

    train_seq = dl.with_validation_flag(sequences(train_tokens), config.training.validation_fraction,
                                       config.training.seed, "row_id")
    test_seq = sequences(tokenize.transform(clean_text(test)))
    prepared = dl.Prepared(
        train=train_seq, tests={"test": test_seq}, input_shape=(config.text.max_length,), label_column="label",
        label_shape=(), label_dtype="int32", output_shape=(len(LABELS),), output_activation="softmax",
        loss="sparse_categorical_crossentropy", metrics=("accuracy",), input_files=local_file_stats([tweets_csv_path()]),
        extra_params={"text.vocabulary_terms": len(terms)})
    return prepared, Pipeline(stages=[tokenize, vocabulary]).fit(train_tokens), (train, test)


def baseline_metrics(train, test, config: TweetSentimentConfig) -> dict:
    """TF-IDF + multinomial logistic regression in Spark ML, on the same split."""
    pipeline = Pipeline(stages=[tokenizer(), HashingTF(inputCol="tokens", outputCol="tf",
                                                       numFeatures=config.text.baseline_features),
                                IDF(inputCol="tf", outputCol="tfidf", minDocFreq=2),
                                LogisticRegression(featuresCol="tfidf", labelCol="label", maxIter=100,
                                                   regParam=0.01, family="multinomial")])
    model = pipeline.fit(clean_text(train))
    scored = model.transform(clean_text(test)).withColumn(
        "prediction", F.transform(F.sequence(F.lit(0), F.lit(len(LABELS) - 1)),
                                  lambda i: F.when(F.col("prediction").cast("int") == i, 1.0).otherwise(0.0)))
    return dl.classification_metrics(scored, classes=len(LABELS))


def evaluate(scored) -> dict:
    return dl.classification_metrics(scored, classes=len(LABELS))


def run(spark, config: TweetSentimentConfig) -> dl.DeepResult:
    from mlflow import MlflowClient

    ingest(spark, config)
    prepared, feature_pipeline, (train, test) = prepare(spark, config)
    result = dl.train_and_record(spark, config, prepared, evaluate, feature_pipeline=feature_pipeline)
    baseline = baseline_metrics(train, test, config)
    client = MlflowClient(result.tracking_uri)
    for key in ("accuracy", "macro_f1"):
        result.metrics[f"baseline_tfidf_logreg_{key}"] = baseline[key]
        client.log_metric(result.run_id, f"baseline_tfidf_logreg_{key}", baseline[key])
    return result


summary = dl.summary
CONFIG = TweetSentimentConfig
TUNING = dl.Tuning(ingest=ingest, prepare=lambda spark, config: prepare(spark, config)[0], evaluate=evaluate,
                   objective="val_accuracy", direction="maximize", test_metric="accuracy",
                   test_direction="maximize")
STAGES = {"ingest": ingest, "train": run, "run": run}
