"""Model tests run their tiny tensors on one intra-op thread.

Their tensors are tiny, where a second OpenMP thread only adds synchronisation (and, when the
two cores are busy with something else, long waits for a core); the operator's own
multi-threading is tested in test_ops/.
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
