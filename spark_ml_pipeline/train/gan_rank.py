"""What every Horovod rank runs to train a GAN: the generic rank's data reading, checkpoint files and progress
line, with a custom training step instead of ``model.fit``.

``model.fit`` trains one model with one optimizer; a GAN alternates two: each step the discriminator learns
from a real and a generated batch, then the generator learns to fool it. Both steps take their gradients from
a :class:`horovod.tensorflow.DistributedGradientTape`, so *both* optimizers apply gradients averaged across the
ranks (the ranks read disjoint shards and draw their own noise), and every rank applies the same update: the
weights stay identical. Variables (both models and both optimizers' slots) are broadcast from rank 0 before
the first step; the batch-norm statistics of the generator (not trained by gradients, but moved by each rank's
own batches) are averaged across ranks after every epoch, so they too are identical everywhere.

Rank 0 checkpoints both models and both optimizers' state after every epoch (``checkpoint.json`` last, as the
generic rank does); a rerun of the same fit resumes after the last checkpoint. Rank 0 also writes a sample grid
per epoch (``<work>/samples/epoch-NNNN.png``: one row per class for a conditional GAN, from fixed noise, so
the grids of successive epochs are comparable).

Imported inside the rank processes: numpy, pyarrow, TensorFlow, Horovod, Pillow and the model code only.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from spark_ml_pipeline.train.keras_rank import (PROGRESS_LOG, RankResult, _checkpoint_files, _dataset,
                                                  _optimizer_variables, _restore_optimizer, _write_state,
                                                  column_to_array, progress_line, read_checkpoint_state, read_shard,
                                                  recalibrate_batch_norm)
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.models.gan import GANSpec, build_discriminator, build_generator, latent_vectors
from spark_ml_pipeline.train.models.loading import load_keras_model
from spark_ml_pipeline.train.rank_backends import start_rank
from spark_ml_pipeline.train.rank_test_hooks import RankTestHooks

SAMPLES_DIR = "samples"
GRID_COLUMNS = 10


@dataclass(frozen=True)
class GANRankSpec:
    """Everything a GAN rank needs, picklable and free of Spark objects."""

    train_dir: str
    features_column: str
    label_column: str
    image_shape: tuple[int, ...]
    gan: dict  # a GANSpec as a dict
    checkpoint_dir: str
    output_model: str  # the generator
    output_discriminator: str
    samples_dir: str
    # How to train, whole as the estimator was given it. A GAN reads its learning_rate (the generator's, per rank,
    # scaled by the number of ranks), batch_size, epochs, shuffle_buffer, seed and recalibrate_batch_norm (batches
    # of random latents that re-estimate the generator's batch-norm statistics).
    training: KerasTrainingSettings
    threads_per_rank: int
    device: str


def sample_grid(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, H, W) images in [0, 1] -> one uint8 (rows*H, columns*W) picture, row-major, 1-pixel gaps."""
    count, height, width = images.shape[:3]
    rows = -(-count // columns)
    grid = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1), dtype="float32")
    for i, image in enumerate(images.reshape(count, height, width)):
        r, c = divmod(i, columns)
        grid[r * (height + 1):r * (height + 1) + height, c * (width + 1):c * (width + 1) + width] = image
    return (np.clip(grid, 0.0, 1.0) * 255).round().astype("uint8")


def write_png(picture: np.ndarray, path: str) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = os.path.join(os.path.dirname(path), f".partial-{os.path.basename(path)}")
    Image.fromarray(picture, mode="L").save(temporary, format="PNG")
    os.replace(temporary, path)


def grid_latents(spec: GANSpec, seed: int) -> np.ndarray:
    """Fixed latents of the per-epoch grids: conditional, one row per class with the same noise in every row
    (so a column shows one noise vector as every class); else 100 noise vectors."""
    rng = np.random.default_rng(seed)
    if spec.conditional:
        noise = np.tile(rng.standard_normal((GRID_COLUMNS, spec.noise_dim)), (spec.classes, 1))
        labels = np.repeat(np.arange(spec.classes), GRID_COLUMNS)
    else:
        noise, labels = rng.standard_normal((GRID_COLUMNS * GRID_COLUMNS, spec.noise_dim)), None
    return latent_vectors(noise, labels, spec)


