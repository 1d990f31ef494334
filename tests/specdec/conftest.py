"""specdec tests run tiny models, which gain nothing from intra-op threads; on a shared 2-core
machine two threads per process made them ~20x slower, so these tests use one. Several modules
decode with the same tiny LLaVA directory (`llava_dir`)."""

from pathlib import Path

import pytest
import torch
from tiny_llava_dir import save_tiny_llava


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    """A tiny LLaVA checkpoint directory, built once per test module."""
    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))
