"""What every rank of a Keras fit runs: read its shard of the Parquet data, train data-parallel, checkpoint.

The ranks are Horovod's (``horovod.spark.run``) or TensorFlow's (``MultiWorkerMirroredStrategy`` in Spark
barrier tasks); how a rank joins its peers is :mod:`spark_ml_pipeline.train.rank_backends`. This module is
imported inside the rank processes, so it depends only on numpy, pyarrow, TensorFlow, the backends and the model
zoo, never on Spark.
"""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spark_ml_pipeline.train.augmentation import augmenter
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train.losses import resolve_loss
from spark_ml_pipeline.train.models.loading import load_keras_model
from spark_ml_pipeline.train.models.zoo import build_model
from spark_ml_pipeline.train.rank_backends import ranks_for
from spark_ml_pipeline.train.rank_test_hooks import RankTestHooks

CHECKPOINT_MODEL = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"


@dataclass(frozen=True)
class RankSpec:
    """Everything a rank needs, picklable and free of Spark objects (Ray-Train-style config object)."""

    train_dir: str
    validation_dir: str | None
    features_column: str
    label_column: str
    input_shape: tuple[int, ...]
    label_shape: tuple[int, ...]
    label_dtype: str
    model_spec: dict
    output_shape: tuple[int, ...]
    output_activation: str | None
    loss: str
    metrics: tuple[str, ...]
    checkpoint_dir: str
    output_model: str
    training: KerasTrainingSettings  # how to train, whole as the estimator was given it
    threads_per_rank: int
    device: str  # cpu | cuda: cuda pins each rank to one GPU of its host (local rank)
    backend: str = "horovod"  # how ranks join: rank_backends.BACKENDS
    # A search trial (spark_ml_pipeline.train.trial_reporting.RemoteTrial): rank 0 reports each epoch, the pruner
    # may stop the fit on every rank.
    trial: Any = None


@dataclass
class RankResult:
    rank: int
    size: int
    rows: int
    row_ids: tuple[int, int] = (0, 0)  # [first, last) of this rank's global row range
    history: dict[str, list[float]] = field(default_factory=dict)
    initial_epoch: int = 0
    epochs_run: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    weights_digest: str | None = None
    allreduce_check: float | None = None
    pruned_at_epoch: int | None = None
    optimizer_restored: bool = False
    optimizer_iterations: int = 0
    batch_norm_batches: int = 0  # batches that re-estimated the model's batch-norm statistics (rank 0)


# --- sharding ------------------------------------------------------------------------------------------

def parquet_files(directory: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(directory, "**", "*.parquet"), recursive=True))
    if not files:
        raise FileNotFoundError(f"{directory}: no Parquet files")
    return files


def shard_ranges(row_counts: list[int], rank: int, size: int) -> tuple[int, int]:
    """This rank's contiguous global row range; every rank gets floor(total / size) rows.

    Equal shards matter: Horovod ranks must take the same number of steps, or an allreduce waits forever.
    The remainder (fewer than ``size`` rows) is left out of this epoch's training."""
    per_rank = sum(row_counts) // size
    return rank * per_rank, (rank + 1) * per_rank


def read_shard(directory: str, columns: list[str], rank: int, size: int):
    """Read only the row range of this rank (file by file, skipping files outside the range)."""

    files = parquet_files(directory)
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    start, stop = shard_ranges(counts, rank, size)
    pieces, offset = [], 0
    for path, count in zip(files, counts):
        lo, hi = max(start, offset), min(stop, offset + count)
        if lo < hi:
            pieces.append(pq.read_table(path, columns=columns).slice(lo - offset, hi - lo))
        offset += count
    table = pa.concat_tables(pieces) if pieces else pq.read_table(files[0], columns=columns).slice(0, 0)
    return table, (start, stop)


