"""CPU seconds used by this process and every process below it (the JVM, Spark's Python workers): a figure the
other work on a busy machine disturbs far less than wall time, so profiles can be taken while it is loaded."""
from __future__ import annotations

import psutil


def tree_cpu_seconds(process: psutil.Process | None = None) -> float:
    """User + system CPU seconds of ``process`` (default: this one) and its live descendants so far."""
    process = process or psutil.Process()
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:  # a worker that just exited
            continue
        total += times.user + times.system
    return total
