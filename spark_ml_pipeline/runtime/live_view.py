"""What the live views share (``make dashboard``: :mod:`spark_ml_pipeline.tune.dashboard`; ``make mlflow-ui``:
:mod:`spark_ml_pipeline.store.ui`): the command line that names whose store to show, the configuration it
resolves to, and a port on the loopback interface.

Both views find the store the way the jobs do, from the pipeline's layered configuration (``store.root``,
``store.tracking_uri``, ``tune.storage`` ...), so ``make run ARGS=store.root=/data/s`` and
``make dashboard ARGS=store.root=/data/s`` look at the same place. They listen on 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import errno
import socket
from spark_ml_pipeline.runtime.config import load_pipeline
from spark_ml_pipeline.runtime.errors import ConfigError

HOST = "127.0.0.1"
DEFAULT_PIPELINE = "taxi_fare"


def parser(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("pipeline", nargs="?", default=DEFAULT_PIPELINE,
                   help=f"the pipeline whose configuration names the store (default: {DEFAULT_PIPELINE})")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="configuration overrides, as for the jobs (e.g. store.root=/data/store)")
    p.add_argument("--env", default="local", help="environment layer(s), comma-separated (default: local)")
    p.add_argument("--conf-dir", default=None, help="configuration directory (default: conf/)")
    p.add_argument("--port", type=int, default=default_port, help=f"port on {HOST} (default: {default_port})")
    return p


def load_config(args):
    """The pipeline's validated configuration (a ConfigError names a bad key, as for the jobs)."""
    config, _ = load_pipeline(args.pipeline, [e for e in args.env.split(",") if e], args.overrides, args.conf_dir)
    return config


def check_port(port: int) -> None:
    """A ConfigError unless ``port`` is a TCP port number."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port}: not a TCP port (1-65535)")


def port_error(port: int, exc: OSError, host: str = HOST) -> ConfigError:
    """One line for a failed bind: a taken port names itself and the way out."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"port {port} on {host} is already in use (another dashboard or server?): "
                           f"stop it or choose another (make ... PORT={port + 1}, or --port {port + 1})")
    return ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def check_free(port: int, host: str = HOST) -> None:
    """Fail now, in one line, if ``host:port`` is taken (before starting a server that would say it in a
    traceback). Bound with SO_REUSEADDR, as servers bind: a connection in TIME_WAIT is no conflict."""
    check_port(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise port_error(port, exc, host) from None
