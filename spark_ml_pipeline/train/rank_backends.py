"""How a rank joins its peers: Horovod (allreduce over Gloo), or TensorFlow's own ``MultiWorkerMirroredStrategy``.

The Keras rank function (:func:`spark_ml_pipeline.train.keras_rank.train_rank`) trains the same way on both; what
differs is here, behind one small interface: starting the rank (its number and the group's size), the scope its
variables are made in, the optimizer wrapper, the callbacks that keep ranks in step, the input pipeline's
distribution, a sum over ranks, and whether saving a model is a collective step (every rank must take part).

Horovod 0.28.1 is unmaintained and needs TensorFlow's C++ headers to build; ``tf_distribute`` needs nothing but
TensorFlow, so it is the path the day Horovod no longer builds.

Spark-free: imported inside the rank processes.
"""
from __future__ import annotations

import contextlib
import json
import os
from typing import Callable, Literal, get_args

Backend = Literal["horovod", "tf_distribute"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# Set by the tf_distribute launcher (spark_ml_pipeline.train.tf_distribute_launch): this rank's index among the
# ranks of its host, which picks its GPU as Horovod's local rank does.
LOCAL_RANK_VARIABLE = "SPARK_ML_PIPELINE_LOCAL_RANK"


def gpu_for_rank(device: str, gpus: list, local_rank: int):
    """The GPU this rank trains on (None: CPU). ``cuda`` gives each rank of a host its own GPU by local rank,
    the Horovod pattern; a rank that sees no GPU is an error, not a silent fall-back to the CPU."""
    if device == "cpu":
        return None
    if device != "cuda":
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if not gpus:
        raise RuntimeError(f"compute.device=cuda but rank {local_rank} of this host sees no GPU "
                           "(check the executors' GPU resources and CUDA_VISIBLE_DEVICES)")
    return gpus[local_rank % len(gpus)]


def _place_on_device(device: str, local_rank: int) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    chosen = gpu_for_rank(device, gpus, local_rank)
    if chosen is None:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        return
    tf.config.experimental.set_memory_growth(chosen, True)
    tf.config.set_visible_devices(chosen, "GPU")


def _set_threads(threads_per_rank: int) -> None:
    import tensorflow as tf

    # N ranks on N cores: each rank gets its share of threads, so ranks do not oversubscribe the CPUs.
    tf.config.threading.set_intra_op_parallelism_threads(threads_per_rank)
    tf.config.threading.set_inter_op_parallelism_threads(threads_per_rank)


def _seed_and_quiet(seed: int) -> None:
    import tensorflow as tf
    from tensorflow import keras

    keras.utils.set_random_seed(seed)  # the same initial weights everywhere (rank 0's are shared anyway)
    tf.get_logger().setLevel("ERROR")  # e.g. "callback slow compared to the batch time" on tiny batches


def start_rank(hvd, threads_per_rank: int, device: str, seed: int) -> tuple[int, int]:
    """Horovod up, then this rank's threads, device, seed and log level; (rank, size). ``hvd`` is the Horovod
    module the caller trains with (``horovod.tensorflow.keras`` or ``horovod.tensorflow``)."""
    hvd.init()
    _set_threads(threads_per_rank)
    _place_on_device(device, hvd.local_rank())
    _seed_and_quiet(seed)
    return hvd.rank(), hvd.size()


class HorovodRanks:
    """Horovod's Keras API: the optimizer averages gradients, callbacks broadcast rank 0's weights and average
    the metrics; only rank 0 needs to write a model."""

    name = "horovod"
    saving_is_collective = False

    def __init__(self) -> None:
        import horovod.tensorflow.keras as hvd

        self.hvd = hvd

    def start(self, threads_per_rank: int, device: str, seed: int) -> tuple[int, int]:
        return start_rank(self.hvd, threads_per_rank, device, seed)

    def scope(self):
        return contextlib.nullcontext()

    def optimizer(self, optimizer):
        return self.hvd.DistributedOptimizer(optimizer)

    def callbacks(self) -> list:
        # Average metrics across ranks before anything reads them, so early stopping decides identically.
        return [self.hvd.callbacks.BroadcastGlobalVariablesCallback(0), self.hvd.callbacks.MetricAverageCallback()]

    def distribute(self, make_dataset: Callable):
        return make_dataset()

    def total(self, value: float) -> float:
        import tensorflow as tf

        return float(self.hvd.allreduce(tf.constant([value]), op=self.hvd.Sum).numpy()[0])


class TfDistributeRanks:
    """``tf.distribute.MultiWorkerMirroredStrategy``: variables made in its scope are mirrored (rank 0's initial
    values broadcast), gradients all-reduced by its collectives (ring, over gRPC), and Keras aggregates metrics
    across workers. Every rank reads ``TF_CONFIG`` (the launcher writes it from the Spark barrier tasks'
    addresses). Reading a variable that is synchronised on read (batch-norm statistics, metrics) is a collective,
    so every rank saves when one does."""

    name = "tf_distribute"
    saving_is_collective = True

    def __init__(self) -> None:
        self.strategy = None
        self._summed = None  # the sum over ranks, traced once

    def start(self, threads_per_rank: int, device: str, seed: int) -> tuple[int, int]:
        import tensorflow as tf

        _set_threads(threads_per_rank)
        _place_on_device(device, int(os.environ.get(LOCAL_RANK_VARIABLE, "0")))
        # The strategy is made before any other TensorFlow op (it starts this process's gRPC server).
        implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL if device == "cuda"
                          else tf.distribute.experimental.CommunicationImplementation.RING)
        self.strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation))
        _seed_and_quiet(seed)
        config = json.loads(os.environ["TF_CONFIG"])
        return int(config["task"]["index"]), len(config["cluster"]["worker"])

    def scope(self):
        return self.strategy.scope()

    def optimizer(self, optimizer):
        return optimizer

    def callbacks(self) -> list:
        return []

    def distribute(self, make_dataset: Callable):
        """Each rank's own shard as it is, ``batch_size`` rows per step (no auto-sharding, no re-batching)."""
        return self.strategy.distribute_datasets_from_function(lambda _context: make_dataset())

    def total(self, value: float) -> float:
        import tensorflow as tf

        if self._summed is None:
            strategy = self.strategy

            @tf.function
            def summed(local):
                return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(local)),
                                       axis=None)

            self._summed = summed
        return float(self._summed(tf.constant([value])).numpy()[0])


def ranks_for(backend: str):
    """The rank side of ``backend`` (one of :data:`BACKENDS`)."""
    if backend == "horovod":
        return HorovodRanks()
    if backend == "tf_distribute":
        return TfDistributeRanks()
    raise ValueError(f"training backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
