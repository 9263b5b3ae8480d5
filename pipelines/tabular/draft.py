"""A draft conf file for a data set nobody has described yet: ``python -m jobs.draft <name> <uri> --label COL``.

A seeded sample of the input is read and every column's type inferred the way the ingest will read it
(:mod:`spark_ml_pipeline.ingest.inference`); features are proposed by type and cardinality (numbers as they are,
text as an index or hashed, date-time parts, latitude / longitude pairs as distances), validation ranges from
the sample's quantiles, and ``conf/pipelines/<name>.yaml`` is written with the reason for every choice beside
it. The draft is validated as a :class:`TabularConfig` before it is written, so a drafted conf with a label
runs without edits; an existing conf is never overwritten.
"""
from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from pyspark.sql import SparkSession

from features.tabular import DATETIME_PARTS
from pipelines.tabular.config import INTEGRAL_TYPES, TIME_TYPES, TabularConfig, is_numeric
from pipelines.tabular.ingest import resolve_uri
from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.inference import ColumnProfile, Sample, input_format_of, profile, read_sample
from spark_ml_pipeline.runtime.config import PIPELINES_DIR
from spark_ml_pipeline.runtime.config_models import PipelineConfigBase
from spark_ml_pipeline.runtime.errors import ConfigError

SAMPLE_ROWS = 20_000
INDEX_MAX_DISTINCT = 256  # text with up to this many distinct values: one index per value
IDENTIFIER_SHARE = 0.5  # text with more distinct values than this share of its values: names or ids, not a feature
MAX_CLASSES = 100
FENCE = 20  # a range reaches this many interquartile spreads beyond the quartiles
LEAK_CORRELATION = 0.97  # a feature this correlated with the label is likely computed from it
SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LATITUDE = re.compile(r"(?i)(latitude|lat)")
LONGITUDE_SPELLINGS = ("longitude", "lng", "lon", "long")


@dataclass
class Draft:
    """The drafted conf's text, the conf it validates as, and what the job's summary line names."""

    text: str
    config: TabularConfig | None  # None without a label: the draft cannot be a valid conf yet
    features: list[str]  # the feature columns (inputs) proposed
    left_out: dict[str, str] = field(default_factory=dict)


# --- the command -------------------------------------------------------------------------------------

def draft(spark: SparkSession, settings: PipelineConfigBase, uri: str, label: str | None = None,
          task: str | None = None, input_format: str | None = None, sample_rows: int = SAMPLE_ROWS,
          exclude: tuple[str, ...] = (), command: str = "") -> Draft:
    """Read a sample of ``uri`` and propose a whole tabular conf (validated, not yet written); ``exclude``: columns
    declared but not features (known only after the label, say)."""
    readable = resolve_uri(spark, settings, uri)
    input_format = input_format or input_format_of(uri) or input_format_of(list_input_files(spark, readable)[0][0])
    if input_format is None:
        raise ConfigError(f"{uri}: cannot tell the format from the file names; give --format csv, json, parquet "
                          "or orc")
    sample = read_sample(spark, readable, input_format, sample_rows)
    null_values, profiles = profile(sample)
    by_name = {p.name: p for p in profiles}
    if label is not None and label not in by_name:
        raise ConfigError(f"--label {label!r}: no such column in {uri} (it has: {', '.join(by_name)})")
    unknown = [c for c in exclude if c not in by_name]
    if unknown:
        raise ConfigError(f"--exclude {', '.join(unknown)}: no such column in {uri} (it has: {', '.join(by_name)})")
    proposal = Proposal(settings.pipeline, uri, input_format, sample, null_values, profiles, label, task, command,
                        exclude)
    text = proposal.text()
    if label is None:
        return Draft(text, None, proposal.feature_inputs(), proposal.left_out)
    try:
        config = TabularConfig.model_validate({**yaml.safe_load(text), "pipeline": settings.pipeline})
    except Exception as exc:  # a draft that does not validate is this module's bug: say so, in one line
        raise ConfigError(f"the draft for {uri} does not validate ({str(exc).splitlines()[-1]}); "
                          "please report it with the input's first lines") from None
    return Draft(text, config, config.feature_inputs(), proposal.left_out)


def conf_path(conf_dir: Path | str, name: str) -> Path:
    return Path(conf_dir) / PIPELINES_DIR / f"{name}.yaml"


def refuse_existing(target: Path) -> None:
    """Checked before any data is read, and again when writing: a draft never replaces a conf."""
    if target.exists():
        raise ConfigError(_exists(target))


