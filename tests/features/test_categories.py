"""Hashed categories: stable, bucketed, and missing categories as -1."""
from features.categories import HashCategories, hash_categories


def test_hash_categories_are_stable_and_nulls_become_minus_one(spark):
    df = spark.createDataFrame([("CMT", 1), ("VTS", 2), (None, None), ("CMT", 1)], "vendor_id string, rate_code int")
    hashed = hash_categories(df, ["vendor_id", "rate_code"]).collect()
    assert hashed[0]["vendor_id_hash"] == hashed[3]["vendor_id_hash"]
    assert hashed[0]["vendor_id_hash"] != hashed[1]["vendor_id_hash"]
    assert (hashed[2]["vendor_id_hash"], hashed[2]["rate_code_hash"]) == (-1, -1)
    bucketed = hash_categories(df, ["vendor_id"], num_buckets=8).collect()
    assert all(-1 <= r["vendor_id_hash"] < 8 for r in bucketed)


def test_a_model_saved_before_the_stages_moved_still_loads(spark, tmp_path):
    """Models saved when HashCategories, AssembleArray and GeoDistance lived in features.taxi / features.tabular
    name those modules in their metadata: the stages must still resolve there."""
    from pyspark.ml import PipelineModel

    from features.arrays import AssembleArray
    from features.geo import GeoDistance

    model = PipelineModel([HashCategories(inputCols=["c"]), AssembleArray(inputCols=["c_hash"]),
                           GeoDistance(outputCol="km", fromLatitudeCol="a", fromLongitudeCol="b", toLatitudeCol="a",
                                       toLongitudeCol="b")])
    model.write().save(str(tmp_path / "model"))
    old_names = {"features.categories.HashCategories": "features.taxi.HashCategories",
                 "features.arrays.AssembleArray": "features.taxi.AssembleArray",
                 "features.geo.GeoDistance": "features.tabular.GeoDistance"}
    rewritten = 0
    for metadata in (tmp_path / "model" / "stages").glob("*/metadata/part-*"):
        text = metadata.read_text()
        for new, old in old_names.items():
            if new in text:
                metadata.write_text(text.replace(new, old))
                (metadata.parent / f".{metadata.name}.crc").unlink()  # the checksum of the old text
                rewritten += 1
    assert rewritten == 3
    loaded = PipelineModel.load(str(tmp_path / "model"))
    df = spark.createDataFrame([("x", 40.0, -73.0)], "c string, a double, b double")
    assert loaded.transform(df).first()["km"] == 0.0
