"""Start a ``tf_distribute`` fit: one rank per Spark barrier task, the ranks joined by ``MultiWorkerMirroredStrategy``.

Every barrier task picks a free port on its host (127.0.0.1 in local mode), the tasks exchange ``host:port``
through the barrier (``allGather``, in partition order) and each starts its rank as a process of its own
(:mod:`spark_ml_pipeline.train.tf_distribute_worker`) with ``TF_CONFIG`` naming every rank's address and its own
index. The rank's output goes to the fit's ranks log, each line prefixed ``[rank]<stdout|stderr>:`` as Horovod
prefixes its ranks' lines; the rank dies with its task (``PR_SET_PDEATHSIG``).

In local mode every address is 127.0.0.1, but TensorFlow's gRPC server binds all interfaces whatever the address
(``grpc_server_lib.cc`` listens on ``0.0.0.0:<port>``, with no option), so the ranks' ports are reachable from
the network for the fit's duration; a local-mode fit says so once per process (Horovod's path binds 127.0.0.1).

A rank that exits non-zero is recorded in a directory of exit codes; the driver sees it, cancels the Spark job
(whose other tasks then end, and their ranks with them) and raises :class:`RankFailure` naming that rank — the
killed one when a peer failed at nearly the same moment. Tasks never raise for a rank's exit, so no Spark task
failure (a JVM stack trace on the console, a barrier stage retried) comes of it.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import cloudpickle
from pyspark.sql import SparkSession

from spark_ml_pipeline.train.rank_backends import LOCAL_RANK_VARIABLE

LOOPBACK = "127.0.0.1"
POLL_SECONDS = 0.2
# After the first failed rank is seen: how long its peers' exit codes may take to arrive (a killed rank's task
# records it within milliseconds; its peers fail their next collective a moment later).
SETTLE_SECONDS = 1.0
WORKER_MODULE = "spark_ml_pipeline.train.tf_distribute_worker"
WILDCARD_WARNING = ("warning: training.backend=tf_distribute in local mode: TensorFlow's gRPC servers listen on all "
                    "interfaces for the fit (TensorFlow has no bind-address option); on a shared or exposed host use "
                    "training.backend=horovod, which listens on 127.0.0.1 only")
_warned = False


class RankFailure(RuntimeError):
    """A rank exited non-zero: ``rank`` of ``size``, with its exit code (-N: killed by signal N)."""

    def __init__(self, rank: int, size: int, code: int) -> None:
        super().__init__(f"tf_distribute rank {rank} of {size} exited with code {code}")
        self.rank, self.size, self.code = rank, size, code


def run_tf_distribute(spark: SparkSession, train_fn, spec, num_proc: int, env: dict, ranks_log: str,
                      loopback: bool) -> list[dict]:
    """``train_fn(spec)`` on ``num_proc`` ranks; their reports sorted by rank. ``env`` is added to every rank's
    environment; ``loopback`` puts every rank's address on 127.0.0.1 (Spark local mode)."""
    if loopback:
        _warn_wildcard_once()
    payload = cloudpickle.dumps((train_fn, spec))  # as Horovod sends it: test rank functions go by value
    exits_dir = os.path.join(os.path.dirname(ranks_log), f".rank-exits-{uuid.uuid4().hex}")
    os.makedirs(exits_dir)
    sc = spark.sparkContext
    group = f"tf-distribute-{uuid.uuid4().hex}"
    task = _rank_task(payload, env, ranks_log, exits_dir, loopback)
    outcome: dict = {}

    def collect() -> None:
        sc.setJobGroup(group, f"tf_distribute fit: {num_proc} ranks", interruptOnCancel=True)
        try:
            outcome["results"] = sc.parallelize(range(num_proc), num_proc).barrier().mapPartitions(task).collect()
        except Exception as exc:  # reported below, after the ranks' exit codes are read
            outcome["error"] = exc

    collector = threading.Thread(target=collect, name="tf-distribute-fit", daemon=True)
    collector.start()
    try:
        while collector.is_alive():
            collector.join(POLL_SECONDS)
            if collector.is_alive() and _failed(read_exits(exits_dir)):
                time.sleep(SETTLE_SECONDS)
                sc.cancelJobGroup(group)
                collector.join()
        exits = read_exits(exits_dir)
    except BaseException:  # Ctrl-C in the driver: end the ranks too
        sc.cancelJobGroup(group)
        raise
    finally:
        shutil.rmtree(exits_dir, ignore_errors=True)
    if _failed(exits):
        rank, code = failed_rank(exits)
        raise RankFailure(rank, num_proc, code)
    if "error" in outcome:
        raise outcome["error"]
    return sorted(outcome["results"], key=lambda report: report["rank"])


