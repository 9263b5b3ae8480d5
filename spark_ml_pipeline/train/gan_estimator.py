"""A Spark ML Estimator that trains a GAN with Horovod: the Keras estimator's data writing and rank launching,
the GAN rank (:mod:`spark_ml_pipeline.train.gan_rank`) instead of ``model.fit``.

``fit(df)`` (an image array column and an integer class column) returns the *generator* as a
:class:`~spark_ml_pipeline.train.keras_estimator.KerasModel`: it scores a column of latent vectors (noise, then the
class one-hot for a conditional GAN) into a column of images. :func:`latent_stage` is the Spark stage that
builds that column from ``noise`` and ``label`` columns; a committed scoring pipeline is
``PipelineModel([latent_stage(spec), generator])``.
"""
from __future__ import annotations

import json
import os

from pyspark.ml.feature import SQLTransformer
from pyspark.sql import DataFrame

from spark_ml_pipeline.runtime.io import join, local_path
from spark_ml_pipeline.train.gan_rank import SAMPLES_DIR, GANRankSpec, train_gan_rank
from spark_ml_pipeline.train.keras_rank import read_checkpoint_state
from spark_ml_pipeline.train.keras_estimator import (KerasEstimator, KerasModel, KerasTrainingSummary,
                                                     _task_slots, scoring_batch_size)
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.gan import GANSpec

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"
GAN_TRAINING = KerasTrainingSettings(learning_rate=2e-4, batch_size=64, epochs=10, early_stopping_patience=0)


def latent_stage(spec: GANSpec, noise: str = "noise", label: str = "label", output: str = "latent") -> SQLTransformer:
    """Rows with ``noise`` (array of ``noise_dim`` numbers) and, conditional, an integer ``label`` -> ``latent``:
    the noise followed by the label's one-hot vector (what the generator reads). Native Spark SQL, saved with
    the model."""
    if spec.conditional:
        one_hot = (f"transform(sequence(0, {spec.classes - 1}), i -> CAST(IF(i = `{label}`, 1.0, 0.0) AS FLOAT))")
        expression = f"concat(CAST(`{noise}` AS ARRAY<FLOAT>), {one_hot})"
    else:
        expression = f"CAST(`{noise}` AS ARRAY<FLOAT>)"
    return SQLTransformer(statement=f"SELECT *, {expression} AS `{output}` FROM __THIS__")


class GANHorovodEstimator(KerasEstimator):
    """``modelSpec`` is a :class:`GANSpec` as JSON, ``inputShape`` the image shape, ``labelCol`` the integer class
    (read by a conditional GAN). The training settings' ``learning_rate`` is the generator's per-rank rate (the
    spec may give the discriminator its own); their ``optimizer``, ``augment``, schedule and early stopping, and
    the Keras estimator's ``loss`` and validation, do not apply."""

    def __init__(self, **kwargs):
        super().__init__()
        self._setDefault(trainingSettings=GAN_TRAINING, labelDtype="int32", predictionCol="image")
        self._set(**{k: v for k, v in kwargs.items() if v is not None})

    @classmethod
    def backends(cls) -> tuple[str, ...]:
        return ("horovod",)

    def gan_spec(self) -> GANSpec:
        return GANSpec(**json.loads(self.getOrDefault(self.modelSpec)))

    def validate(self, dataset: DataFrame | None = None) -> None:
        name = type(self).__name__
        for required in (self.inputShape, self.modelSpec, self.workDir):
            if not self.isDefined(required):
                raise ValueError(f"{name}: parameter {required.name} is required")
        for positive in (self.numProc, self.threadsPerRank):
            if self.getOrDefault(positive) < 1:
                raise ValueError(f"{name}: {positive.name} must be >= 1")
        if self.getOrDefault(self.device) not in ("cpu", "cuda"):
            raise ValueError(f"{name}: device must be cpu or cuda")
        if self.getOrDefault(self.backend) not in self.backends():
            raise ValueError(f"{name}: backend {self.getOrDefault(self.backend)} is not available for the GAN (its "
                             "custom training loop averages gradients with Horovod's allreduce); use horovod")
        try:
            self.gan_spec()
        except ValueError as exc:
            raise ValueError(f"{name}: modelSpec is not a GAN spec: {exc}") from None
        if dataset is not None:
            for column in (self.getOrDefault(self.featuresCol), self.getOrDefault(self.labelCol)):
                if column not in dataset.columns:
                    raise ValueError(f"{name}: input has no column {column!r} (columns: {', '.join(dataset.columns)})")
        slots = _task_slots(dataset)
        if self.getOrDefault(self.numProc) > slots:
            raise ValueError(f"{name}: numProc={self.getOrDefault(self.numProc)} exceeds the cluster's {slots} "
                             "task slots")

    def rank_spec(self, train_dir: str, validation_dir: str | None = None) -> GANRankSpec:
        g = self.getOrDefault
        work = local_path(g(self.workDir))
        return GANRankSpec(
            train_dir=train_dir, features_column=g(self.featuresCol), label_column=g(self.labelCol),
            image_shape=tuple(g(self.inputShape)), gan=self.gan_spec().model_dump(mode="json"),
            checkpoint_dir=str(work / "checkpoints"), output_model=str(work / GENERATOR_FILE),
            output_discriminator=str(work / DISCRIMINATOR_FILE), samples_dir=str(work / SAMPLES_DIR),
            training=self.getTrainingSettings(), threads_per_rank=g(self.threadsPerRank), device=g(self.device))

    def _fit(self, dataset: DataFrame) -> KerasModel:
        self.validate(dataset)
        g = self.getOrDefault
        # The GAN trains on every row: a validation flag, if any, is ignored (no validation split is written).
        training = dataset.drop(g(self.validationCol)) if g(self.validationCol) in dataset.columns else dataset
        data_dir, _ = self.write_data(training)
        spec = self.rank_spec(str(local_path(join(data_dir, "train"))))
        rank_results = self.run_ranks(dataset, train_gan_rank, spec)
        model = self._generator(spec)
        model.summary = KerasTrainingSummary(history=rank_results[0]["history"], rank_results=rank_results)
        return model

    def _generator(self, spec: GANRankSpec) -> KerasModel:
        g = self.getOrDefault
        return KerasModel(modelPath=spec.output_model, featuresCol="latent", inputShape=[self.gan_spec().latent_dim()],
                          predictionCol=g(self.predictionCol), batchSize=scoring_batch_size(spec.training))

    def finished_model(self) -> KerasModel | None:
        """The generator of a fit already finished in ``workDir`` (its history from the checkpoint state),
        without launching any rank; None when ``workDir`` holds no finished fit."""
        self.validate()
        spec = self.rank_spec(train_dir="")
        state = read_checkpoint_state(spec.checkpoint_dir)
        if not (state and state.get("finished") and os.path.exists(spec.output_model)):
            return None
        model = self._generator(spec)
        model.summary = KerasTrainingSummary(history=state.get("history", {}))
        return model
