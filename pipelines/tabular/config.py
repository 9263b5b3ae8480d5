"""The configuration of a ``tabular`` pipeline: one conf file describes a data set, its checks and its model.

Everything a run needs is validated here, before Spark starts: Spark SQL types of the explicit ``schema``, that
every column a feature, rule, key or the split names is declared, that features have usable types, and that
the columns features create do not collide. Errors name the dotted key (``schema.<column>``,
``features.numeric``, ...) in one line.
"""
from __future__ import annotations

import datetime
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from features.tabular import DATETIME_PARTS, feature_output_columns
from spark_ml_pipeline.runtime.config_models import (IngestPolicy, PipelineConfigBase, Section, SplitConfig,
                                                     XGBoostConfig)

NAME = "tabular"
PACKAGE_SCHEME = "package:"

INTEGRAL_TYPES = {"tinyint", "smallint", "int", "bigint"}
FRACTIONAL_TYPES = {"float", "double"}
TIME_TYPES = {"date", "timestamp", "timestamp_ntz"}
SIMPLE_TYPES = {"string", "boolean", *INTEGRAL_TYPES, *FRACTIONAL_TYPES, *TIME_TYPES}
TYPE_ALIASES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint", "real": "float",
                "str": "string", "bool": "boolean", "timestamp_ltz": "timestamp"}
DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
BAD_NAME = re.compile(r"[.`]")


def _spark_sql_type(value: str) -> str:
    """A Spark SQL type name (lower case, aliases resolved), or a one-line error listing the known ones."""
    text = re.sub(r"\s+", "", str(value).strip().lower()) if isinstance(value, str) else None
    text = TYPE_ALIASES.get(text, text)
    if text in SIMPLE_TYPES:
        return text
    if text == "decimal":
        return "decimal(10,0)"
    match = DECIMAL.match(text or "")
    if match and 0 < int(match.group(1)) <= 38 and int(match.group(2)) <= int(match.group(1)):
        return f"decimal({match.group(1)},{match.group(2)})"
    known = ", ".join(sorted(SIMPLE_TYPES)) + ", decimal(p,s)"
    raise PydanticCustomError("spark_sql_type", _literal(f"unknown Spark SQL type {value!r} (expected one of {known})"))


def _literal(message: str) -> str:
    """A pydantic message template that prints as given (braces in user input are not placeholders)."""
    return message.replace("{", "(").replace("}", ")")


SparkSqlType = Annotated[str, AfterValidator(_spark_sql_type)]


def is_numeric(sql_type: str) -> bool:
    return sql_type in INTEGRAL_TYPES or sql_type in FRACTIONAL_TYPES or sql_type.startswith("decimal")


# --- sections ----------------------------------------------------------------------------------------

class InputSection(Section):
    """Where the rows are and how they are written."""

    # Any Hadoop-filesystem URI, path or glob; or package:<package>/<path inside it> (a file an installed
    # package ships). A .zip holding one file is extracted once into the store.
    uri: str = Field(min_length=1)
    # A fixed holdout (same format, schema and rules): its valid rows are the test set, scored instead of a split
    # of ``uri``, whose valid rows then all train (less ``split.validation_fraction`` for early stopping).
    test_uri: Optional[str] = Field(None, min_length=1)
    format: Literal["csv", "json", "parquet", "orc"] = "csv"  # CSV and JSON may be compressed (.gz, .bz2)
    header: bool = True  # CSV: the first line of every file names the columns
    delimiter: str = Field(",", min_length=1)  # CSV field separator
    null_values: list[str] = ["", "NA"]  # CSV / JSON text that means "missing" (compared after trimming)
    # CSV without a header: skip the first line of every file (0 or 1). What Spark's header=true does when a
    # schema is given, as published examples read header-less files (the first line dropped, never a row);
    # Spark's CSV reader can drop that one line, not more.
    skip_lines: int = Field(0, ge=0, le=1)
    # JSON: a file holds one array of objects, or objects pretty-printed over several lines (as most tools export
    # JSON); false reads JSON lines (one object per line), which Spark splits across tasks.
    multiline: bool = False


class WrittenSpec(Section):
    """How a column's values are written, when not as Spark reads them by default (``schema.<column>: {type:
    ..., format: ...}``)."""

    # date / timestamp: a Spark datetime pattern (yyyy/MM/dd, dd.MM.yyyy HH:mm, yyyy-MM-dd'T'HH:mm:ssXXX with an
    # offset, ... VV with a zone name), or epoch_seconds / epoch_millis for numbers since 1970-01-01 UTC.
    format: Optional[str] = Field(None, min_length=1)
    decimal: Literal[".", ","] = "."  # numbers: the decimal separator
    thousands: Optional[Literal[",", ".", " ", "'", "_"]] = None  # numbers: a thousands separator to ignore

    @model_validator(mode="after")
    def _separators_differ(self) -> "WrittenSpec":
        if self.thousands == self.decimal:
            raise ValueError(f"decimal and thousands are both {self.decimal!r}")
        return self


