from tests.test_models.conftest import single_thread  # noqa: F401  (one intra-op thread)
