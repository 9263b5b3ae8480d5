"""``jobs.ingest taxi_fare --check`` on trip files: the taxi kind's own reader and rules on the first rows, its
reasons printed with their counts, and nothing written in the store."""
import re

from jobs.ingest import main
from spark_ml_pipeline.runtime.errors import ExitCode


def test_the_check_prints_every_reason_the_ingest_would_give(spark, tmp_path, legacy_csv, expected_reasons, capsys):
    source, manifest = legacy_csv
    args = ["taxi_fare", "--check", f"ingest.input={source}", "ingest.format=csv", f"store.root={tmp_path / 'store'}",
            "spark.master=local[2]"]

    assert main(args) == ExitCode.OK
    out = capsys.readouterr().out
    quarantined = sum(expected_reasons(manifest).values())
    assert (f"{manifest.rows:,} rows read (the whole input), {manifest.clean_rows:,} valid, {quarantined:,} "
            "quarantined") in out
    printed = dict(re.findall(r"^  (\w+) +([\d,]+) ", out, re.MULTILINE))
    assert {reason: int(n.replace(",", "")) for reason, n in printed.items()} == expected_reasons(manifest)
    malformed = next(line for line in out.splitlines() if line.strip().startswith("malformed_line"))
    assert re.search(r"— '\w+,2015-[^']*', '[^']*', '[^']*'$", malformed)  # three lines as read
    assert "the ingest would commit" in out

    assert main([*args, "--check-rows", "1000"]) == ExitCode.OK
    assert "1,000 rows read (the first 1,000 rows of the input: --check-rows)" in capsys.readouterr().out
    assert not (tmp_path / "store").exists()