def _split_column_specs(data):
    """``schema: {day: {type: date, format: yyyy/MM/dd}}`` -> the type in ``schema``, the rest in ``formats``."""
    if not isinstance(data, dict):
        return data
    key = "schema" if "schema" in data else "columns"
    schema = data.get(key)
    if not isinstance(schema, dict) or not any(isinstance(v, dict) for v in schema.values()):
        return data
    types, formats = {}, dict(data.get("formats") or {})
    for column, value in schema.items():
        if isinstance(value, dict):
            spec = dict(value)
            if "type" not in spec:
                raise PydanticCustomError("tabular_config", _literal(f"schema.{column}: a column written as a "
                                                                     "mapping needs its type (type: ...)"))
            types[column] = spec.pop("type")
            if spec:
                formats[column] = spec
        else:
            types[column] = value
    return {**data, key: types, "formats": formats}


def _categorical_shorthand(value):
    """``[a, b]`` -> every column indexed; ``a: hash`` -> ``{encoding: hash}``."""
    if isinstance(value, list):
        return {column: {"encoding": "index"} for column in value}
    if isinstance(value, dict):
        return {column: {"encoding": spec} if isinstance(spec, str) else spec for column, spec in value.items()}
    return value


class CategoricalSpec(Section):
    encoding: Literal["index", "hash"] = "index"  # index: StringIndexer (unseen -> own index); hash: buckets
    buckets: PositiveInt = 64  # hash only


class DistanceSpec(Section):
    """A great-circle distance (km) between two points given as latitude / longitude columns (degrees)."""

    from_latitude: str
    from_longitude: str
    to_latitude: str
    to_longitude: str

    def columns(self) -> list[str]:
        return [self.from_latitude, self.from_longitude, self.to_latitude, self.to_longitude]


DatetimePart = Literal[tuple(DATETIME_PARTS)]


class FeaturesSection(Section):
    numeric: list[str] = []
    categorical: Annotated[dict[str, CategoricalSpec], BeforeValidator(_categorical_shorthand)] = {}
    datetime: dict[str, list[DatetimePart]] = {}  # column -> parts (columns <column>_<part>)
    distances: dict[str, DistanceSpec] = {}  # output column -> its two points


class RangeSpec(Section):
    # Inclusive bounds: numbers for numeric columns, dates or timestamps (ISO 8601) for time columns.
    min: Optional[Union[float, datetime.datetime, datetime.date]] = None
    max: Optional[Union[float, datetime.datetime, datetime.date]] = None

    @model_validator(mode="after")
    def _ordered(self) -> "RangeSpec":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None:
            if isinstance(self.min, float) != isinstance(self.max, float):
                raise ValueError("give min and max alike: both numbers or both dates / timestamps")
            if _comparable(self.min) > _comparable(self.max):
                raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _comparable(bound):
    return datetime.datetime.combine(bound, datetime.time()) if type(bound) is datetime.date else bound


class ValidationSection(Section):
    """Rules a row must pass; a row that breaks one goes to the quarantine with reason ``<rule>:<column>``."""

    required: list[str] = []  # the value must be present (and well-typed)
    ranges: dict[str, RangeSpec] = {}  # numeric or time columns; a missing value passes (unless required)
    allowed: dict[str, list[Union[bool, int, float, str]]] = {}  # the value must be one of these (or missing)


