"""Deep-learning pipeline runs on tiny slices of their real data, shared by the tests that need one (each
pipeline runs once per session: the fashion_mnist classifier is also the GAN tests' judge)."""
import pytest

from spark_ml_pipeline.runtime.config import load_pipeline

TINY = ["training.epochs=1", "training.batch_size=32", "data.train_limit=400", "data.test_limit=100",
        "run_date=2026-03-01"]
TINY_MODELS = {
    "fashion_mnist": ["models.cnn.filters=[8]", "models.cnn.dense=[16]", "models.cnn.convs_per_block=1"],
    "fashion_autoencoder": ["models.conv.filters=[8]", "models.conv.code_size=6"],
    # The shipped FNO: also scored on the 32x32 grid by the same weights (resolution transfer, through Spark).
    "darcy_surrogate": ["models.fno.width=8", "models.fno.modes=4", "models.fno.blocks=2", "models.fno.projection=16"],
    "tweet_sentiment": ["text.vocab_size=500", "models.bilstm.units=8", "models.bilstm.embedding_dim=8",
                        "text.max_length=20"],
}


@pytest.fixture(scope="session")
def tiny_dl_run(spark, tmp_path_factory):
    """``tiny_dl_run(name, *overrides)`` -> (config, definition, result) of that pipeline's tiny run (plus
    ``overrides``), run on first use and shared after."""
    runs = {}

    def run(name: str, *overrides: str):
        key = (name, overrides)
        if key not in runs:
            store = tmp_path_factory.mktemp(f"tiny-{name}")
            config, definition = load_pipeline(name, ["local"], [f"store.root={store}", *TINY, *TINY_MODELS[name],
                                                                 *overrides])
            runs[key] = config, definition, definition.stages["run"](spark, config)
        return runs[key]
    return run
