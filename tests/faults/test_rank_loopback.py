"""A local-mode fit listens on the loopback interface only, on both backends: every listening socket of the driver
(Python and JVM), the Spark Python workers (Horovod's task services) and the ranks (Gloo, or tf_distribute's gRPC
servers), sampled while the fit runs.

A rank's Gloo listener lives well under a second (while the ranks connect), so a loaded machine's sampling can
miss it; the interface Gloo binds is also checked where it is decided, in each rank's environment."""
import json
import os
import threading
import time

import numpy as np
import pandas as pd
import psutil
import pytest

from spark_ml_pipeline.train.horovod_network import loopback_interfaces
from spark_ml_pipeline.train.keras_estimator import KerasEstimator
from spark_ml_pipeline.train.keras_settings import KerasTrainingSettings
from spark_ml_pipeline.train import tf_distribute_launch
from spark_ml_pipeline.train.tf_distribute_launch import WILDCARD_WARNING, WORKER_MODULE

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def role(process: psutil.Process) -> str:
    command = process.cmdline()
    if process.pid == os.getpid():
        return "driver"
    if "horovod.spark.task.gloo_exec_fn" in command:
        return f"rank {process.environ().get('HOROVOD_RANK')}"
    if WORKER_MODULE in command:
        return f"rank {json.loads(process.environ()['TF_CONFIG'])['task']['index']}"
    if "pyspark.daemon" in command:
        return "spark python worker"
    if process.name() == "java":
        return "spark jvm"
    return "driver fork" if command == psutil.Process().cmdline() else " ".join(command)[:80]


def listeners() -> dict[tuple[int, str, int], str]:
    """(pid, address, port) -> role of every listening TCP socket of this process and its descendants (never
    another session's processes)."""
    me = psutil.Process()
    tree = {p.pid: p for p in me.children(recursive=True)} | {me.pid: me}
    found = {}
    for connection in psutil.net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in tree:
            try:
                found[(connection.pid, connection.laddr.ip, connection.laddr.port)] = role(tree[connection.pid])
            except psutil.Error:  # ended since
                continue
    return found


def gloo_interfaces() -> dict[int, str | None]:
    """pid -> HOROVOD_GLOO_IFACE of every running rank in this process's tree."""
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if "horovod.spark.task.gloo_exec_fn" in process.cmdline():
                found[process.pid] = process.environ().get("HOROVOD_GLOO_IFACE")
        except psutil.Error:  # ended since
            continue
    return found


@pytest.mark.parametrize("backend", ["horovod", "tf_distribute"])
def test_a_local_mode_fit_listens_on_loopback_only(spark, tmp_path, backend, capsys, monkeypatch):
    monkeypatch.setattr(tf_distribute_launch, "_warned", False)  # the warning is once per process
    rows = 640
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 8)).astype("float32")
    frame = spark.createDataFrame(pd.DataFrame({"features": list(x), "label": x.sum(axis=1),
                                                "is_validation": np.arange(rows) % 10 == 0}),
                                  "features array<float>, label float, is_validation boolean")
    estimator = KerasEstimator(featuresCol="features", inputShape=[8], labelCol="label",
                                      modelSpec=json.dumps({"kind": "mlp", "hidden": [8]}), outputShape=[1],
                                      trainingSettings=KerasTrainingSettings(epochs=2, batch_size=32,
                                                                             early_stopping_patience=0),
                                      numProc=2, workDir=str(tmp_path / "work"), showProgress=False,
                                      backend=backend)
    before = listeners()
    fitted: list = []
    fit = threading.Thread(target=lambda: fitted.append(estimator.fit(frame)))
    fit.start()
    seen: dict = {}
    ranks: dict = {}
    while fit.is_alive():
        seen.update(listeners())
        ranks.update(gloo_interfaces())
        time.sleep(0.05)
    fit.join()
    after = listeners()
    assert fitted, "the fit failed"

    during = {key: who for key, who in seen.items() if key not in before}
    shown = "\n".join(f"{who:>20} pid {pid} {address}:{port}" for (pid, address, port), who in sorted(seen.items()))
    if backend == "tf_distribute":
        # TensorFlow's gRPC server binds 0.0.0.0 / [::] whatever TF_CONFIG says (grpc_server_lib.cc, no option):
        # the ranks' servers, one each for the whole fit, are the known exception, and the fit warns of it once.
        # Everything else (driver, JVM, Spark's Python workers) stays on loopback.
        rank_sockets = {key: who for key, who in during.items() if who.startswith("rank")}
        assert sorted(rank_sockets.values()) == ["rank 0", "rank 1"], shown
        assert {address for _, address, _ in rank_sockets} <= LOOPBACK | {"::", "0.0.0.0"}, shown
        assert {address for key in seen.keys() - rank_sockets.keys() for address in [key[1]]} <= LOOPBACK, shown
        assert capsys.readouterr().err.count(WILDCARD_WARNING) == 1
    else:
        assert {address for _, address, _ in seen} <= LOOPBACK, shown
        # What the fit opened, seen listening: Horovod's driver service and Gloo rendezvous server on the driver,
        # one task service per Spark task; the ranks' Gloo bound to the loopback interface.
        assert sum(who == "driver" for who in during.values()) >= 2, shown
        assert sum(who == "spark python worker" for who in during.values()) >= 2, shown
        assert len(ranks) >= 2 and set(ranks.values()) <= loopback_interfaces(), ranks
    # Nothing the fit opened is left listening on the driver (Horovod leaves its rendezvous server running).
    assert {key for key, who in after.items() if who == "driver"} <= set(before), shown
