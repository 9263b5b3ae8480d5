"""The taxi fare's second model family: a Keras MLP on the standardised taxi features, trained with Horovod.

The search can put it against XGBoost (``tune.space.family``). Its features are the same assembled array as
XGBoost's, standardised per position (:class:`features.scaling.StandardizeArray`, fitted on training rows
only) because a network needs centred inputs and cannot take NaN. Its validation metric is the RMSE of the
fare, the same unit as XGBoost's ``validation_rmse``.
"""
from __future__ import annotations

import json

from pydantic import Field, PositiveInt
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer

from spark_ml_pipeline.runtime.config_models import Section
from spark_ml_pipeline.train.keras_estimator import KerasHorovodEstimator
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.mlp import MLPSpec

SCALED_FEATURES = "features_scaled"
PREDICTION_ARRAY = "prediction_array"
RMSE_LOG = "root_mean_squared_error"  # Keras' log key of the RootMeanSquaredError metric


class KerasMLPSection(Section):
    """The MLP (``family: keras_mlp``): ``layers`` hidden layers of ``units`` each, Adam, MSE loss. Its training
    fields are training settings of the same names (:meth:`KerasTrainingSettings.from_section`); the others keep
    their defaults."""

    units: PositiveInt = 128
    layers: int = Field(2, ge=1, le=6)
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: PositiveInt = 512
    epochs: PositiveInt = 10
    early_stopping_patience: int = Field(3, ge=0)
    shuffle_buffer: PositiveInt = 20_000


def mlp_spec(section: KerasMLPSection) -> dict:
    return MLPSpec(hidden=[section.units] * section.layers, dropout=section.dropout,
                   batch_norm=section.batch_norm).model_dump(mode="json")


def estimator(section: KerasMLPSection, *, features_size: int, label: str, workers: int, threads: int,
              work_dir: str, seed: int = 0, data_dir: str | None = None,
              trial_reporting: str | None = None) -> KerasHorovodEstimator:
    """The Horovod estimator of the MLP on ``SCALED_FEATURES`` -> ``label`` (a fare, one output)."""
    optional = {k: v for k, v in (("dataDir", data_dir), ("trialReporting", trial_reporting)) if v}
    return KerasHorovodEstimator(
        featuresCol=SCALED_FEATURES, inputShape=[features_size], labelCol=label, labelShape=[1],
        labelDtype="float32", modelSpec=json.dumps(mlp_spec(section)), outputShape=[1], loss="mse",
        metrics=["RootMeanSquaredError"], trainingSettings=KerasTrainingSettings.from_section(section, seed=seed),
        numProc=workers, threadsPerRank=threads, workDir=work_dir, predictionCol=PREDICTION_ARRAY, **optional)


def scoring_pipeline(feature_stages: list, scaler_model, keras_model) -> PipelineModel:
    """Trips -> features -> standardised -> MLP -> a scalar ``prediction`` column, like the XGBoost model."""
    flatten = SQLTransformer(statement=f"SELECT *, CAST({PREDICTION_ARRAY}[0] AS DOUBLE) AS prediction "
                                       "FROM __THIS__")
    return PipelineModel(stages=[*feature_stages, scaler_model, keras_model, flatten])