def column_to_array(table, column: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A list/array column (or a scalar column) as an (N, *shape) numpy array, without Python loops."""

    values = table.column(column).combine_chunks()
    n = table.num_rows
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(values.type):
        flat = values.flatten().to_numpy(zero_copy_only=False)
        return flat.astype(dtype, copy=False).reshape((n, *shape))
    return values.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape((n, *shape))


# --- training ------------------------------------------------------------------------------------------

def _dataset(features: np.ndarray, labels: np.ndarray, batch_size: int, shuffle_buffer: int, seed: int,
             training: bool, augment=None):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((features, labels))
    if training:
        data = data.shuffle(min(shuffle_buffer, len(features)), seed=seed, reshuffle_each_iteration=True).repeat()
    data = data.batch(batch_size, drop_remainder=training)
    if training and augment is not None:
        data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def learning_rate_for(settings: KerasTrainingSettings, size: int, steps_per_epoch: int):
    """The rank-scaled learning rate, as a float or a schedule over optimizer steps. With warm-up it rises
    linearly from the single-rank rate to ``size`` times it; ``cosine`` then decays it to zero by the last
    epoch. The schedule reads the optimizer's step count, so a resumed fit continues it where it was."""
    from tensorflow import keras

    peak = settings.learning_rate * size
    if settings.lr_schedule == "constant" and not settings.warmup_epochs:
        return peak
    warmup_steps = settings.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings.learning_rate if warmup_steps else peak,
        decay_steps=max(1, (settings.epochs - settings.warmup_epochs) * steps_per_epoch),
        alpha=0.0 if settings.lr_schedule == "cosine" else 1.0,  # alpha 1: no decay
        warmup_target=peak if warmup_steps else None, warmup_steps=warmup_steps)