def _warn_wildcard_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        print(WILDCARD_WARNING, file=sys.stderr, flush=True)


def read_exits(exits_dir: str) -> dict[int, int]:
    """rank -> exit code of every rank that has ended."""
    exits = {}
    for name in os.listdir(exits_dir) if os.path.isdir(exits_dir) else ():
        if name.startswith("rank-"):
            with open(os.path.join(exits_dir, name)) as handle:
                exits[int(name[len("rank-"):])] = int(handle.read())
    return exits


def _failed(exits: dict[int, int]) -> bool:
    return any(code != 0 for code in exits.values())


def failed_rank(exits: dict[int, int]) -> tuple[int, int]:
    """The rank to name: one killed by a signal if any (its peers then fail their next collective), else the
    lowest rank that exited non-zero."""
    failed = sorted((rank, code) for rank, code in exits.items() if code != 0)
    killed = [(rank, code) for rank, code in failed if code < 0]
    return (killed or failed)[0]


def _rank_task(payload: bytes, env: dict, ranks_log: str, exits_dir: str, loopback: bool):
    def task(_partition):
        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        rank = context.partitionId()
        host = LOOPBACK if loopback else context.getTaskInfos()[rank].address.rsplit(":", 1)[0]
        addresses = context.allGather(f"{host}:{_free_port(host)}")
        yield run_rank(payload, rank, addresses, env, ranks_log, exits_dir)

    return task


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def rank_environment(rank: int, addresses: list[str]) -> dict[str, str]:
    """``TF_CONFIG`` (every rank's address, this rank's index) and this rank's index among its host's ranks."""
    host = addresses[rank].rsplit(":", 1)[0]
    local_rank = sum(1 for address in addresses[:rank] if address.rsplit(":", 1)[0] == host)
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker",
                                                                                    "index": rank}}),
            LOCAL_RANK_VARIABLE: str(local_rank)}


def run_rank(payload: bytes, rank: int, addresses: list[str], env: dict, ranks_log: str, exits_dir: str) -> dict:
    """Rank ``rank`` as a child process, to its end: its report, or ``{"rank", "exit_code"}`` if it failed."""
    with tempfile.TemporaryDirectory(prefix="tf-distribute-rank-") as scratch:
        payload_file, result_file = os.path.join(scratch, "payload.pickle"), os.path.join(scratch, "result.pickle")
        with open(payload_file, "wb") as handle:
            handle.write(payload)
        process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, payload_file, result_file],
                                   env={**os.environ, **env, **rank_environment(rank, addresses)},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        pumps = [threading.Thread(target=_append_lines, args=(stream, f"[{rank}]<{name}>:", ranks_log), daemon=True)
                 for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]
        for pump in pumps:
            pump.start()
        try:
            code = process.wait()
        finally:
            if process.poll() is None:  # this task was interrupted (the job cancelled): its rank ends with it
                process.kill()
                process.wait()
        for pump in pumps:
            pump.join()
        _record_exit(exits_dir, rank, code)
        if code != 0:
            return {"rank": rank, "exit_code": code}
        with open(result_file, "rb") as handle:
            return pickle.load(handle)


def _record_exit(exits_dir: str, rank: int, code: int) -> None:
    partial = os.path.join(exits_dir, f".rank-{rank}")
    with open(partial, "w") as handle:
        handle.write(str(code))
    os.replace(partial, os.path.join(exits_dir, f"rank-{rank}"))


def _append_lines(stream, prefix: str, path: str) -> None:
    """Each line of ``stream`` appended whole to ``path`` (one write per line: other ranks append too)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for line in iter(stream.readline, b""):
            os.write(descriptor, prefix.encode() + line.rstrip(b"\n") + b"\n")
    finally:
        os.close(descriptor)
        stream.close()


def _die_with_parent() -> None:
    """In the rank process before it runs: SIGKILL it when its parent (the Spark task's Python worker) dies."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:  # not Linux: the task's own clean-up still ends the rank
        pass
