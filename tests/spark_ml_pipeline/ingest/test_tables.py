"""Declared columns read from a typed (Parquet) file: an integer file column to a narrower declared integer is
range-checked only, a value that does not fit keeps its raw text; a fractional column still refuses 1.5 for an
integer."""
import pyarrow as pa
import pyarrow.parquet as pq

from spark_ml_pipeline.ingest.files import list_input_files
from spark_ml_pipeline.ingest.quarantine import RAW_PREFIX
from spark_ml_pipeline.ingest.tables import DeclaredColumn, declared_rows, read_parts


def test_typed_integers_are_range_checked_and_fractions_refused(spark, tmp_path):
    pq.write_table(pa.table({"count": pa.array([5, 2**40, None], pa.int64()),
                             "share": pa.array([2.0, 1.5, None], pa.float64())}), tmp_path / "rows.parquet")
    declared = [DeclaredColumn("count", "int"), DeclaredColumn("share", "int")]
    read = read_parts(spark, list_input_files(spark, str(tmp_path)), "parquet", declared)
    rows = declared_rows(read.parts[0], declared, required=[]).collect()
    assert [(r["count"], r[RAW_PREFIX + "count"]) for r in rows] == [(5, None), (None, str(2**40)), (None, None)]
    assert [(r["share"], r[RAW_PREFIX + "share"]) for r in rows] == [(2, None), (None, "1.5"), (None, None)]
