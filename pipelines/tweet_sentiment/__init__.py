"""The ``tweet_sentiment`` pipeline, declared here once and found by name:
3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline."""
from pipelines.tweet_sentiment.pipeline import NAME, TweetSentimentConfig
from spark_ml_pipeline.runtime.discovery import whole_run_pipeline

PIPELINE = whole_run_pipeline(
    NAME, TweetSentimentConfig, "pipelines.tweet_sentiment.pipeline",
    description="3-class tweet sentiment, LSTM / BiLSTM next to a TF-IDF baseline",
    summary="spark_ml_pipeline.runs.keras_run:summary")
