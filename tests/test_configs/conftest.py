"""Config tests run their small models on one intra-op thread (the two cores are shared; a
second OpenMP thread only adds waits for tiny tensors)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
