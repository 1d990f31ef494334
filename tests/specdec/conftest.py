"""specdec tests run tiny models, which gain nothing from intra-op threads; on a shared 2-core
machine two threads per process made them ~20x slower, so these tests use one."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
