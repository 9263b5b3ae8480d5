"""The driver JVM's class-data-sharing archive (runtime/class_archive.py): recorded by ``make setup``, mapped by
every session that may use it, left out when the configuration says false. Its speed is bench/short_jobs.py's."""
from pathlib import Path

from spark_ml_pipeline.runtime.class_archive import RECORD_ENV, archive_path, class_archive_options
from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
from spark_ml_pipeline.runtime.session import spark_conf


def driver_options(**spark) -> str:
    return spark_conf(SparkConfig(**spark), ComputeConfig(), terminal=False)["spark.driver.extraJavaOptions"]


def test_setup_recorded_the_archive_and_the_sessions_jvm_maps_it(spark):
    archive = archive_path()
    assert archive is not None and archive.is_file(), f"make setup records {archive} (scripts/build_class_archive.py)"
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in arguments, arguments
    # Given is not used: a JVM that rejects an archive starts without it. The mapped file shows it was taken
    # (/proc/<pid>/maps names it by its real path: the environment may be a symlink, e.g. a worktree's .venv).
    maps = Path(f"/proc/{jvm.java.lang.ProcessHandle.current().pid()}/maps").read_text()
    assert str(archive.resolve()) in maps


def test_the_archive_is_used_unless_the_configuration_says_false():
    archive = archive_path()
    assert f"-XX:SharedArchiveFile={archive}" in driver_options(class_archive=True).split()
    off = driver_options(class_archive=False)
    assert "SharedArchive" not in off and "log4j2.configurationFile" in off  # the other driver options stay


def test_the_recording_run_asks_the_jvm_to_write_the_archive_on_exit(monkeypatch, tmp_path):
    monkeypatch.setenv(RECORD_ENV, str(tmp_path / "partial.jsa"))
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'partial.jsa'}" in class_archive_options()
    assert not any("SharedArchiveFile" in option for option in class_archive_options())
