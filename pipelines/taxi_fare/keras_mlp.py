"""The taxi fare's second model family: a Keras MLP on the standardised taxi features, trained with Horovod.

The search can put it against XGBoost (``tune.space.family``). Its features are the same assembled array as
XGBoost's, standardised per position (:class:`features.scaling.StandardizeArray`, fitted on training rows
only) because a network needs centred inputs and cannot take NaN. Its validation metric is the RMSE of the
fare, the same unit as XGBoost's ``validation_rmse``.
"""
from __future__ import annotations

import json

from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer

from pipelines.taxi_fare.config import KerasMLPSection
from spark_ml_pipeline.train.keras_estimator import KerasEstimator
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.mlp import MLPSpec

SCALED_FEATURES = "features_scaled"
PREDICTION_ARRAY = "prediction_array"
RMSE_LOG = "root_mean_squared_error"  # Keras' log key of the RootMeanSquaredError metric


def mlp_spec(section: KerasMLPSection) -> dict:
    return MLPSpec(hidden=[section.units] * section.layers, dropout=section.dropout,
                   batch_norm=section.batch_norm).model_dump(mode="json")


def estimator(section: KerasMLPSection, *, features_size: int, label: str, workers: int, threads: int,
              work_dir: str, seed: int = 0, data_dir: str | None = None,
              trial_reporting: str | None = None) -> KerasEstimator:
    """The Horovod estimator of the MLP on ``SCALED_FEATURES`` -> ``label`` (a fare, one output)."""
    optional = {k: v for k, v in (("dataDir", data_dir), ("trialReporting", trial_reporting)) if v}
    return KerasEstimator(
        featuresCol=SCALED_FEATURES, inputShape=[features_size], labelCol=label, labelShape=[1],
        labelDtype="float32", modelSpec=json.dumps(mlp_spec(section)), outputShape=[1], loss="mse",
        metrics=["RootMeanSquaredError"], trainingSettings=KerasTrainingSettings.from_section(section, seed=seed),
        numProc=workers, threadsPerRank=threads, workDir=work_dir, predictionCol=PREDICTION_ARRAY, **optional)


def scoring_pipeline(feature_stages: list, scaler_model, keras_model) -> PipelineModel:
    """Trips -> features -> standardised -> MLP -> a scalar ``prediction`` column, like the XGBoost model."""
    flatten = SQLTransformer(statement=f"SELECT *, CAST({PREDICTION_ARRAY}[0] AS DOUBLE) AS prediction "
                                       "FROM __THIS__")
    return PipelineModel(stages=[*feature_stages, scaler_model, keras_model, flatten])
