"""The ``fashion_gan`` pipeline: a (conditional) DCGAN on Fashion-MNIST trained with Horovod on Spark.

It reads the Fashion-MNIST images (:mod:`spark_ml_pipeline.ingest.fashion_mnist`, ingesting them if absent),
trains the generator and discriminator with :class:`~spark_ml_pipeline.train.gan_estimator.GANHorovodEstimator`
(both optimizers' gradients averaged across ranks, rank-0 checkpoints, resume), and records one MLflow run: the
per-epoch losses, the per-epoch sample grids (``samples/epoch-NNNN.png``), the judge's figures when
``judge.model_uri`` names a Fashion-MNIST classifier (:mod:`.judge`), and the generator committed as a Spark
``PipelineModel`` (noise + label -> latent -> image) that scores rows of ``row_id``, ``label``, ``noise``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, PositiveInt
from pyspark.ml import PipelineModel

from features.images import pixel_feature_stages
from pipelines.fashion_gan.judge import Judgement, judge
from spark_ml_pipeline.ingest.fashion_mnist import ingest_fashion_mnist, input_files, read_images
from spark_ml_pipeline.runtime.config_models import Section
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.report import figures, sections
from spark_ml_pipeline.runtime.io import local_path
from spark_ml_pipeline.runs.keras_run import DeepResult
from spark_ml_pipeline.runs.keras_run import summary as keras_summary
from spark_ml_pipeline.store.recorder import RunRecorder
from spark_ml_pipeline.train import deep_learning as dl
from spark_ml_pipeline.train.gan_estimator import GANHorovodEstimator, latent_stage
from spark_ml_pipeline.train.gan_rank import SAMPLES_DIR
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.gan import GANSpec
from spark_ml_pipeline.tune.gan_tuner import GanTuning, gan_tuner

NAME = "fashion_gan"
IMAGE_SHAPE = (28, 28)


class JudgeSection(Section):
    """The classifier that judges generated samples: a committed ``fashion_mnist`` model (its run's model URI);
    null = not judged."""

    model_uri: Optional[str] = None
    samples_per_class: PositiveInt = 100
    confidence: float = Field(0.9, gt=0, lt=1)
    seed: int = 1234
    truncation: Optional[float] = Field(None, gt=0)  # noise redrawn outside ±truncation (null: plain normal)


class FashionGanConfig(dl.DeepPipelineConfig):
    pipeline: str = NAME
    kind: Literal["fashion_gan"] = NAME
    model: GANSpec
    judge: JudgeSection = JudgeSection()


def ingest(spark, config: FashionGanConfig) -> dict[str, int]:
    return ingest_fashion_mnist(spark, config.store)


def training_images(spark, config: FashionGanConfig):
    """``features`` (784 pixels in [0, 1]) and ``label`` of the training split's first ``data.train_limit`` rows."""
    images = read_images(spark, config.store, "train", config.data.train_limit)
    return PipelineModel(pixel_feature_stages()).transform(images)


def estimator_for(config: FashionGanConfig) -> GANHorovodEstimator:
    return GANHorovodEstimator(
        featuresCol="features", inputShape=list(IMAGE_SHAPE), labelCol="label",
        modelSpec=config.model.model_dump_json(), trainingSettings=KerasTrainingSettings.from_section(config.training),
        backend=config.training.backend, numProc=config.training.num_proc,
        threadsPerRank=dl.threads_per_rank(config), device=config.compute.device, workDir=dl.work_location(config))


def scoring_pipeline(config: FashionGanConfig, generator) -> PipelineModel:
    """What is committed and scored: rows of noise + label -> the latent vector -> the generator's image."""
    return PipelineModel(stages=[latent_stage(config.model), generator])


def run(spark, config: FashionGanConfig) -> DeepResult:
    started = time.time()
    ingest(spark, config)
    train = training_images(spark, config)
    estimator = estimator_for(config)
    dl.check_parameters(estimator, train)
    with RunRecorder(spark, config, tags={"model_kind": config.model.kind}) as recorder:
        recorder.log_config(("model", "training", "data", "judge"))
        recorder.log_lineage(input_files())
        fit_started = time.time()
        generator = estimator.fit(train)
        fit_seconds = time.time() - fit_started
        recorder.log_history(generator.summary.history)
        samples = local_path(dl.work_location(config)) / SAMPLES_DIR
        recorder.log_artifacts(str(samples), SAMPLES_DIR)
        scoring = scoring_pipeline(config, generator)
        metrics = {"fit_seconds": fit_seconds, "epochs_trained": generator.summary.epochs_trained}
        judgement = None
        if config.judge.model_uri:
            judgement = judge_generator(spark, config, scoring)
            metrics.update(judgement.metrics)
            recorder.set_tags({"judge_model_uri": config.judge.model_uri})
        rows = {"rows_train": generator.summary.rows}
        recorder.log_metrics({**metrics, **rows})
        model_uri = recorder.commit_model(scoring)
        report_uri = None
        if config.report.enabled:
            report_uri = recorder.log_report(run_report(recorder, config, generator.summary.history, samples,
                                                        {**metrics, **rows}, judgement), model_uri=model_uri)
    return DeepResult(run_id=recorder.run_id, model_uri=model_uri, metrics=metrics,
                      history=generator.summary.history, rows=rows, tracking_uri=recorder.tracking_uri,
                      seconds=time.time() - started, model=generator, report=report_uri)


def judge_generator(spark, config: FashionGanConfig, generator: PipelineModel, seed: int | None = None) -> Judgement:
    """The judge's verdict on ``generator`` (noise + label -> image), next to the same classifier's on as many real
    test images; ``seed`` draws other noise than the run's (the search's held-out figures)."""
    j = config.judge
    real = read_images(spark, config.store, "test", j.samples_per_class * 10)  # as many, for scale
    return judge(spark, generator, config.model, j.model_uri, j.samples_per_class, j.confidence,
                 j.seed if seed is None else seed, real_images=real, truncation=j.truncation)


def check_tunable(config: FashionGanConfig) -> None:
    if not config.judge.model_uri:
        raise ConfigError(f"{NAME}: the search judges every trial's samples: set judge.model_uri=<a fashion_mnist "
                          "run's model URI>")
    if not config.model.conditional:
        raise ConfigError(f"{NAME}: the search's objective is the share of samples judged as the class asked for: "
                          "models.dcgan.conditional must be true")


def judged_metrics(spark, config: FashionGanConfig, generator: PipelineModel, seed: int | None) -> dict:
    return judge_generator(spark, config, generator, seed).metrics


# The search's objective: the share of generated samples the classifier assigns to the class asked for (high only
# when the images are recognisable *and* every class is drawn: it is asked for evenly).
TUNING = GanTuning(check=check_tunable, ingest=ingest, images=training_images, estimator=estimator_for,
                   scoring=scoring_pipeline, judge=judged_metrics, objective="judge_requested_class_share")


def run_report(recorder: RunRecorder, config: FashionGanConfig, history: dict, samples: Path, metrics: dict,
               judgement: Judgement | None):
    """The run's page: figures, losses per epoch, the first and last epochs' sample grids, the judge per class."""
    report = recorder.report(model=config.model.kind, ranks=config.training.num_proc)
    sections.metrics_table(report, metrics)
    report.figure("Learning curves", figures.learning_curves(history, "epoch"),
                  note="Per epoch, averaged over the ranks: the discriminator's loss on a real and a generated batch "
                       "(d_loss), the generator's non-saturating loss (g_loss), and the discriminator's accuracy on "
                       "each kind. A GAN's losses do not fall to zero: the two networks play against each other.")
    grids = sorted(samples.glob("epoch-*.png"))
    shown = [grids[0], grids[-1]] if len(grids) > 1 else grids
    sections.generated_samples(
        report, [(f"after epoch {int(p.stem.split('-')[1])}", p.read_bytes()) for p in shown],
        note=("One row per class (T-shirt/top at the top, ankle boot at the bottom), one column per fixed noise "
              "vector: the same latents every epoch" if config.model.conditional else
              "100 samples from fixed noise: the same latents every epoch")
        + " (plain normal noise: the generator's whole variety, whatever the judge's truncation).")
    if judgement is None:
        report.unavailable("Generated samples, judged per class", "no judge.model_uri was given")
    elif judgement.per_class:
        sections.judged_classes(report, judgement.per_class,
                                note=f"{config.judge.samples_per_class} samples per class judged by the fashion_mnist "
                                     f"classifier {config.judge.model_uri}, {noise_drawn(config.judge.truncation)}.")
    return report


def noise_drawn(truncation: float | None) -> str:
    """How the judged samples' noise was drawn, in the report's words."""
    if truncation is None:
        return "drawn from plain standard normal noise"
    return (f"drawn from noise truncated at ±{truncation:g} (the truncation trick: every value outside is redrawn, "
            "so the samples are clearer and less varied than from plain normal noise; judge.truncation: null judges "
            "plain noise)")


def summary(result: DeepResult, config: FashionGanConfig) -> str:
    return keras_summary(result, config) + f"\n  samples {SAMPLES_DIR}/epoch-*.png (artifacts of the run)"


# The search's tuner factory (pipelines/fashion_gan/__init__.py names it).
tuner = gan_tuner(TUNING)
