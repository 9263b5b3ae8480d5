"""Text features for sequence models: cleaning, tokenising, a vocabulary, padded integer sequences.

All steps are Spark ML stages or native expressions. Token ids: 0 = padding, 1 = out of vocabulary,
2.. = vocabulary terms by frequency (CountVectorizer's order).
"""
from __future__ import annotations

from pyspark.ml.feature import CountVectorizer, CountVectorizerModel, RegexTokenizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

PAD, OOV = 0, 1


def clean_text(df: DataFrame, column: str = "text", output: str = "clean_text") -> DataFrame:
    """Lower-case; URLs, @mentions and the '#' of hashtags out; anything but letters and apostrophes
    becomes a space."""
    text = F.lower(F.col(column))
    text = F.regexp_replace(text, r"https?://\S+|www\.\S+", " ")
    text = F.regexp_replace(text, r"@\w+", " ")
    text = F.regexp_replace(text, r"#", " ")
    text = F.regexp_replace(text, r"[^a-z']+", " ")
    return df.withColumn(output, F.trim(text))


def tokenizer(input_col: str = "clean_text", output_col: str = "tokens") -> RegexTokenizer:
    return RegexTokenizer(inputCol=input_col, outputCol=output_col, pattern=r"\s+", minTokenLength=1)


def fit_vocabulary(tokens: DataFrame, vocab_size: int, min_df: float = 2.0,
                   input_col: str = "tokens") -> CountVectorizerModel:
    return CountVectorizer(inputCol=input_col, outputCol="_counts", vocabSize=vocab_size, minDF=min_df).fit(tokens)


def to_sequences(df: DataFrame, vocabulary: list[str], max_length: int, input_col: str = "tokens",
                 output: str = "sequence") -> DataFrame:
    """Map tokens to ids and pad/truncate to ``max_length`` (keeping the first tokens).

    The vocabulary is a small broadcast table joined on exploded tokens: native, scalable, no UDF."""
    spark = df.sparkSession
    vocab = spark.createDataFrame([(term, index + 2) for index, term in enumerate(vocabulary)],
                                  "_token string, _id int")
    keyed = df.withColumn("_row", F.monotonically_increasing_id())
    exploded = keyed.select("_row", F.posexplode(F.slice(F.col(input_col), 1, max_length)).alias("_pos", "_token"))
    ids = (exploded.join(F.broadcast(vocab), "_token", "left")
           .withColumn("_id", F.coalesce("_id", F.lit(OOV)))
           .groupBy("_row")
           .agg(F.array_sort(F.collect_list(F.struct("_pos", "_id"))).alias("_pairs")))
    padded = F.concat(F.transform(F.col("_pairs"), lambda p: p["_id"]),
                      F.array_repeat(F.lit(PAD), F.lit(max_length) - F.size("_pairs")))
    # Rows without tokens have no exploded rows: the left join gives them all-padding sequences.
    return (keyed.join(ids, "_row", "left")
            .withColumn(output, F.coalesce(padded, F.array_repeat(F.lit(PAD), max_length)))
            .drop("_row", "_pairs"))
