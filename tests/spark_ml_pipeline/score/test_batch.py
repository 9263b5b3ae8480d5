"""Batch scoring's commit: keys untouched by the model, vectors as arrays, partitions replaced by date, refusals."""
import json

import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.quarantine import REASON, tag_rows
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.errors import ConfigError, DataError
from spark_ml_pipeline.score.batch import read_stats, score, split_locations, summary
from spark_ml_pipeline.score.scorer import PipelineScorer, ScoringInput
from spark_ml_pipeline.store.registry import ResolvedModel


def test_input_and_output_are_taken_off_the_overrides():
    locations, rest = split_locations(["model.max_depth=3", "input=s3a://b/in/x=1", "output=/tmp/out", "a.b=c"])
    assert (locations.input, locations.output) == ("s3a://b/in/x=1", "/tmp/out")
    assert rest == ["model.max_depth=3", "a.b=c"]
    with pytest.raises(ConfigError, match="missing output=URI"):
        split_locations(["input=/tmp/in"])
    with pytest.raises(ConfigError, match=r"missing input=URI and output=URI"):
        split_locations([])


@pytest.fixture(scope="module")
def toy_model(spark, tmp_path_factory):
    """A saved PipelineModel whose first stage overwrites a key column and whose outputs include an ML vector."""
    model = PipelineModel(stages=[
        SQLTransformer(statement="SELECT *, x * 2.0 AS prediction, CAST(-1 AS BIGINT) AS id FROM __THIS__"),
        VectorAssembler(inputCols=["x", "prediction"], outputCol="probability"),
    ])
    location = str(tmp_path_factory.mktemp("toy_model") / "model")
    model.write().overwrite().save(location)
    return ResolvedModel(uri=location, version="7", run_id="0" * 32)


def toy_scorer(rows_in_offset=0):
    def read(spark, source):
        raw = spark.read.parquet(source)
        tagged = tag_rows(raw, [("missing_x", F.col("x").isNull()), ("negative_x", F.col("x") < 0)])
        return ScoringInput(valid=tagged.where(F.col(REASON).isNull()).drop(REASON),
                            quarantine=tagged.where(F.col(REASON).isNotNull()),
                            rows_in=raw.count() + rows_in_offset, keys=["id"])
    return PipelineScorer(read=read, outputs=["prediction", "probability"])


def config(date):
    return PipelineConfigBase(pipeline="toy", kind="toy", run_date=date)


def test_scores_commits_by_date_and_refuses_rows_it_cannot_account_for(spark, tmp_path, toy_model):
    source = str(tmp_path / "in")
    spark.createDataFrame([(i, float(i) if i % 5 else None) for i in range(-3, 20)], "id long, x double") \
        .write.parquet(source)
    output = tmp_path / "out"

    result = score(spark, config("2026-01-01"), toy_scorer(), toy_model, source, str(output), reference_name="7")
    assert (result.rows_in, result.rows_scored, result.rows_quarantined) == (23, 16, 7)
    assert result.quarantined_by_reason == {"missing_x": 4, "negative_x": 3}
    assert "scored 16 · quarantined 7 (missing_x 4, negative_x 3)" in summary(result)
    rows = spark.read.parquet(str(output)).orderBy("id").collect()
    assert [r["id"] for r in rows] == [i for i in range(1, 20) if i % 5]  # the key as read, not as the model left it
    assert all(r["prediction"] == 2 * r["id"] and r["probability"] == [float(r["id"]), 2.0 * r["id"]] for r in rows)
    assert {(r["model_version"], r["run_id"], str(r["run_date"])) for r in rows} == {("7", "0" * 32, "2026-01-01")}
    types = dict(spark.read.parquet(str(output)).dtypes)
    assert types["probability"] == "array<double>" and types["run_date"] == "date"
    quarantine = spark.read.parquet(str(output / "_quarantine"))
    assert quarantine.count() == 7 and {r[REASON] for r in quarantine.collect()} == {"missing_x", "negative_x"}
    stats = read_stats(spark, str(output), "2026-01-01")
    assert stats["rows_in"] == 23 and stats["model_version"] == "7" and stats["keys"] == ["id"]

    # Another date: a second partition, the first untouched; the same date again: replaced, still one partition.
    first = sorted(p.name for p in (output / "run_date=2026-01-01").iterdir())
    score(spark, config("2026-01-02"), toy_scorer(), toy_model, source, str(output))
    score(spark, config("2026-01-02"), toy_scorer(), toy_model, source, str(output))
    assert sorted(p.name for p in output.iterdir()) == ["_quarantine", "run_date=2026-01-01", "run_date=2026-01-02"]
    assert sorted(p.name for p in (output / "run_date=2026-01-01").iterdir()) == first
    assert sorted(p.name for p in (output / "_quarantine").iterdir()) == ["run_date=2026-01-01",
                                                                         "run_date=2026-01-02"]
    assert spark.read.parquet(str(output)).count() == 32

    # Rows that cannot be accounted for: nothing is committed, the date's previous output stays.
    with pytest.raises(DataError, match=r"read 24 rows but accounted for 16 scored \+ 7 quarantined; refusing"):
        score(spark, config("2026-01-02"), toy_scorer(rows_in_offset=1), toy_model, source, str(output))
    assert json.loads((output / "run_date=2026-01-02" / "_scoring.json").read_text())["rows_in"] == 23
    assert sorted(p.name for p in output.iterdir()) == ["_quarantine", "run_date=2026-01-01", "run_date=2026-01-02"]
    assert not list((output / "_quarantine").glob(".*"))


def test_model_without_the_declared_output_is_a_clear_error(spark, tmp_path, toy_model):
    source = str(tmp_path / "in")
    spark.createDataFrame([(1, 1.0)], "id long, x double").write.parquet(source)
    scorer = PipelineScorer(read=toy_scorer().read, outputs=["prediction", "raw_prediction"])
    with pytest.raises(DataError, match="produced no column.s. raw_prediction"):
        score(spark, config("2026-01-01"), scorer, toy_model, source, str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="must not be the input or lie inside it"):
        score(spark, config("2026-01-01"), toy_scorer(), toy_model, source, source + "/predictions")
