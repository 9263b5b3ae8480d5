"""Layered, typed configuration: errors name the key and the file, before Spark starts."""
import shutil
from pathlib import Path

import pytest

from features.taxi import feature_columns
from spark_ml_pipeline.runtime.config import known_pipelines, layer_config, load_config, load_pipeline, parse_overrides
from spark_ml_pipeline.runtime.config_models import ComputeConfig, SparkConfig
from spark_ml_pipeline.runtime.discovery import find_pipeline, known_kinds
from spark_ml_pipeline.runtime.errors import ConfigError
from spark_ml_pipeline.runtime.session import spark_conf
from spark_ml_pipeline.train.xgboost import xgb_estimator

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def conf_dir(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", target)
    return target


def test_layers_apply_in_order_base_pipeline_env_command_line(conf_dir):
    (conf_dir / "env" / "local.yaml").write_text("spark:\n  shuffle_partitions: 3\nmodel:\n  max_depth: 4\n")
    taxi = conf_dir / "pipelines" / "taxi_fare.yaml"
    taxi.write_text(taxi.read_text().replace("max_depth: 8", "max_depth: 5").replace("n_estimators: 400",
                                                                                      "n_estimators: 300"))
    config = load_config("taxi_fare", ["local"], ["model.n_estimators=7"], conf_dir)
    assert config.spark.shuffle_partitions == 3          # environment over base
    assert config.model.max_depth == 4                   # environment over pipeline (--env cluster can change it)
    assert config.model.n_estimators == 7                # command line over all
    assert config.spark.app_name == "spark-ml-pipeline"  # untouched base value
    assert load_config("taxi_fare", ["cluster"], [], conf_dir).model.max_depth == 5  # pipeline over base
    tree = layer_config("taxi_fare", ["local"], ["model.n_estimators=7"], conf_dir)
    assert tree.source_of("spark.shuffle_partitions").endswith("local.yaml")
    assert tree.source_of("model.max_depth").endswith("local.yaml")
    assert tree.source_of("model.learning_rate").endswith("taxi_fare.yaml")
    assert tree.source_of("model.n_estimators") == "command line"


def test_pipelines_are_discovered_by_name_and_kind(conf_dir):
    assert {"taxi_fare", "fashion_mnist", "fashion_autoencoder", "darcy_surrogate", "tweet_sentiment"} <= set(
        known_kinds())
    assert set(known_pipelines(conf_dir)) >= {"taxi_fare", "fashion_mnist"}
    definition = find_pipeline("taxi_fare")
    assert {"generate", "ingest", "featurize", "train", "run"} <= set(definition.stages)
    # A second pipeline of an existing kind is one conf file: its name is the file, its kind the package.
    (conf_dir / "pipelines" / "taxi_current.yaml").write_text("kind: taxi_fare\ngenerate:\n  tlc_schema: current\n")
    config, definition = load_pipeline("taxi_current", ["local"], [], conf_dir)
    assert (config.pipeline, config.kind, config.generate.tlc_schema) == ("taxi_current", "taxi_fare", "current")
    assert config.store.data(config.pipeline, "raw").endswith("/store/data/taxi_current/raw")
    (conf_dir / "pipelines" / "odd.yaml").write_text("kind: no_such_kind\n")
    with pytest.raises(ConfigError, match=r"key 'kind' \(set in .*odd\.yaml\): unknown pipeline kind 'no_such_kind'"):
        load_config("odd", ["local"], [], conf_dir)


def test_derived_values_are_computed_not_typed_twice(conf_dir):
    config = load_config("tweet_sentiment", ["local"], ["text.vocab_size=500"], conf_dir)
    assert config.model.vocab_size == 502 and config.models["lstm"]["vocab_size"] == 502
    with pytest.raises(ConfigError, match=r"models\.bilstm\.vocab_size is derived from text\.vocab_size \+ 2 = 502"):
        load_config("tweet_sentiment", ["local"], ["text.vocab_size=500", "models.bilstm.vocab_size=9"], conf_dir)


def test_several_environments_stack(conf_dir):
    config = load_config("taxi_fare", ["cluster", "gpu"], [], conf_dir)
    assert config.spark.master == "spark://127.0.0.1:7077"
    assert config.compute.device == "cuda"


def test_unknown_key_names_the_key_and_the_file(conf_dir):
    (conf_dir / "env" / "local.yaml").write_text("spark:\n  shufle_partitions: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'spark\.shufle_partitions' \(set in .*local\.yaml\)"):
        load_config("taxi_fare", ["local"], [], conf_dir)


def test_wrong_type_names_the_key_and_the_file(conf_dir):
    with pytest.raises(ConfigError, match=r"key 'model\.max_depth' \(set in command line\).*integer"):
        load_config("taxi_fare", ["local"], ["model.max_depth=deep"], conf_dir)
    taxi = conf_dir / "pipelines" / "taxi_fare.yaml"
    taxi.write_text(taxi.read_text().replace("rows: 200000", "rows: -5"))
    with pytest.raises(ConfigError, match=r"key 'generate\.rows' \(set in .*taxi_fare\.yaml\).*greater than 0"):
        load_config("taxi_fare", ["local"], [], conf_dir)


def test_bad_values_are_rejected_before_spark(conf_dir):
    with pytest.raises(ConfigError, match=r"spark\.master.*expected local"):
        load_config("taxi_fare", ["local"], ["spark.master=localhost"], conf_dir)
    with pytest.raises(ConfigError, match=r"spark\.driver_memory.*memory size"):
        load_config("taxi_fare", ["local"], ["spark.driver_memory=lots"], conf_dir)
    with pytest.raises(ConfigError, match=r"compute\.device"):
        load_config("taxi_fare", ["local"], ["compute.device=tpu"], conf_dir)
    with pytest.raises(ConfigError, match=r"split.*below 0\.9"):
        load_config("taxi_fare", ["local"], ["split.validation_fraction=0.5", "split.test_fraction=0.45"], conf_dir)


def test_missing_environment_file_and_unknown_pipeline(conf_dir):
    with pytest.raises(ConfigError, match=r"staging\.yaml: no such configuration file \(environments: .*cluster"):
        load_config("taxi_fare", ["staging"], [], conf_dir)
    with pytest.raises(ConfigError, match=r"unknown pipeline 'taxi_tip': no .*taxi_tip\.yaml \(known: .*taxi_fare"):
        load_config("taxi_tip", ["local"], [], conf_dir)


def test_invalid_yaml_and_malformed_override(conf_dir):
    (conf_dir / "env" / "local.yaml").write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError, match=r"local\.yaml: not valid YAML"):
        load_config("taxi_fare", ["local"], [], conf_dir)
    with pytest.raises(ConfigError, match=r"override 'model\.max_depth' is not of the form"):
        parse_overrides(["model.max_depth"])


