"""A lock per (pipeline, run date) in the store, so two runs of the same date never write at once.

``<store>/locks/<pipeline>/run_date=D.lock`` holds its owner as JSON (host, pid, start time). It is created
atomically: ``O_CREAT | O_EXCL`` on a local store; on a Hadoop filesystem ``create(path, overwrite=false)``,
atomic on HDFS (on object stores such as S3A it is a check-then-create, best effort). A second run finds the
file and stops with :class:`LockedError` naming the lock and its owner. A lock is stale, and broken with a
one-line warning, when its owner ran on this host and its pid is gone (or was reused), or when it is older
than the timeout (``--lock-timeout`` / ``$SPARK_ML_PIPELINE_LOCK_TIMEOUT``, default 24 h): the only test for
an owner on another host. Breaking goes through a second exclusive file (``.lock.break``) and re-reads the
lock first, so two runs breaking the same stale lock cannot both win. The lock is released on exit,
exceptions and Ctrl-C included, and only if it is still the one this run took.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from spark_ml_pipeline.runtime.errors import ConfigError, LockedError, StoreError
from spark_ml_pipeline.runtime.io import is_local_uri, join, local_path, to_uri

LOCK_TIMEOUT_ENV = "SPARK_ML_PIPELINE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 24 * 3600.0
UNREADABLE_GRACE = 30.0  # an empty/unparsable lock younger than this is being written: still locked
BREAK_GUARD_TIMEOUT = 60.0  # a .break guard left by a run that died while breaking


def run_lock_uri(store_root: str, pipeline: str, run_date: str, scope: str | None = None) -> str:
    """``<store>/locks/<pipeline>/run_date=D.lock`` (``<store>/locks/<pipeline>/<scope>/run_date=D.lock``)."""
    return join(store_root, "locks", pipeline, *([scope] if scope else []), f"run_date={run_date}.lock")


def lock_timeout(value: float | None = None) -> float:
    """Seconds after which a lock is stale: ``value``, else ``$SPARK_ML_PIPELINE_LOCK_TIMEOUT``, else 24 h."""
    if value is None:
        raw = os.environ.get(LOCK_TIMEOUT_ENV)
        if not raw:
            return DEFAULT_LOCK_TIMEOUT
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"${LOCK_TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"lock timeout {value:g}: expected a positive number of seconds")
    return float(value)


def _process_start(pid: int) -> Optional[str]:
    """The kernel's start time of ``pid`` (Linux /proc), which tells a reused pid from its first owner."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class LockOwner:
    host: str
    pid: int
    started: str  # ISO 8601, UTC
    started_epoch: float
    token: str  # tells this run's lock from a later one at the same path
    pid_start: Optional[str] = None
    command: str = ""

    @classmethod
    def current(cls) -> "LockOwner":
        now = time.time()
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   started=datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
                   started_epoch=now, token=uuid.uuid4().hex, pid_start=_process_start(os.getpid()),
                   command=" ".join(sys.argv)[:500])

    @classmethod
    def parse(cls, text: str | None) -> Optional["LockOwner"]:
        try:
            data = json.loads(text or "")
            return cls(**{k: data[k] for k in ("host", "pid", "started", "started_epoch", "token")},
                       pid_start=data.get("pid_start"), command=data.get("command", ""))
        except (ValueError, TypeError, KeyError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} since {self.started}"


# --- where lock files live ---------------------------------------------------------------------------------

class LocalFiles:
    """Lock files on the local filesystem (``file:`` URIs)."""

    def create_exclusive(self, uri: str, text: str) -> bool:
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def read(self, uri: str) -> Optional[str]:
        try:
            return local_path(uri).read_text()
        except FileNotFoundError:
            return None

    def age(self, uri: str) -> Optional[float]:
        try:
            return time.time() - local_path(uri).stat().st_mtime
        except FileNotFoundError:
            return None

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            local_path(uri).unlink()


class HadoopFiles:
    """Lock files on any Hadoop filesystem, through the session's JVM."""

    def __init__(self, spark) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs_path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(to_uri(uri))
        return path.getFileSystem(self._conf), path

    def create_exclusive(self, uri: str, text: str) -> bool:
        fs, path = self._fs_path(uri)
        fs.mkdirs(path.getParent())
        try:
            stream = fs.create(path, False)
        except Exception as exc:
            if "FileAlreadyExists" in str(exc) or fs.exists(path):
                return False
            raise
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()
        return True

    def read(self, uri: str) -> Optional[str]:
        fs, path = self._fs_path(uri)
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode()
        finally:
            stream.close()

    def age(self, uri: str) -> Optional[float]:
        fs, path = self._fs_path(uri)
        if not fs.exists(path):
            return None
        return time.time() - fs.getFileStatus(path).getModificationTime() / 1000.0

    def delete(self, uri: str) -> None:
        fs, path = self._fs_path(uri)
        fs.delete(path, False)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


