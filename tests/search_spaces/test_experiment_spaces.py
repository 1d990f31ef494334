"""The spaces experiments/ trains with load, resolve for SmolLM2, and are what they say."""

from pathlib import Path

import pytest
from test_named_spaces import SMOLLM2, assert_within_dream_s, resolved

from search_spaces import load_space

SPACES = Path(__file__).parents[2] / "experiments" / "spaces"
EXPERIMENT_SPACES = sorted(SPACES.glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENT_SPACES, ids=lambda path: path.stem)
def test_an_experiment_space_resolves_for_smollm2(path):
    assert resolved(str(path), SMOLLM2).size() >= 1


def test_every_eagle_cpu_point_is_a_dream_s_point():
    """Its description promises that a latency table profiled for dream_s serves its search: every
    value of every dimension is one dream_s holds too."""
    assert_within_dream_s(str(SPACES / "eagle_cpu.yaml"), SMOLLM2)
    assert load_space(SPACES / "eagle_cpu.yaml").name == "eagle_cpu"
