"""Config tests run their small models on one intra-op thread (the two cores are shared; a
second OpenMP thread only adds waits for tiny tensors)."""
from tests.test_models.conftest import single_thread  # noqa: F401  (autouse fixture)