class RunLock:
    """``with RunLock(uri): ...`` holds the lock for the block; raises :class:`LockedError` when it is held."""

    def __init__(self, uri: str, timeout: float = DEFAULT_LOCK_TIMEOUT, spark=None,
                 warn: Callable[[str], None] = _warn, store: str | None = None) -> None:
        self.uri = to_uri(uri)
        self.store = store or self.uri.split("/locks/", 1)[0]
        self.timeout = timeout
        if is_local_uri(self.uri):
            self.files = LocalFiles()
        elif spark is not None:
            self.files = HadoopFiles(spark)
        else:
            raise ValueError(f"{self.uri}: a lock outside the local filesystem needs a Spark session")
        self.warn = warn
        self.owner: Optional[LockOwner] = None

    # -- staleness --

    def stale_reason(self, owner: Optional[LockOwner], age: Optional[float]) -> Optional[str]:
        """Why the lock held by ``owner`` (written ``age`` seconds ago) is stale, or None if it is live."""
        if owner is None:
            if age is not None and age > UNREADABLE_GRACE:
                return f"its content is unreadable and it is {age:.0f} s old"
            return None
        held_for = time.time() - owner.started_epoch
        if owner.host == socket.gethostname():
            if not pid_alive(owner.pid):
                return f"its owner pid {owner.pid} is not running on {owner.host}"
            if owner.pid_start and _process_start(owner.pid) not in (None, owner.pid_start):
                return f"pid {owner.pid} on {owner.host} is now another process"
        if held_for > self.timeout:
            return f"it is {held_for:.0f} s old, over the lock timeout of {self.timeout:.0f} s"
        return None

    # -- acquire / release --

    def acquire(self) -> "RunLock":
        me = LockOwner.current()
        try:
            for _ in range(3):
                if self.files.create_exclusive(self.uri, me.to_json()):
                    self.owner = me
                    return self
                text = self.files.read(self.uri)
                if text is None:  # released meanwhile: try again
                    continue
                owner = LockOwner.parse(text)
                reason = self.stale_reason(owner, self.files.age(self.uri))
                if reason is None:
                    raise self._locked(owner)
                self._break(text, owner, reason)
        except OSError as exc:
            raise StoreError(f"store {self.store}: not writable? cannot create the lock {self.uri} "
                             f"({exc.strerror or exc})") from None
        raise self._locked(LockOwner.parse(self.files.read(self.uri)))

    def _locked(self, owner: Optional[LockOwner]) -> LockedError:
        who = owner.describe() if owner else "an owner still writing it"
        return LockedError(f"locked: {self.uri} is held by {who}; another run of this pipeline and run date "
                           "is in progress (a stale lock is broken automatically)")

    def _break(self, text: str, owner: Optional[LockOwner], reason: str) -> None:
        guard = self.uri + ".break"
        if not self.files.create_exclusive(guard, LockOwner.current().to_json()):
            guard_age = self.files.age(guard)
            if guard_age is not None and guard_age > BREAK_GUARD_TIMEOUT:
                self.files.delete(guard)  # left by a run that died while breaking; the next try takes it
            return  # another run is breaking it right now
        try:
            if self.files.read(self.uri) == text:  # still the stale lock we judged, not a new owner's
                self.files.delete(self.uri)
                who = owner.describe() if owner else "unknown owner"
                self.warn(f"warning: breaking stale lock {self.uri} ({who}): {reason}")
        finally:
            self.files.delete(guard)

    def release(self) -> None:
        if self.owner is None:
            return
        try:
            current = LockOwner.parse(self.files.read(self.uri))
            if current is not None and current.token == self.owner.token:
                self.files.delete(self.uri)
            else:
                self.warn(f"warning: {self.uri} is no longer this run's lock (broken as stale?); left alone")
        except Exception as exc:  # never mask the run's own outcome
            self.warn(f"warning: could not release {self.uri}: {exc}")
        finally:
            self.owner = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
