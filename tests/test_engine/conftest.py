"""Engine tests build tiny models and many one-parameter groups: one intra-op thread suffices."""
from tests.test_models.conftest import single_thread  # noqa: F401  (autouse fixture)