def _exists(target: Path) -> str:
    return f"{target} exists: a draft never overwrites a conf (remove it, or draft another name)"


def write_draft(conf_dir: Path | str, name: str, text: str) -> Path:
    """``conf/pipelines/<name>.yaml``, written whole or not at all; an existing file is never replaced."""
    target = conf_path(conf_dir, name)
    refuse_existing(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.drafting")
    temporary.write_text(text)
    try:
        _create_only(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _create_only(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` only if ``target`` does not exist (a hard link fails on an existing name)."""
    try:
        target.hardlink_to(source)
    except FileExistsError:
        raise ConfigError(_exists(target)) from None


# --- the proposal ------------------------------------------------------------------------------------

class Proposal:
    """The conf's sections, each choice with its reason, from the sampled columns' profiles."""

    def __init__(self, name: str, uri: str, input_format: str, sample: Sample, null_values: tuple[str, ...],
                 profiles: list[ColumnProfile], label: str | None, task: str | None, command: str,
                 exclude: tuple[str, ...] = ()) -> None:
        self.name, self.uri, self.input_format, self.sample = name, uri, input_format, sample
        self.exclude = exclude
        self.null_values, self.profiles, self.label, self.command = null_values, profiles, label, command
        self.by_name = {p.name: p for p in profiles}
        self.task, self.task_why = self._task(task)
        self.left_out: dict[str, str] = {}
        self._features: dict | None = None

    # --- task ---

    def _task(self, given: str | None) -> tuple[str | None, str]:
        if self.label is None:
            return None, ""
        column = self.by_name[self.label]
        numeric = is_numeric(column.sql_type)
        if given:
            if given == "regression" and not numeric:
                raise ConfigError(f"--task regression: the label {self.label!r} holds {column.sql_type} values "
                                  f"(e.g. {_examples(column)}); give --task binary or multiclass")
            return given, "as given (--task)"
        if column.distinct == 2 or column.sql_type == "boolean":
            return "binary", f"two values in the label ({_examples(column)})"
        if not numeric:
            if column.distinct > MAX_CLASSES:
                raise ConfigError(f"--label {self.label!r}: {column.distinct} distinct text values in the sample: "
                                  "too many classes to draft; give --task or another label")
            return "multiclass", f"{column.distinct} classes in the sample ({_examples(column)} ...)"
        return "regression", f"a number with {column.distinct:,} distinct values in the sample"

    # --- features ---

    def features(self) -> dict:
        if self._features is None:
            self._features = self._propose_features()
        return self._features

    def feature_inputs(self) -> list[str]:
        found = self.features()
        used = [*found["numeric"], *found["categorical"], *found["datetime"],
                *(c for d in found["distances"].values() for c in d.values())]
        return list(dict.fromkeys(used))

    def _propose_features(self) -> dict:
        numeric, categorical, datetimes, distances = [], {}, {}, {}
        points = self._points()
        for column in self.profiles:
            if column.name == self.label:
                continue
            why_not = self._not_a_feature(column)
            if why_not:
                self.left_out[column.name] = why_not
            elif column.sql_type in TIME_TYPES:
                parts = self._datetime_parts(column)
                if parts:
                    datetimes[column.name] = parts
                else:
                    self.left_out[column.name] = "one time in the sample: no parts to learn from"
            elif is_numeric(column.sql_type) or column.sql_type == "boolean":
                numeric.append(column.name)
            else:
                categorical[column.name] = self._encoding(column)
        names = list(points)
        for first, second in zip(names, names[1:]):
            (lat1, lon1), (lat2, lon2) = points[first], points[second]
            distances[f"{first}_to_{second}_km"] = {"from_latitude": lat1, "from_longitude": lon1,
                                                    "to_latitude": lat2, "to_longitude": lon2}
        return {"numeric": numeric, "categorical": categorical, "datetime": datetimes, "distances": distances}

    def _not_a_feature(self, column: ColumnProfile) -> str:
        if column.name in self.exclude:
            return "as asked (--exclude)"
        if column.present == 0:
            return "no value in the sample"
        if column.distinct == 1:
            return f"one value in the sample ({_examples(column)}): nothing to learn from"
        if column.sql_type in TIME_TYPES:
            return ""
        unique = column.distinct == column.present and column.present >= 100
        if unique and (column.sql_type in INTEGRAL_TYPES or column.sql_type == "string"):
            return "every sampled value differs: an identifier, not a feature"
        if column.sql_type == "string" and column.distinct > INDEX_MAX_DISTINCT and \
                column.distinct > IDENTIFIER_SHARE * column.present:
            return (f"{column.distinct:,} distinct texts in {column.present:,} values: names or free text, "
                    "not a category")
        leak = self._label_correlation(column)
        if leak is not None and abs(leak) >= LEAK_CORRELATION:
            return (f"correlation {leak:+.3f} with the label: probably computed from it (known only after the "
                    "label), so left out; add it to features.numeric if it is known before")
        return ""

    def _label_correlation(self, column: ColumnProfile) -> float | None:
        """Pearson's correlation with the label on the sampled rows inside both columns' fences."""
        if self.task != "regression" or not is_numeric(column.sql_type):
            return None
        label = self.by_name[self.label]
        pairs = pd.DataFrame({"x": column.values.astype(float), "y": label.values.astype(float)}).dropna()
        for name, profiled in (("x", column), ("y", label)):
            bounds = fences(profiled)
            if bounds:
                pairs = pairs[pairs[name].between(bounds[0], bounds[1])]
        if len(pairs) < 10 or pairs["x"].std() == 0 or pairs["y"].std() == 0:
            return None
        return float(pairs["x"].corr(pairs["y"]))

    def _encoding(self, column: ColumnProfile):
        if column.distinct <= INDEX_MAX_DISTINCT:
            return "index"
        buckets = min(4096, 2 ** math.ceil(math.log2(2 * column.distinct)))
        return {"encoding": "hash", "buckets": buckets}

    def _datetime_parts(self, column: ColumnProfile) -> list[str]:
        values = column.values.dropna()
        stamps = values.map(lambda v: v if isinstance(v, datetime.datetime) else
                            datetime.datetime.combine(v, datetime.time()))
        parts = []
        if stamps.map(lambda v: v.year).nunique() > 1:
            parts.append("year")
        parts += ["month", "day_of_week", "day_of_year"]
        if column.sql_type != "date" and stamps.map(lambda v: v.hour).nunique() > 1:
            parts.append("hour")
        taken = set(self.by_name)
        return [p for p in parts if p in DATETIME_PARTS and f"{column.name}_{p}" not in taken]

    def _points(self) -> dict[str, tuple[str, str]]:
        """Latitude / longitude column pairs (``pickup_latitude`` + ``pickup_longitude``) by point name."""
        points = {}
        for column in self.profiles:
            match = LATITUDE.search(column.name)
            if not match or column.name == self.label or not _within(column, 90):
                continue
            for spelling in LONGITUDE_SPELLINGS:
                for written in (spelling, spelling.upper(), spelling.capitalize()):
                    partner = self.by_name.get(column.name[:match.start()] + written + column.name[match.end():])
                    if partner is not None and partner.name != self.label and _within(partner, 180):
                        point = (column.name[:match.start()] + column.name[match.end():]).strip("_ ") or "point"
                        points.setdefault(point, (column.name, partner.name))
        return points

    # --- validation ---

    def ranges(self) -> dict[str, tuple[float, float, str]]:
        used = set(self.features()["numeric"]) | ({self.label} if self.task == "regression" else set())
        found = {}
        for column in self.profiles:
            bounds = fences(column) if column.name in used else None
            if bounds:
                found[column.name] = bounds
        return found

    # --- the text ---

    def text(self) -> str:
        lines = self._header() + self._input() + self._schema() + self._label_lines() + self._feature_lines()
        lines += self._validation() + self._split() + self._model() + self._tune()
        return "\n".join(lines) + "\n"

    def _header(self) -> list[str]:
        today = datetime.date.today().isoformat()
        sampled = len(self.profiles[0].values) if self.profiles else 0
        files = len(self.sample.files)
        return [f"# {self.name}: drafted on {today} by `{self.command or 'python -m jobs.draft'}`",
                f"# from {sampled:,} sampled rows of {self.uri} (about {self.sample.rows_estimated:,} rows in "
                f"{files} file{'s' if files != 1 else ''}).",
                "# Every choice is explained beside it; edit freely (docs/tabular.md explains every key).",
                f"# Check it against the data: python -m jobs.ingest {self.name} --check",
                f"# Run it:                     python -m jobs.run_pipeline {self.name}",
                "kind: tabular"]

    def _input(self) -> list[str]:
        layout = self.sample.layout
        lines = ["input:", f"  uri: {_scalar(self.uri)}",
                 _commented(f"  format: {self.input_format}", "from the file name")]
        if self.input_format == "csv":
            lines.append(_commented(f"  header: {str(layout.header).lower()}",
                                    "the first line names the columns" if layout.header
                                    else "the first line holds values: columns are named column_1 ..."))
            lines.append(_commented(f"  delimiter: {json.dumps(layout.delimiter)}", "the separator of the first lines"))
        if self.input_format in ("csv", "json"):
            lines.append(_commented(f"  null_values: {json.dumps(list(self.null_values))}",
                                    "the missing-value spellings found in the sample"))
        if self.input_format == "json":
            lines.append(_commented(f"  multiline: {str(layout.multiline).lower()}",
                                    "the file starts with '[' or '{' alone: one array, or objects over several "
                                    "lines" if layout.multiline else "one object per line (JSON lines)"))
        return lines

    def _schema(self) -> list[str]:
        lines = ["schema:"]
        for column in self.profiles:
            key = _key(column.name)
            written = column.written
            spec = {}
            if written.pattern:
                spec["format"] = written.pattern
            if written.decimal != ".":
                spec["decimal"] = written.decimal
            if written.thousands:
                spec["thousands"] = written.thousands
            value = (column.sql_type if not spec else
                     "{" + ", ".join([f"type: {column.sql_type}"] + [f"{k}: {json.dumps(v)}" for k, v in spec.items()])
                     + "}")
            why = column.why
            if column.sql_type == "string" or column.distinct <= 10:
                why += f"; {column.distinct:,} distinct (e.g. {_examples(column)})"
            missing = len(column.values) - column.present
            if missing:
                why += f"; {missing:,} missing"
            lines.append(_commented(f"  {key}: {value}", why))
        for name, reason in self.sample.skipped.items():
            lines.append(f"  # {name}: not declared ({reason})")
        return lines

    def _label_lines(self) -> list[str]:
        if self.label is None:
            return ["# label: the column to predict (draft again with --label COL, or set it here and take it out",
                    "# of the features below); a conf without a label cannot train",
                    "label: null", "task: regression"]
        return [_commented(f"label: {_key(self.label)}", "as given (--label)"),
                _commented(f"task: {self.task}", self.task_why)]

    def _feature_lines(self) -> list[str]:
        found = self.features()
        lines = ["features:"]
        if found["numeric"]:
            lines.append(_commented("  numeric:", "as they are; a missing value stays missing"))
            for name in found["numeric"]:
                column = self.by_name[name]
                lines.append(_commented(f"    - {_key(name)}", f"{column.sql_type}, {column.distinct:,} distinct"))
        if found["categorical"]:
            lines.append("  categorical:")
            for name, encoding in found["categorical"].items():
                column = self.by_name[name]
                if encoding == "index":
                    lines.append(_commented(f"    {_key(name)}: index", f"{column.distinct:,} distinct values: one "
                                                                      "index each (unseen ones share one)"))
                else:
                    lines.append(_commented(f"    {_key(name)}: {{encoding: hash, buckets: {encoding['buckets']}}}",
                                            f"{column.distinct:,} distinct values: hashed into buckets"))
        if found["datetime"]:
            lines.append(_commented("  datetime:", "calendar parts a tree can split on"))
            for name, parts in found["datetime"].items():
                lines.append(f"    {_key(name)}: [{', '.join(parts)}]")
        if found["distances"]:
            lines.append(_commented("  distances:", "latitude / longitude pairs: km between them"))
            for name, spec in found["distances"].items():
                inner = ", ".join(f"{k}: {_key(v)}" for k, v in spec.items())
                lines.append(f"    {name}: {{{inner}}}")
        for name, reason in self.left_out.items():
            lines.append(f"  # left out: {name}: {reason}")
        lines.append("  # check: a column known only after the label (a total that includes it, an arrival time for "
                     "a delay)")
        lines.append("  # makes test figures too good to be true: take it out here, or draft with --exclude COL")
        return lines

    def _validation(self) -> list[str]:
        lines = ["validation:"]
        if self.label:
            lines.append(_commented(f"  required: [{_key(self.label)}]", "a row without its label cannot train"))
        ranges = self.ranges()
        if ranges:
            lines.append(_commented("  ranges:", "a row outside is quarantined as range:<column>"))
            for name, (minimum, maximum, why) in ranges.items():
                lines.append(_commented(f"    {_key(name)}: {{min: {minimum}, max: {maximum}}}", why))
        if len(lines) == 1:
            lines[0] = "validation: {}"
        return lines

    def _split(self) -> list[str]:
        small = self.sample.rows_estimated < 2000
        validation, test = (0.15, 0.2) if small else (0.1, 0.1)
        why = "a small data set: more rows to judge by" if small else "a tenth each, drawn by a hash of the row"
        lines = ["split:", _commented(f"  validation_fraction: {validation}", "early stopping watches these rows"),
                 _commented(f"  test_fraction: {test}", why), "  seed: 7"]
        times = [c.name for c in self.profiles if c.sql_type in TIME_TYPES and c.name != self.label
                 and c.distinct > 1]
        if times:
            lines.append(f"  # time_column: {times[0]}              # to test on the latest rows instead")
        return lines

    def _model(self) -> list[str]:
        rows = self.sample.rows_estimated
        depth = 8 if rows >= 100_000 else 6 if rows >= 2000 else 4
        rounds = 1000 if rows >= 10_000 else 300
        return [_commented("model:", "XGBoost; early stopping picks the rounds"),
                "  num_workers: null        # null: 1 worker on all cores in local mode, one per executor on a cluster",
                "  threads_per_worker: null # null: cores / workers in local mode, spark.task.cpus on a cluster",
                _commented(f"  n_estimators: {rounds}", "an upper bound: early stopping ends sooner"),
                _commented(f"  max_depth: {depth}", f"about {rows:,} rows"),
                "  learning_rate: 0.1",
                "  min_child_weight: 1.0",
                _commented(f"  subsample: {0.9 if rows >= 2000 else 1.0}", "rows per tree"),
                "  colsample_bytree: 1.0",
                "  tree_method: hist",
                "  max_bin: 256",
                _commented("  early_stopping_rounds: 30", "stop when the validation rows stop improving")]

    def _tune(self) -> list[str]:
        return [_commented("tune:", f"a search: python -m jobs.tune {self.name}"),
                "  n_trials: 12",
                "  parallelism: 1",
                "  pruner: median",
                "  space:",
                "    max_depth: {type: int, low: 3, high: 10}",
                "    learning_rate: {type: logfloat, low: 0.02, high: 0.3}",
                "    min_child_weight: {type: logfloat, low: 0.5, high: 20.0}",
                "    subsample: {type: float, low: 0.6, high: 1.0}",
                "    colsample_bytree: {type: float, low: 0.5, high: 1.0}"]


# --- small helpers -----------------------------------------------------------------------------------

def fences(column: ColumnProfile) -> tuple[float, float, str] | None:
    """(min, max, why) of a numeric column: the sampled quartiles widened by FENCE spreads between them, robust to
    the few wild values (a fare of 7,019, coordinates of 0) a range is there to catch, which the sample's extreme
    quantiles would take in."""
    q = column.quantiles
    if not q or column.sql_type == "boolean":
        return None
    spread = (q[0.75] - q[0.25]) or (q[0.99] - q[0.01]) or max(abs(q[0.5]), 1.0)
    minimum, maximum = q[0.25] - FENCE * spread, q[0.75] + FENCE * spread
    floor = ""
    if q[0.02] >= 0 and minimum < 0:
        minimum, floor = 0.0, "; not below 0 (fewer than 2 % are)"
    if column.sql_type in INTEGRAL_TYPES:
        minimum, maximum = math.floor(minimum), math.ceil(maximum)
    return (_round(minimum), _round(maximum),
            f"sampled quartiles {_round(q[0.25])} .. {_round(q[0.75])} ± {FENCE} x {_round(spread)}{floor}")


def _commented(line: str, why: str, column: int = 44) -> str:
    return f"{line.ljust(column)} # {why}" if why else line


def _key(name: str) -> str:
    return name if SIMPLE_KEY.match(name) else json.dumps(name)


def _scalar(text: str) -> str:
    return text if re.match(r"^[A-Za-z0-9_./:*-]+$", text) and not text.startswith("*") else json.dumps(text)


def _examples(column: ColumnProfile) -> str:
    return ", ".join(str(v) for v in column.examples) or "-"


def _round(value: float):
    if value == 0 or not math.isfinite(value):
        return 0
    digits = max(0, 3 - int(math.floor(math.log10(abs(value)))))
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() else rounded


def _within(column: ColumnProfile, limit: float) -> bool:
    return bool(column.quantiles) and is_numeric(column.sql_type) and \
        abs(column.quantiles[0.005]) <= limit and abs(column.quantiles[0.995]) <= limit