def test_override_values_are_parsed_as_yaml():
    assert parse_overrides(["a.b=3", "a.c=0.5", "d=[x, y]", "e=local[2]", "f=true"]) == {
        "a": {"b": 3, "c": 0.5}, "d": ["x", "y"], "e": "local[2]", "f": True}


def test_spark_conf_for_local_mode_binds_loopback_and_uses_this_python():
    conf = spark_conf(SparkConfig(master="local[2]"), ComputeConfig(), python="/venv/bin/python")
    assert conf["spark.driver.bindAddress"] == conf["spark.driver.host"] == "127.0.0.1"
    assert conf["spark.pyspark.python"] == conf["spark.executorEnv.PYSPARK_PYTHON"] == "/venv/bin/python"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.driver.maxResultSize"] == "0"  # an XGBoost fit's input streams to the driver
    assert not any(key.startswith("spark.executor.resource.gpu") for key in conf)


def test_gpu_config_requests_gpus_from_spark(conf_dir):
    config = load_config("taxi_fare", ["cluster", "gpu"], [], conf_dir)
    conf = spark_conf(config.spark, config.compute)
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.task.resource.gpu.amount"] == "1.0"
    script = Path(conf["spark.executor.resource.gpu.discoveryScript"])
    assert script.is_absolute() and script.name == "get_gpus_resources.sh" and script.exists()
    assert "spark.driver.bindAddress" not in conf  # a cluster driver is reachable from executors
    assert "spark.driver.maxResultSize" not in conf  # a cluster fits on executors: Spark's cap stands


def test_gpu_config_makes_xgboost_train_on_cuda(conf_dir):
    config = load_config("taxi_fare", ["gpu"], [], conf_dir)
    regressor = xgb_estimator(config.model, feature_columns(), "fare_amount", device=config.compute.device)
    assert regressor.getOrDefault("device") == "cuda"
    assert regressor.getOrDefault("num_workers") == (config.model.num_workers or 1)


def test_spark_stage_progress_shows_on_a_terminal_only():
    auto = SparkConfig(master="local[2]")
    assert spark_conf(auto, ComputeConfig(), terminal=True)["spark.ui.showConsoleProgress"] == "true"
    assert spark_conf(auto, ComputeConfig(), terminal=False)["spark.ui.showConsoleProgress"] == "false"
    off = SparkConfig(master="local[2]", console_progress="off")
    assert spark_conf(off, ComputeConfig(), terminal=True)["spark.ui.showConsoleProgress"] == "false"


def test_on_and_off_written_bare_are_the_words_not_yaml_booleans(conf_dir):
    for word in ("on", "off"):  # YAML 1.1 reads them as true/false, in a file as on the command line
        (conf_dir / "env" / "local.yaml").write_text(f"spark:\n  console_progress: {word}\n")
        assert load_config("taxi_fare", ["local"], [], conf_dir).spark.console_progress == word
        command_line = load_config("taxi_fare", [], [f"spark.console_progress={word}"], conf_dir)
        assert command_line.spark.console_progress == word