class TabularConfig(PipelineConfigBase):
    """A tabular data set, its validation, its features and its XGBoost model, from one conf file."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    kind: Literal["tabular"] = NAME
    input: InputSection
    # Named `columns` in Python (BaseModel.schema exists); `schema` in the conf file.
    columns: dict[str, SparkSqlType] = Field(alias="schema", min_length=1)
    # How columns are written (dates by a pattern, numbers with a decimal comma); given in the conf file inside
    # ``schema`` as ``<column>: {type: ..., format: ...}``.
    formats: dict[str, WrittenSpec] = {}
    label: str
    task: Literal["regression", "binary", "multiclass"]
    keys: list[str] = []  # columns that identify a row (scoring output, split hash); default: all declared
    features: FeaturesSection
    validation: ValidationSection = ValidationSection()
    ingest: IngestPolicy = IngestPolicy()
    split: SplitConfig = SplitConfig()
    model: XGBoostConfig = XGBoostConfig()

    @model_validator(mode="before")
    @classmethod
    def _column_specs(cls, data):
        return _split_column_specs(data)

    @model_validator(mode="after")
    def _columns_are_declared(self) -> "TabularConfig":
        for problem in consistency_problems(self):
            raise PydanticCustomError("tabular_config", _literal(problem))
        return self

    def feature_inputs(self) -> list[str]:
        f = self.features
        used = [*f.numeric, *f.categorical, *f.datetime, *(c for d in f.distances.values() for c in d.columns())]
        return list(dict.fromkeys(used))


def _bound(spec: RangeSpec):
    return spec.min if spec.min is not None else spec.max


def consistency_problems(config: TabularConfig):
    """One message per problem, naming the key: columns must be declared in ``schema`` with usable types."""
    schema, f, v = config.columns, config.features, config.validation
    declared = ", ".join(schema)

    if config.input.skip_lines and config.input.format != "csv":
        yield f"input.skip_lines: only for CSV files (input.format is {config.input.format})"
    if config.input.skip_lines and config.input.header:
        yield ("input.skip_lines: for CSV files without a header (input.header: false); a header line is "
               "already not a row")

    for column in schema:
        if BAD_NAME.search(column):
            yield f"schema.{column}: column names may not contain '.' or '`'"
    if config.input.multiline and config.input.format != "json":
        yield f"input.multiline: only for JSON files (input.format is {config.input.format})"
    for column, written in config.formats.items():
        sql_type = schema.get(column)
        if sql_type is None:
            yield f"schema.{column}: how it is written is given, but no such column is declared"
        elif written.format and sql_type not in TIME_TYPES:
            yield f"schema.{column}.format: for date and timestamp columns ({column} is {sql_type})"
        elif (written.decimal != "." or written.thousands) and not is_numeric(sql_type):
            yield f"schema.{column}: decimal / thousands are for numeric columns ({column} is {sql_type})"
        elif written.format and config.input.format in ("parquet", "orc"):
            yield f"schema.{column}.format: {config.input.format} files store typed values; format is for text files"

    def unknown(key: str, columns) -> str | None:
        for column in columns:
            if column not in schema:
                return f"{key}: unknown column {column!r} (not in schema: {declared})"
        return None

    checks = [("label", [config.label]), ("keys", config.keys), ("features.numeric", f.numeric),
              ("features.categorical", f.categorical), ("features.datetime", f.datetime),
              ("validation.required", v.required), ("validation.ranges", v.ranges),
              ("validation.allowed", v.allowed)]
    checks += [(f"features.distances.{name}", spec.columns()) for name, spec in f.distances.items()]
    if config.split.time_column and config.input.test_uri:
        yield ("split.time_column: input.test_uri names the test rows, so the split by time has nothing to choose; "
               "set one of them")
        return
    if config.split.time_column:
        checks.append(("split.time_column", [config.split.time_column]))
    for key, columns in checks:
        problem = unknown(key, columns)
        if problem:
            yield problem
            return

    def typed(key: str, columns, ok, wanted: str):
        for column in columns:
            if not ok(schema[column]):
                return f"{key}: column {column!r} is {schema[column]}, expected {wanted}"
        return None

    numeric = lambda t: is_numeric(t) or t == "boolean"  # noqa: E731
    typed_checks = [
        ("features.numeric", f.numeric, numeric, "a numeric or boolean type"),
        ("features.datetime", f.datetime, lambda t: t in TIME_TYPES, "date, timestamp or timestamp_ntz"),
        ("validation.ranges", [c for c, r in v.ranges.items() if isinstance(_bound(r), float)], is_numeric,
         "a numeric type for numeric bounds"),
        ("validation.ranges", [c for c, r in v.ranges.items() if not isinstance(_bound(r), float)],
         lambda t: t in TIME_TYPES, "a date or timestamp type for date bounds"),
        ("split.time_column", [config.split.time_column] if config.split.time_column else [],
         lambda t: t in TIME_TYPES or is_numeric(t), "a date, timestamp or numeric type"),
    ]
    typed_checks += [(f"features.distances.{name}", spec.columns(), is_numeric, "a numeric type")
                     for name, spec in f.distances.items()]
    if config.task == "regression":
        typed_checks.append(("label", [config.label], is_numeric, "a numeric type for task regression"))
    for key, columns, ok, wanted in typed_checks:
        problem = typed(key, columns, ok, wanted)
        if problem:
            yield problem
            return

    if config.label in config.feature_inputs():
        yield f"features: the label {config.label!r} cannot also be a feature"
    if not config.feature_inputs():
        yield "features: declare at least one feature (numeric, categorical, datetime or distances)"
    for column, parts in f.datetime.items():
        if not parts:
            yield f"features.datetime.{column}: list the parts to derive ({', '.join(DATETIME_PARTS)})"
    created = feature_output_columns(indexed=[c for c, s in f.categorical.items() if s.encoding == "index"],
                                     hashed=[c for c, s in f.categorical.items() if s.encoding == "hash"],
                                     datetimes=f.datetime, distances=list(f.distances))
    seen: set[str] = set()
    for column in created:
        if column in schema or column in seen or column == f"{config.label}_index":
            yield (f"features: the derived column {column!r} collides with a declared or derived column; "
                   "rename the column in schema or the distance")
        seen.add(column)
