"""A pipeline run through the MLflow tracking server (PostgreSQL backend, proxied artifacts): the run is in the
database, its Spark model is on the store root (where executors write), and the registry loads it."""
import json
import uuid

import mlflow
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from pipelines.taxi_fare import train as taxi_train
from pipelines.taxi_fare.config import ingest_location
from spark_ml_pipeline.runtime.config import load_config
from spark_ml_pipeline.runtime.io import local_path, to_uri
from spark_ml_pipeline.store.registry import promote_if_better, resolve
from spark_ml_pipeline.store.tracking import MODEL_POINTER_ARTIFACT, Store

RUN_DATE = "2026-01-15"
RUN_MODEL = f"taxi_fare_server_run_{uuid.uuid4().hex[:8]}"  # the tracking server is shared by the test session


def tiny(store_root, tracking_uri, *extra):
    return load_config("taxi_fare", ["local"], [
        f"store.root={store_root}", f"store.tracking_uri={tracking_uri}", f"run_date={RUN_DATE}",
        "generate.rows=3000", "generate.months=1", "model.n_estimators=20", "model.num_workers=1", *extra])


@pytest.fixture(scope="module")
def server_run(spark, store_server, tmp_path_factory):
    store_root = tmp_path_factory.mktemp("pipeline-store")
    config = tiny(store_root, store_server.tracking_uri, f"registry.name={RUN_MODEL}")
    return config, taxi_train.run(spark, config)


def rmse_of(spark, config, model_uri: str) -> float:
    trips = spark.read.parquet(ingest_location(config) + "/valid")
    scored = PipelineModel.load(model_uri).transform(trips)
    return scored.select(F.sqrt(F.avg((F.col("prediction") - F.col("fare_amount")) ** 2))).first()[0]


def test_run_is_recorded_in_postgresql_through_the_server(server_run, store_server):
    config, result = server_run
    assert result.tracking_uri == store_server.tracking_uri
    run = MlflowClient(store_server.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    engine = sqlalchemy.create_engine(store_server.mlflow_db)
    try:
        with engine.connect() as connection:
            status, = connection.execute(sqlalchemy.text("SELECT status FROM runs WHERE run_uuid = :id"),
                                         {"id": result.run_id}).one()
            rmse, = connection.execute(sqlalchemy.text(
                "SELECT value FROM latest_metrics WHERE run_uuid = :id AND key = 'test_rmse'"),
                {"id": result.run_id}).one()
    finally:
        engine.dispose()
    assert status == "FINISHED" and rmse == pytest.approx(result.metrics["test_rmse"])
    # Small artifacts go through the server to its artifacts destination.
    lineage = list(store_server.artifacts.rglob(f"{result.run_id}/artifacts/lineage.json"))
    assert len(lineage) == 1 and '"input_files"' in lineage[0].read_text()


def test_spark_model_is_written_to_the_store_root_and_the_run_points_at_it(spark, server_run, store_server):
    config, result = server_run
    expected = f"{to_uri(config.store.root)}/models/taxi_fare/{result.run_id}/model"
    assert result.model_uri == expected
    directory = local_path(expected)
    assert (directory / "metadata").is_dir() and (directory / "stages").is_dir()
    assert not [p.name for p in directory.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    client = MlflowClient(store_server.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.tags["model_uri"] == expected and run.data.tags["model_committed"] == "true"
    # The run's report: an artifact through the server, and a copy next to the model in the store root.
    assert run.data.tags["report_uri"] == f"{to_uri(config.store.root)}/models/taxi_fare/{result.run_id}/report.html"
    assert (directory.parent / "report.html").is_file()
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert MODEL_POINTER_ARTIFACT in artifacts and "model" not in artifacts  # nothing uploaded from the driver
    assert "report.html" in artifacts
    pointer = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=MODEL_POINTER_ARTIFACT,
                                                  tracking_uri=store_server.tracking_uri)
    assert json.loads(open(pointer).read())["model_uri"] == expected
    assert rmse_of(spark, config, result.model_uri) < 6.0


def test_registered_versions_load_from_the_store_root(spark, server_run, store_server):
    config, result = server_run
    client = MlflowClient(store_server.tracking_uri)
    # The run registered its model itself (the server refuses the file: source, so through the run's pointer).
    assert result.promotion.promoted and result.promotion.version == "1"
    registered = resolve(client, RUN_MODEL, "champion")
    assert (registered.uri, registered.version, registered.run_id) == (result.model_uri, "1", result.run_id)
    assert client.get_run(result.run_id).data.tags["model_version"] == "1"
    name = "taxi_fare_store_test"
    evaluate = lambda uri: rmse_of(spark, config, uri)  # noqa: E731
    value = evaluate(result.model_uri)
    first = promote_if_better(client, name=name, alias="champion", model_uri=result.model_uri,
                              run_id=result.run_id, metric="rmse", value=value, direction="minimize",
                              evaluate=evaluate, progress=print)
    assert first.promoted
    champion = resolve(client, name, "champion")
    assert champion.uri == result.model_uri and champion.version == first.version
    assert evaluate(champion.uri) == pytest.approx(value)
    # A second version is compared with the champion, which is loaded from its location on the store root.
    second = promote_if_better(client, name=name, alias="champion", model_uri=result.model_uri,
                               run_id=result.run_id, metric="rmse", value=value + 1.0, direction="minimize",
                               evaluate=evaluate, progress=print)
    assert second.champion_value == pytest.approx(value) and not second.promoted
    assert resolve(client, name, second.version).uri == result.model_uri
    assert resolve(client, name, f"runs:/{result.run_id}").uri == result.model_uri


def test_experiments_on_a_server_default_to_its_proxied_artifacts(store_server, tmp_path):
    config = tiny(tmp_path / "store", store_server.tracking_uri, "store.experiment=store-server-defaults")
    store = Store(config.store)
    assert store.uses_server and store.artifact_root is None
    experiment = MlflowClient(store_server.tracking_uri).get_experiment(store.experiment_id("store-server-defaults"))
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    local = Store(config.store.model_copy(update={"tracking_uri": None}))
    assert not local.uses_server and local.artifact_root == f"{to_uri(tmp_path / 'store')}/artifacts"
