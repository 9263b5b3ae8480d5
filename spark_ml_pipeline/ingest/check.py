"""The ingest check, ``jobs.ingest <pipeline> --check``: the first rows of each input the ingest reads, tagged by the
pipeline's own reader and rules (:class:`~spark_ml_pipeline.ingest.quarantine.IngestInput`, the ingest's), and the
quarantine figures by reason, with values as read and what to set, in seconds and writing nothing.

The sample is taken with a limit on the collected rows, so Spark reads the input's partitions one batch at a
time until it has the rows (the first file or two), not the whole input. The verdict is the ingest's:
more than ``ingest.max_quarantine_fraction`` of the sample quarantined fails the check (exit 3), as it would fail
the ingest, so a scheduler or CI can run the check before the expensive part.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_ml_pipeline.ingest.quarantine import (EXAMPLES, REASON, IngestInput, over_readable_files, reason_line,
                                                 too_much, too_much_quarantined, value_as_read, with_raw_line)
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.discovery import PipelineDefinition
from spark_ml_pipeline.runtime.errors import ConfigError, DataError, ExitCode


@dataclass
class SampleFigures:
    """What the check found in the first ``sample_rows`` rows of one input."""

    input: IngestInput
    sample_rows: int  # asked for (--check-rows)
    rows_read: int  # fewer than asked: the whole input
    by_reason: dict[str, int]  # most frequent first
    examples: dict[str, list[str]]  # up to three distinct values as read per reason
    skipped_files: list[dict] = field(default_factory=list)  # unreadable, with ingest.on_unreadable_file=quarantine
    seconds: float = 0.0

    @property
    def rows_quarantined(self) -> int:
        return sum(self.by_reason.values())

    @property
    def too_much_quarantined(self) -> bool:
        return too_much_quarantined(self.rows_read, self.rows_quarantined, self.input.max_quarantine_fraction)


def sample(one: IngestInput, sample_rows: int) -> SampleFigures:
    """The first ``sample_rows`` rows of ``one`` as its ingest reads and tags them; nothing written."""
    started = time.time()

    def attempt(readable: list, skipped: list) -> tuple[list, list]:
        tagged = one.tagged(readable)
        read_as = F.coalesce(*[F.when(F.col(REASON) == reason, value_as_read(reason)) for reason in tagged.reasons])
        # A limit on what is collected: Spark scans partitions a batch at a time until it has the rows.
        rows = with_raw_line(tagged.rows).select(REASON, read_as.alias("read_as")).limit(sample_rows).collect()
        return rows, list(skipped)

    rows, skipped = over_readable_files(one.files, one.source, one.on_unreadable_file, attempt)
    by_reason = Counter(row[REASON] for row in rows if row[REASON] is not None)
    examples: dict[str, list[str]] = {}
    for reason, read_as in rows:
        if reason is None or read_as is None:
            continue
        seen = examples.setdefault(reason, [])
        if read_as not in seen and len(seen) < EXAMPLES:
            seen.append(read_as)
    return SampleFigures(one, sample_rows, len(rows), dict(by_reason.most_common()), examples, skipped,
                         time.time() - started)


def share(n: int, rows: int) -> str:
    return f"{n / rows:.1%}" if rows else "-"


def sampled(figures: SampleFigures) -> str:
    if figures.rows_read < figures.sample_rows:
        return "the whole input"
    return f"the first {figures.sample_rows:,} rows of the input: --check-rows"


def report(pipeline: str, figures: SampleFigures) -> str:
    """The check's lines about one input: rows read, valid and quarantined, then one line per reason (count,
    share, values as read, and the advice the ingest's failure would give)."""
    rows, quarantined = figures.rows_read, figures.rows_quarantined
    lines = [f"check {pipeline} {figures.input.key} {figures.input.source}: {rows:,} rows read ({sampled(figures)}), "
             f"{rows - quarantined:,} valid, {quarantined:,} quarantined ({share(quarantined, rows)}) "
             f"in {figures.seconds:.1f} s"]
    reason_width, count_width = max(map(len, figures.by_reason), default=0), len(f"{rows:,}")
    for reason, n in figures.by_reason.items():
        lines.append(reason_line(reason, f"{n:>{count_width},} {share(n, rows):>6}", figures.examples.get(reason, []),
                                 figures.input.advice(reason), reason_width))
    lines += [f"  unreadable file skipped (ingest.on_unreadable_file=quarantine): {skipped['file']} "
              f"({skipped['reason']})" for skipped in figures.skipped_files]
    return "\n".join(lines)


def check_ingest(start_spark: Callable[[], SparkSession], config: PipelineConfigBase,
                 definition: PipelineDefinition, sample_rows: int) -> int:
    """``jobs.ingest <pipeline> --check``: each input's figures on stdout; exit 0 when every sample's quarantined
    share is within ``ingest.max_quarantine_fraction``, else a :class:`DataError` (exit 3) naming the inputs and
    their shares. No lock, no store, no tracking: the check writes nothing."""
    if definition.ingest_check is None:
        raise ConfigError(f"pipeline {config.pipeline!r} (kind {config.kind}) has no ingest check")
    spark = start_spark()
    found = []
    with definition.ingest_check(spark, config) as inputs:
        for one in inputs:
            found.append(sample(one, sample_rows))
            print(report(config.pipeline, found[-1]), flush=True)
    failing = [f for f in found if f.too_much_quarantined]
    if failing:
        raise DataError("; ".join(f"{f.input.key} {f.input.source}: "
                                  f"{too_much(f.rows_read, f.rows_quarantined, f.input.max_quarantine_fraction)} "
                                  f"({sampled(f)} checked): the ingest would fail" for f in failing))
    limits = ", ".join(sorted({f"{f.input.max_quarantine_fraction:g}" for f in found}))
    print(f"within ingest.max_quarantine_fraction ({limits}): the ingest would commit")
    return ExitCode.OK