def _optimizer(name: str, learning_rate, weight_decay: float = 0.0):
    from tensorflow import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def recalibrate_batch_norm(model, features: np.ndarray, batch_size: int, batches: int) -> int:
    """Replace every batch-norm layer's moving mean and variance by their average over up to ``batches`` batches
    of ``features`` run through the final weights ("precise BN", Wu & Johnson 2021). During a fit the moving
    statistics trail weights that change at every step; after a short fit (a quick look: ~20 steps per rank)
    they are still far from the data's and the model scores near chance in inference mode. Each batch k gets
    momentum (k - 1) / k, so the moving values become the plain average. Returns the batches used."""
    from tensorflow import keras

    norms = [layer for layer in model.submodules if isinstance(layer, keras.layers.BatchNormalization)]
    starts = list(range(0, len(features) - batch_size + 1, batch_size))[:batches]
    if not norms or not starts:
        return 0
    momenta = [layer.momentum for layer in norms]
    try:
        for k, start in enumerate(starts, 1):
            for layer in norms:  # read by the eager call below
                layer.momentum = (k - 1) / k
            model(features[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(starts)


def read_checkpoint_state(checkpoint_dir: str) -> dict | None:
    """The last complete checkpoint's state (``epoch``: the last completed epoch, 0-based), or None."""
    state_path = os.path.join(checkpoint_dir, CHECKPOINT_STATE)
    if not os.path.exists(state_path):
        return None
    with open(state_path) as handle:
        return json.load(handle)


def _load_checkpoint(checkpoint_dir: str) -> tuple[Any, int, dict, bool, str | None]:
    """(model or None, first epoch to run, history so far, finished, optimizer state file or None) from the
    last complete checkpoint. A finished fit's checkpoint holds no weights (its model is the fit's output)."""
    state = read_checkpoint_state(checkpoint_dir)
    if state is None:
        return None, 0, {}, False, None
    finished = bool(state.get("finished"))
    model = None if finished else load_keras_model(os.path.join(checkpoint_dir, state["model"]))
    optimizer_file = None if finished else state.get("optimizer")
    return (model, int(state["epoch"]) + 1, state.get("history", {}), finished,
            os.path.join(checkpoint_dir, optimizer_file) if optimizer_file else None)


def _optimizer_variables(optimizer) -> list:
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def _restore_optimizer(optimizer, model, state_file: str) -> bool:
    """Adam's moments and step count as they were at the checkpoint, so a resumed fit continues the same
    optimisation instead of restarting it. False (fresh state) if the saved state does not fit."""
    optimizer.build(model.trainable_variables)
    with np.load(state_file) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    variables = _optimizer_variables(optimizer)
    if len(values) != len(variables) or any(v.shape != value.shape for v, value in zip(variables, values)):
        return False
    for variable, value in zip(variables, values):
        variable.assign(value)
    return True


def _write_state(checkpoint_dir: str, state: dict) -> None:
    temporary = os.path.join(checkpoint_dir, f".{CHECKPOINT_STATE}.tmp")
    with open(temporary, "w") as handle:
        json.dump(state, handle)
    os.replace(temporary, os.path.join(checkpoint_dir, CHECKPOINT_STATE))


def _mark_finished(checkpoint_dir: str) -> None:
    """A completed fit (all epochs, or stopped early) is not resumed by a rerun: its state says finished (a
    rerun returns the fit's model) and its weights and optimizer state are deleted."""
    state = read_checkpoint_state(checkpoint_dir)
    if state is None:
        return
    _write_state(checkpoint_dir, {key: value for key, value in state.items() if key not in ("model", "optimizer")}
                 | {"finished": True})
    for stale in _checkpoint_files(checkpoint_dir):
        os.remove(stale)


def _checkpoint_files(checkpoint_dir: str) -> list[str]:
    return [path for pattern in ("epoch-*.keras", "optimizer-*.npz", ".partial-*")
            for path in glob.glob(os.path.join(checkpoint_dir, pattern))]


def _checkpoint_callback(checkpoint_dir: str, history_so_far: dict, writes: bool = True):
    """Rank 0 saves model + state after every epoch; the state file is replaced last, atomically,
    so a crash mid-save leaves the previous checkpoint valid. Where saving is a collective step
    (``tf_distribute``), the other ranks save too (``writes=False``) to a scratch file they delete."""
    from tensorflow import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = {k: list(v) for k, v in history_so_far.items()}

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                self.history.setdefault(key, []).append(float(value))
            if not writes:
                scratch = tempfile.mkdtemp(prefix="rank-checkpoint-")
                try:
                    self.model.save(os.path.join(scratch, "model.keras"))
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                return
            os.makedirs(checkpoint_dir, exist_ok=True)
            name, optimizer_name = f"epoch-{epoch:04d}.keras", f"optimizer-{epoch:04d}.npz"
            # Each file under a hidden name first: a rank killed mid-save leaves no half-written checkpoint.
            self.model.save(os.path.join(checkpoint_dir, f".partial-{name}"))
            np.savez(os.path.join(checkpoint_dir, f".partial-{optimizer_name}"),
                     *[v.numpy() for v in _optimizer_variables(self.model.optimizer)])
            for written in (name, optimizer_name):
                os.replace(os.path.join(checkpoint_dir, f".partial-{written}"), os.path.join(checkpoint_dir, written))
            _write_state(checkpoint_dir, {"epoch": epoch, "model": name, "optimizer": optimizer_name,
                                          "history": self.history})
            for old in _checkpoint_files(checkpoint_dir):
                if os.path.basename(old) not in (name, optimizer_name):
                    os.remove(old)

    return EpochCheckpoint()


def _PruningCallback(remote, rank: int, ranks):
    """Report each epoch's (rank-averaged) metric to the search trial from rank 0; if its pruner says stop,
    every rank stops after this epoch (the decision travels in a sum over ranks, so ranks never diverge)."""
    from tensorflow import keras

    class Pruning(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.trial = remote.open() if rank == 0 else None
            self.pruned_at_epoch: int | None = None

        def on_epoch_end(self, epoch, logs=None):
            stop = 0.0
            if self.trial is not None:
                stop = float(remote.report(self.trial, epoch + 1, logs or {}))
            if ranks.total(stop) > 0:
                self.pruned_at_epoch = epoch + 1
                self.model.stop_training = True

    return Pruning()


def _EpochTimer():
    """Wall time of each epoch's training steps (for throughput figures), validation excluded."""

    from tensorflow import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self._last_batch = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(getattr(self, "_last_batch", time.perf_counter()) - self._started)

    return EpochTimer()


PROGRESS_LOG = "progress.log"


def progress_line(epoch: int, epochs: int, logs: dict, samples: int, seconds: float, seconds_so_far: float) -> str:
    """One human line per epoch: metrics (rank-averaged), throughput and the time left at this pace."""
    metrics = " · ".join(f"{name} {float(value):.4f}" for name, value in sorted((logs or {}).items())
                         if name != "learning_rate")
    eta = seconds_so_far / epoch * (epochs - epoch) if epoch else float("nan")
    return (f"epoch {epoch}/{epochs} · {metrics} · {samples / seconds if seconds else float('nan'):.0f} samples/s"
            f" · ETA {eta:.0f} s")


def _ProgressLog(path: str, epochs: int, samples_per_epoch: int, timer):
    """Rank 0 appends one :func:`progress_line` per epoch to ``path``; the driver prints the file as it grows
    (rank output does not reach the driver's console on a cluster, the store does)."""

    from tensorflow import keras

    class ProgressLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            line = progress_line(epoch + 1, epochs, logs, samples_per_epoch, timer.seconds[-1] if timer.seconds
                                 else 0.0, sum(timer.seconds))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as handle:
                handle.write(line + "\n")

    return ProgressLog()


def train_rank(spec: RankSpec) -> dict:
    """The training function: one call per rank, on either backend (``spec.backend``)."""
    from tensorflow import keras

    settings = spec.training
    hooks = RankTestHooks.from_environment()
    ranks = ranks_for(spec.backend)
    rank, size = ranks.start(spec.threads_per_rank, spec.device, settings.seed)

    columns = [spec.features_column, spec.label_column]
    table, row_ids = read_shard(spec.train_dir, columns, rank, size)
    x = column_to_array(table, spec.features_column, spec.input_shape, "float32")
    y = column_to_array(table, spec.label_column, spec.label_shape, spec.label_dtype)
    steps = max(1, len(x) // settings.batch_size)
    augment = augmenter(settings.augment, spec.input_shape, spec.label_shape, settings.seed + 7919 * rank,
                        settings.augment_channels)
    train_data = ranks.distribute(lambda: _dataset(x, y, settings.batch_size, settings.shuffle_buffer,
                                                   settings.seed + rank, training=True, augment=augment))
    validation, validation_steps = None, None
    if spec.validation_dir:
        vtable, _ = read_shard(spec.validation_dir, columns, rank, size)
        vx = column_to_array(vtable, spec.features_column, spec.input_shape, "float32")
        vy = column_to_array(vtable, spec.label_column, spec.label_shape, spec.label_dtype)
        if len(vx):
            validation = ranks.distribute(lambda: _dataset(vx, vy, settings.batch_size, 0, 0, training=False))
            validation_steps = math.ceil(len(vx) / settings.batch_size)  # equal shards: the same on every rank

    with ranks.scope():
        model, initial_epoch, history_so_far, finished, optimizer_state = _load_checkpoint(spec.checkpoint_dir)
        if finished:
            if os.path.exists(spec.output_model):  # the final (best) model, not the last epoch's
                model = load_keras_model(spec.output_model)
            else:  # the finished fit's model is gone: train again
                initial_epoch, history_so_far, finished = 0, {}, False
        if model is None:
            model = build_model(spec.model_spec, spec.input_shape, spec.output_shape, spec.output_activation)
        # Data parallelism: gradients are averaged across ranks, so the effective batch is size x larger;
        # scale the learning rate with it (Goyal et al.).
        optimizer = ranks.optimizer(_optimizer(settings.optimizer, learning_rate_for(settings, size, steps),
                                               settings.weight_decay))
        model.compile(optimizer=optimizer, loss=resolve_loss(spec.loss), metrics=list(spec.metrics))
        optimizer_restored = bool(optimizer_state and not finished
                                  and _restore_optimizer(optimizer, model, optimizer_state))

    callbacks = ranks.callbacks()
    if settings.early_stopping_patience and validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.early_stopping_patience,
                                                       restore_best_weights=True))
    if rank == 0 or ranks.saving_is_collective:
        callbacks.append(_checkpoint_callback(spec.checkpoint_dir, history_so_far, writes=rank == 0))
    pruning = _PruningCallback(spec.trial, rank, ranks) if spec.trial is not None else None
    if pruning is not None:
        callbacks.append(pruning)
    timer = _EpochTimer()
    callbacks.append(timer)
    if rank == 0:  # after the timer: it reads this epoch's time
        callbacks.append(_ProgressLog(os.path.join(spec.checkpoint_dir, PROGRESS_LOG), settings.epochs,
                                      steps * settings.batch_size * size, timer))

    history = {}
    epochs_run = 0
    if initial_epoch < settings.epochs and not finished:
        fit = model.fit(train_data, epochs=settings.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                        validation_data=validation, validation_steps=validation_steps, callbacks=callbacks,
                        verbose=0)
        history = {k: [float(v) for v in values] for k, values in fit.history.items()}
        epochs_run = len(next(iter(history.values()), []))
    full_history = {k: list(history_so_far.get(k, [])) + history.get(k, [])
                    for k in set(history_so_far) | set(history)}
    optimizer_iterations = int(optimizer.iterations.numpy())
    weights_digest = hooks.weights_digest(model)  # every rank, before rank 0 changes its copy

    if ranks.saving_is_collective:
        # Every rank reads the final weights (a collective); rank 0 continues with a copy of its own, outside
        # the strategy, so recalibrating and saving it involve no other rank.
        weights = model.get_weights()
        if rank == 0:
            model = _local_copy(spec, weights)
    batch_norm_batches = 0
    if rank == 0 and epochs_run:  # only rank 0's model is saved; a finished fit's model already was
        batch_norm_batches = recalibrate_batch_norm(model, x, settings.batch_size, settings.recalibrate_batch_norm)
    if rank == 0:
        directory, name = os.path.split(spec.output_model)
        temporary = os.path.join(directory, f".partial-{name}")  # hidden until complete
        model.save(temporary)
        os.replace(temporary, spec.output_model)
        _mark_finished(spec.checkpoint_dir)
    check = ranks.total(float(rank + 1))
    result = RankResult(rank=rank, size=size, rows=len(x), row_ids=row_ids, history=full_history,
                        initial_epoch=initial_epoch, epochs_run=epochs_run, epoch_seconds=timer.seconds,
                        weights_digest=weights_digest, allreduce_check=check,
                        pruned_at_epoch=pruning.pruned_at_epoch if pruning is not None else None,
                        optimizer_restored=optimizer_restored, optimizer_iterations=optimizer_iterations,
                        batch_norm_batches=batch_norm_batches)
    return asdict(result)


def _local_copy(spec: RankSpec, weights: list):
    """The fitted network rebuilt outside any distribution strategy, with ``weights``, compiled for the same loss
    and metrics (a model file like the Horovod path's, minus the optimizer's state, which scoring never reads)."""
    model = build_model(spec.model_spec, spec.input_shape, spec.output_shape, spec.output_activation)
    model.set_weights(weights)
    model.compile(optimizer=_optimizer(spec.training.optimizer, spec.training.learning_rate),
                  loss=resolve_loss(spec.loss), metrics=list(spec.metrics))
    return model
