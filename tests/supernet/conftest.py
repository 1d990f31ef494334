"""Fixtures: a deep tiny target and dream_s resolved on it."""

import pytest
from deep_targets import Ranked, deep_tiny_llama

from search_spaces import TargetDims, load_space
from targets import Target


@pytest.fixture(scope="session")
def deep_target() -> Target:
    return deep_tiny_llama()


@pytest.fixture(scope="session")
def dream_s(deep_target):
    return load_space("dream_s").resolve(TargetDims.of(deep_target), Ranked((3, 2, 4)))