def _checkpoint_names(epoch: int) -> dict[str, str]:
    # Names the generic rank's clean-up patterns (epoch-*.keras, optimizer-*.npz) cover.
    return {"model": f"epoch-{epoch:04d}-generator.keras", "discriminator": f"epoch-{epoch:04d}-discriminator.keras",
            "optimizer": f"optimizer-{epoch:04d}-generator.npz",
            "discriminator_optimizer": f"optimizer-{epoch:04d}-discriminator.npz"}


def save_checkpoint(checkpoint_dir: str, epoch: int, generator, discriminator, g_optimizer, d_optimizer,
                    history: dict) -> None:
    """Both models and both optimizers' state under hidden names, renamed into place, then the state file
    (atomically): a rank killed mid-save leaves the previous checkpoint valid."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    names = _checkpoint_names(epoch)
    generator.save(os.path.join(checkpoint_dir, f".partial-{names['model']}"))
    discriminator.save(os.path.join(checkpoint_dir, f".partial-{names['discriminator']}"))
    for key, optimizer in (("optimizer", g_optimizer), ("discriminator_optimizer", d_optimizer)):
        np.savez(os.path.join(checkpoint_dir, f".partial-{names[key]}"),
                 *[v.numpy() for v in _optimizer_variables(optimizer)])
    for name in names.values():
        os.replace(os.path.join(checkpoint_dir, f".partial-{name}"), os.path.join(checkpoint_dir, name))
    _write_state(checkpoint_dir, {"epoch": epoch, **names, "history": history})
    for old in _checkpoint_files(checkpoint_dir):
        if os.path.basename(old) not in names.values():
            os.remove(old)


def mark_finished(checkpoint_dir: str) -> None:
    """A completed fit is not resumed: its state says finished, its checkpoint files are deleted."""
    state = read_checkpoint_state(checkpoint_dir)
    if state is None:
        return
    _write_state(checkpoint_dir, {"epoch": state["epoch"], "history": state.get("history", {}), "finished": True})
    for stale in _checkpoint_files(checkpoint_dir):
        os.remove(stale)


def _sync_non_trainable(models) -> None:
    """Average the batch-norm moving statistics across ranks (each rank moved them with its own batches)."""
    import horovod.tensorflow as hvd

    for model in models:
        for variable in model.non_trainable_variables:
            variable.assign(hvd.allreduce(variable, op=hvd.Average))


STEP_METRICS = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")


def gan_train_step(gan: GANSpec, generator, discriminator, g_optimizer, d_optimizer, wrap_tape=lambda tape: tape):
    """The GAN's training step as a ``tf.function`` ``step(images, labels, train_discriminator=True,
    train_generator=True)`` returning :data:`STEP_METRICS`: the discriminator learns from a real and a generated
    batch of the same classes, then the generator (non-saturating loss) learns to make the updated discriminator
    call fresh samples real. ``wrap_tape`` wraps each gradient tape: ``hvd.DistributedGradientTape`` in the ranks
    (gradients averaged before each update), nothing in-process. Either half can be switched off (the overfitting
    check trains each alone)."""
    import tensorflow as tf
    from tensorflow import keras

    for optimizer, model in ((g_optimizer, generator), (d_optimizer, discriminator)):
        optimizer.build(model.trainable_variables)  # not inside the tf.function (a no-op when built already)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    real_target = 1.0 - gan.label_smoothing

    def discriminate(images, labels, training):
        inputs = [images, tf.reshape(labels, (-1, 1))] if gan.conditional else images
        return discriminator(inputs, training=training)

    def latents(labels, batch):
        noise = tf.random.normal((batch, gan.noise_dim))
        if not gan.conditional:
            return noise
        return tf.concat([noise, tf.one_hot(labels, gan.classes)], axis=1)

    @tf.function
    def step(images, labels, train_discriminator=True, train_generator=True):
        batch = tf.shape(images)[0]
        with tf.GradientTape() as tape:
            fake = generator(latents(labels, batch), training=True)
            real_logits = discriminate(images, labels, True)
            fake_logits = discriminate(fake, labels, True)
            d_loss = (cross_entropy(tf.fill(tf.shape(real_logits), real_target), real_logits)
                      + cross_entropy(tf.zeros_like(fake_logits), fake_logits))
        if train_discriminator:
            tape = wrap_tape(tape)
            d_optimizer.apply_gradients(zip(tape.gradient(d_loss, discriminator.trainable_variables),
                                            discriminator.trainable_variables))
        with tf.GradientTape() as tape:
            fake = generator(latents(labels, batch), training=True)
            fooled_logits = discriminate(fake, labels, True)
            g_loss = cross_entropy(tf.ones_like(fooled_logits), fooled_logits)
        if train_generator:
            tape = wrap_tape(tape)
            g_optimizer.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_variables),
                                            generator.trainable_variables))
        return tf.stack([d_loss, g_loss, tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)),
                         tf.reduce_mean(tf.cast(fake_logits < 0, tf.float32))])

    return step


def train_gan_rank(spec: GANRankSpec) -> dict:
    """The Horovod training function of a GAN: one call per rank."""
    import horovod.tensorflow as hvd
    import tensorflow as tf
    from tensorflow import keras

    settings = spec.training
    hooks = RankTestHooks.from_environment()
    rank, size = start_rank(hvd, spec.threads_per_rank, spec.device, settings.seed)
    gan = GANSpec(**spec.gan)

    table, row_ids = read_shard(spec.train_dir, [spec.features_column, spec.label_column], rank, size)
    x = column_to_array(table, spec.features_column, spec.image_shape, "float32")
    y = column_to_array(table, spec.label_column, (), "int32")
    steps = max(1, len(x) // settings.batch_size)
    batches = iter(_dataset(x, y, settings.batch_size, settings.shuffle_buffer, settings.seed + rank, training=True))

    state = read_checkpoint_state(spec.checkpoint_dir)
    finished = bool(state and state.get("finished")) and os.path.exists(spec.output_model)
    generator = discriminator = None
    initial_epoch, history = 0, {}
    if finished:
        generator = load_keras_model(spec.output_model)
        initial_epoch, history = int(state["epoch"]) + 1, state.get("history", {})
    elif state is not None and not state.get("finished"):
        generator = load_keras_model(os.path.join(spec.checkpoint_dir, state["model"]))
        discriminator = load_keras_model(os.path.join(spec.checkpoint_dir, state["discriminator"]))
        initial_epoch, history = int(state["epoch"]) + 1, state.get("history", {})
    if generator is None:
        generator = build_generator(gan, spec.image_shape)
    if discriminator is None:
        discriminator = build_discriminator(gan, spec.image_shape)
    history = {k: list(v) for k, v in history.items()}

    # Data parallelism: gradients averaged over `size` ranks = a `size` times larger batch; rates scaled.
    g_rate = settings.learning_rate * size
    d_rate = (gan.discriminator_learning_rate or settings.learning_rate) * size
    g_optimizer = keras.optimizers.Adam(learning_rate=g_rate, beta_1=gan.beta_1)
    d_optimizer = keras.optimizers.Adam(learning_rate=d_rate, beta_1=gan.beta_1)
    restored = [False, False]
    if state is not None and not state.get("finished"):
        restored = [_restore_optimizer(g_optimizer, generator, os.path.join(spec.checkpoint_dir, state["optimizer"])),
                    _restore_optimizer(d_optimizer, discriminator,
                                       os.path.join(spec.checkpoint_dir, state["discriminator_optimizer"]))]
    g_optimizer.build(generator.trainable_variables)
    d_optimizer.build(discriminator.trainable_variables)
    # One starting point for every rank: both models and both optimizers' state (step counts, moments).
    hvd.broadcast_variables(generator.variables + discriminator.variables + _optimizer_variables(g_optimizer)
                            + _optimizer_variables(d_optimizer), root_rank=0)

    train_step = gan_train_step(gan, generator, discriminator, g_optimizer, d_optimizer,
                                wrap_tape=hvd.DistributedGradientTape)  # averaged across ranks before each update

    names = STEP_METRICS
    grid = grid_latents(gan, settings.seed)
    progress_path = os.path.join(spec.checkpoint_dir, PROGRESS_LOG)
    epoch_seconds: list[float] = []
    epochs_run = 0
    if not finished:
        for epoch in range(initial_epoch, settings.epochs):
            started = time.perf_counter()
            totals = np.zeros(len(names))
            for step_index in range(steps):
                hooks.before_step(epoch, step_index, rank, size)
                images, labels = next(batches)
                totals += train_step(images, labels).numpy()
            epoch_seconds.append(time.perf_counter() - started)
            _sync_non_trainable([generator, discriminator])
            logs = dict(zip(names, hvd.allreduce(tf.constant(totals / steps, tf.float32), op=hvd.Average).numpy()))
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            epochs_run += 1
            if rank == 0:
                save_checkpoint(spec.checkpoint_dir, epoch, generator, discriminator, g_optimizer, d_optimizer,
                                history)
                write_png(sample_grid(generator.predict(grid, verbose=0), GRID_COLUMNS),
                          os.path.join(spec.samples_dir, f"epoch-{epoch + 1:04d}.png"))
                with open(progress_path, "a") as handle:
                    handle.write(progress_line(epoch + 1, settings.epochs, logs, steps * settings.batch_size * size,
                                               epoch_seconds[-1], sum(epoch_seconds)) + "\n")
            hvd.allreduce(tf.constant([0.0]), op=hvd.Sum)  # every rank waits for rank 0's checkpoint

    batch_norm_batches = 0
    if epochs_run:
        # The generator's inference-mode statistics from its final weights; the same latents on every rank,
        # so the weights stay identical.
        rng = np.random.default_rng(settings.seed + 1)
        count = settings.batch_size * settings.recalibrate_batch_norm
        calibration = latent_vectors(rng.standard_normal((count, gan.noise_dim)),
                                     rng.integers(0, gan.classes, count), gan)
        batch_norm_batches = recalibrate_batch_norm(generator, calibration, settings.batch_size,
                                                    settings.recalibrate_batch_norm)
    if rank == 0:
        if epochs_run:
            for model, path in ((generator, spec.output_model), (discriminator, spec.output_discriminator)):
                directory, name = os.path.split(path)
                temporary = os.path.join(directory, f".partial-{name}")
                model.save(temporary)
                os.replace(temporary, path)
        mark_finished(spec.checkpoint_dir)
    check = hvd.allreduce(tf.constant([float(rank + 1)]), op=hvd.Sum)
    result = RankResult(rank=rank, size=size, rows=len(x), row_ids=row_ids, history=history,
                        initial_epoch=initial_epoch, epochs_run=epochs_run, epoch_seconds=epoch_seconds,
                        weights_digest=hooks.weights_digest(generator),
                        allreduce_check=float(check.numpy()[0]), optimizer_restored=all(restored),
                        optimizer_iterations=int(g_optimizer.iterations.numpy()),
                        batch_norm_batches=batch_norm_batches)
    extra: dict[str, Any] = {
        "discriminator_iterations": int(d_optimizer.iterations.numpy()),
        "discriminator_digest": None if finished else hooks.weights_digest(discriminator),
        "samples": sorted(glob.glob(os.path.join(spec.samples_dir, "epoch-*.png"))) if rank == 0 else [],
    }
    return asdict(result) | extra
