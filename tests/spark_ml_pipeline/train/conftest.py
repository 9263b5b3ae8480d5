"""What the Horovod estimator tests share."""
import pytest

from spark_ml_pipeline.train.rank_test_hooks import RECORD_WEIGHTS_DIGEST


@pytest.fixture(scope="module")
def weights_digests():
    """Every rank reports hashes of its final weights (a test-only hook of the rank functions, rank_test_hooks):
    a module's tests ask for it with ``pytestmark = pytest.mark.usefixtures("weights_digests")``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RECORD_WEIGHTS_DIGEST, "1")
        yield
