"""The ``fashion_gan`` pipeline: a (conditional) DCGAN on Fashion-MNIST trained with Horovod on Spark.

It reads the images the ``fashion_mnist`` pipeline ingests (ingesting them if absent), trains the generator and
discriminator with :class:`~spark_ml_pipeline.train.gan_estimator.GANHorovodEstimator` (both optimizers'
gradients averaged across ranks, rank-0 checkpoints, resume), and records one MLflow run: the per-epoch losses,
the per-epoch sample grids (``samples/epoch-NNNN.png``), the judge's figures when ``judge.model_uri`` names a
Fashion-MNIST classifier (:mod:`.judge`), and the generator committed as a Spark ``PipelineModel``
(noise + label -> latent -> image) that scores rows of ``row_id``, ``label``, ``noise``.
"""
from __future__ import annotations

import time
from typing import Literal, Optional

from pydantic import Field, PositiveInt
from pyspark.ml import PipelineModel

from pipelines.fashion_gan.judge import judge
from pipelines.fashion_mnist.images import feature_stages, ingest_fashion_mnist, input_files, read_images
from spark_ml_pipeline.runtime.config_models import Section
from spark_ml_pipeline.runtime.io import local_path
from spark_ml_pipeline.store.keras_run import DeepResult
from spark_ml_pipeline.store.keras_run import summary as keras_summary
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.gan_estimator import GANHorovodEstimator, latent_stage
from spark_ml_pipeline.train.gan_rank import SAMPLES_DIR
from spark_ml_pipeline.train.models.gan import GANSpec

NAME = "fashion_gan"
IMAGE_SHAPE = (28, 28)


class JudgeSection(Section):
    """The classifier that judges generated samples: a committed ``fashion_mnist`` model (its run's model URI);
    null = not judged."""

    model_uri: Optional[str] = None
    samples_per_class: PositiveInt = 100
    confidence: float = Field(0.9, gt=0, lt=1)
    seed: int = 1234


class FashionGanConfig(dl.DeepPipelineConfig):
    pipeline: str = NAME
    kind: Literal["fashion_gan"] = NAME
    model: GANSpec
    judge: JudgeSection = JudgeSection()


def ingest(spark, config: FashionGanConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, config.store)


def training_images(spark, config: FashionGanConfig):
    """``features`` (784 pixels in [0, 1]) and ``label`` of the training split's first ``data.train_limit`` rows."""
    return PipelineModel(feature_stages()).transform(read_images(spark, config.store, "train", config.data.train_limit))


def estimator_for(config: FashionGanConfig) -> GANHorovodEstimator:
    t = config.training
    return GANHorovodEstimator(
        featuresCol="features", inputShape=list(IMAGE_SHAPE), labelCol="label",
        modelSpec=config.model.model_dump_json(), learningRate=t.learning_rate, batchSize=t.batch_size,
        epochs=t.epochs, numProc=t.num_proc, threadsPerRank=dl.threads_per_rank(config),
        shuffleBuffer=t.shuffle_buffer, seed=t.seed, recalibrateBatchNorm=t.recalibrate_batch_norm,
        device=config.compute.device, workDir=dl.work_location(config))


def run(spark, config: FashionGanConfig) -> DeepResult:
    started = time.time()
    ingest(spark, config)
    train = training_images(spark, config)
    estimator = estimator_for(config)
    estimator.validate(train)
    with RunRecorder(spark, config, tags={"model_kind": config.model.kind}) as recorder:
        recorder.log_config(("model", "training", "data", "judge"))
        recorder.log_lineage(input_files())
        fit_started = time.time()
        generator = estimator.fit(train)
        fit_seconds = time.time() - fit_started
        recorder.log_history(generator.summary.history)
        samples = local_path(dl.work_location(config)) / SAMPLES_DIR
        recorder.log_artifacts(str(samples), SAMPLES_DIR)
        scoring = PipelineModel(stages=[latent_stage(config.model), generator])
        metrics = {"fit_seconds": fit_seconds, "epochs_trained": generator.summary.epochs_trained}
        if config.judge.model_uri:
            j = config.judge
            real = read_images(spark, config.store, "test", j.samples_per_class * 10)  # as many, for scale
            metrics.update(judge(spark, scoring, config.model, j.model_uri, j.samples_per_class, j.confidence,
                                 j.seed, real_images=real))
            recorder.set_tags({"judge_model_uri": j.model_uri})
        rows = {"rows_train": generator.summary.rows}
        recorder.log_metrics({**metrics, **rows})
        model_uri = recorder.commit_model(scoring)
    return DeepResult(run_id=recorder.run_id, model_uri=model_uri, metrics=metrics,
                      history=generator.summary.history, rows=rows, tracking_uri=recorder.tracking_uri,
                      seconds=time.time() - started, model=generator)


def summary(result: DeepResult, config: FashionGanConfig) -> str:
    return keras_summary(result, config) + f"\n  samples {SAMPLES_DIR}/epoch-*.png (artifacts of the run)"
