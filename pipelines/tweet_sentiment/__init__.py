"""The ``tweet_sentiment`` pipeline, declared here once and found by name:
3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline."""
from pipelines.tweet_sentiment.pipeline import NAME, TweetSentimentConfig
from spark_ml_pipeline.runtime.discovery import Deferred, PipelineDefinition

STAGES = "pipelines.tweet_sentiment.pipeline"

PIPELINE = PipelineDefinition(
    kind=NAME,
    config=TweetSentimentConfig,
    stages={"ingest": Deferred(f"{STAGES}:ingest"), "train": Deferred(f"{STAGES}:run"),
            "run": Deferred(f"{STAGES}:run")},
    summary=Deferred("spark_ml_pipeline.runs.keras_run:summary"),
    tuner=Deferred(f"{STAGES}:tuner"),
    description="3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline",
)
