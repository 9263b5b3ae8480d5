"""A process tree's resident memory, sampled while it runs: the benchmarks' peak RSS of a job (its Python
driver, the JVM, Spark's Python workers), which no single process's own peak shows."""
from __future__ import annotations

import threading
import time

import psutil


def tree_rss(process: psutil.Process) -> int:
    """The resident memory of ``process`` and all its descendants now, in bytes (0 once it has exited)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:  # the process itself has just exited
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # a worker that just exited
            pass
    return total


class TreeMemory:
    """Samples the tree of process ``pid`` every ``interval`` seconds inside a ``with`` block: ``peak`` (bytes)
    and ``samples`` ((seconds since the block began, bytes))."""

    def __init__(self, pid: int, interval: float):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] = []

    def _sample(self, watched: psutil.Process, started: float, stop: threading.Event) -> None:
        while not stop.is_set():
            rss = tree_rss(watched)
            self.peak = max(self.peak, rss)
            self.samples.append((round(time.perf_counter() - started, 1), rss))
            stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True,
                                        args=(psutil.Process(self.pid), time.perf_counter(), self._stop))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
