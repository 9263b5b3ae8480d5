"""Minimal reproduction: SparkXGBRegressor with features_col=[float columns] + validation_indicator_col."""
import numpy as np, pandas as pd
from pyspark.sql import SparkSession
from xgboost.spark import SparkXGBRegressor
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.maxRecordsPerBatch", "100").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
rng = np.random.default_rng(0)
pdf = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
pdf["label"] = pdf.a + pdf.b
pdf["is_val"] = np.arange(200) >= 160  # validation rows in the last Arrow batch only
df = spark.createDataFrame(pdf)
model = SparkXGBRegressor(features_col=["a", "b"], label_col="label", validation_indicator_col="is_val",
                          n_estimators=5).fit(df)
print("ok", model.transform(df).count())
