"""The ``tweet_sentiment`` pipeline, declared here once and found by name:
3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline."""
from pipelines.tweet_sentiment import pipeline
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.runs.keras_run import summary
from spark_ml_pipeline.tune.keras_tuner import keras_tuner

PIPELINE = PipelineDefinition(
    kind=pipeline.NAME,
    config=pipeline.TweetSentimentConfig,
    stages={"ingest": pipeline.ingest, "train": pipeline.run, "run": pipeline.run},
    summary=summary,
    tuner=keras_tuner(pipeline.TUNING),
    description="3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline",
)
