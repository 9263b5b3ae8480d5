"""Where Horovod's services listen: only on the loopback interface in Spark local mode.

``horovod.spark.run`` starts Python services (the driver service and the Gloo rendezvous HTTP server on the
driver, one task service in every Spark task) and the ranks' Gloo transport. Horovod 0.28.1 binds every Python
service to all interfaces (``horovod.runner.util.network.find_port`` binds ``('', port)``, with no option) and
picks Gloo's interface among the common ones in set order, so a local-mode fit listened on eth0 too.

* ``nics={loopback}`` is Horovod's own option: services advertise only loopback addresses, the rendezvous
  address is 127.0.0.1, and the ranks get ``HOROVOD_GLOO_IFACE=lo``, so Gloo binds 127.0.0.1.
* The bind address of the Python services has no option: :func:`bind_services_to_loopback` replaces
  ``find_port`` in the process that starts them. The driver does it around ``horovod.spark.run``; the Spark
  tasks do it when they unpickle the run's settings, whose ``nics`` is a :class:`LoopbackNics` (the only object
  of ours that reaches the task before its service starts).

Imported by the Spark driver, the Spark tasks and the ranks: depends on Horovod and psutil only.
"""
from __future__ import annotations

import contextlib
import socket
import threading
from typing import Iterator

LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_loopback_users = 0  # fits in this process that need loopback binds (search trials fit from driver threads)
_original_find_port = None
# Servers started through find_port by each thread: the Gloo rendezvous server is never stopped by Horovod.
_started = threading.local()

# Modules that did `from horovod.runner.util.network import find_port`: each holds its own reference.
_FIND_PORT_MODULES = ("horovod.runner.util.network", "horovod.runner.common.util.network",
                      "horovod.runner.http.http_server")


def loopback_interfaces() -> set[str]:
    """The interfaces holding 127.0.0.1 (``lo`` on Linux)."""
    import psutil

    found = {name for name, addresses in psutil.net_if_addrs().items()
             if any(a.family == socket.AF_INET and a.address == LOOPBACK for a in addresses)}
    if not found:
        raise RuntimeError(f"no network interface holds {LOOPBACK}")
    return found


def _find_port(server_factory):
    """Horovod's find_port, bound to 127.0.0.1 while a loopback fit runs in this process (port 0: the kernel
    picks a free one, instead of Horovod's random tries)."""
    if not _loopback_users:
        server, port = _original_find_port(server_factory)
    else:
        server = server_factory((LOOPBACK, 0))
        port = server.server_address[1]
    started = getattr(_started, "servers", None)
    if started is not None:
        started.append(server)
    return server, port


def _install() -> None:
    global _original_find_port
    import importlib

    if _original_find_port is not None:
        return
    network = importlib.import_module(_FIND_PORT_MODULES[0])
    _original_find_port = network.find_port
    for name in _FIND_PORT_MODULES:
        importlib.import_module(name).find_port = _find_port


def _bind_loopback_forever() -> None:
    global _loopback_users
    with _lock:
        _install()
        _loopback_users = max(_loopback_users, 1)


@contextlib.contextmanager
def horovod_services(loopback: bool) -> Iterator[None]:
    """Around ``horovod.spark.run`` on the driver: its services bind 127.0.0.1 when ``loopback``; and the
    rendezvous servers the run started are stopped after it (Horovod 0.28.1 leaves them listening)."""
    global _loopback_users
    with _lock:
        _install()
        if loopback:
            _loopback_users += 1
    _started.servers = []
    try:
        yield
    finally:
        servers, _started.servers = _started.servers, None
        for server in servers:
            if type(server).__name__ == "RendezvousHTTPServer":
                _stop(server)
        if loopback:
            with _lock:
                _loopback_users -= 1


def _stop(server, timeout: float = 5.0) -> None:
    """shutdown() waits for serve_forever to return, forever if it never ran: bounded here."""
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout)
    server.server_close()


def _loopback_nics(names):
    """Unpickled in every Spark task (and rank) of a loopback run, before the task service starts."""
    _bind_loopback_forever()
    return LoopbackNics(names)


class LoopbackNics(set):
    """``nics`` for ``horovod.spark.run`` in local mode: the loopback interfaces; unpickling it binds the
    unpickling process's Horovod services to 127.0.0.1 (Spark local-mode Python workers only)."""

    def __reduce__(self):
        return _loopback_nics, (sorted(self),)
