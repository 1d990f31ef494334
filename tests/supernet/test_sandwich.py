"""The sandwich: largest and smallest every step, draws stratified by interaction, repeats once."""

from collections import Counter

from deep_targets import Ranked

from search_spaces import TargetDims, load_space
from supernet.sandwich import sandwich_archs


def test_random_draws_cycle_through_every_interaction_and_are_valid(dream_s):
    """Each interaction has its own layers: every one must get random shapes, not only the
    interactions of the largest and smallest subnets."""
    n = len(dream_s.interaction)
    steps = [sandwich_archs(dream_s, n, seed=0, step=step) for step in range(12)]
    for archs in steps:
        assert archs[:2] == [dream_s.largest(), dream_s.smallest()]
        assert sorted(arch.interaction for arch in archs[2:]) == sorted(dream_s.interaction)
        for arch in archs:
            dream_s.validate(arch)
    assert steps == [sandwich_archs(dream_s, n, seed=0, step=step) for step in range(12)]
    assert len({arch for archs in steps for arch in archs[2:]}) > 12
    # With fewer draws than interactions, every interaction still gets the same share of them.
    draws = [sandwich_archs(dream_s, 2, seed=0, step=step)[2:] for step in range(12)]
    counts = Counter(arch.interaction for archs in draws for arch in archs)
    assert set(counts) == set(dream_s.interaction) and len(set(counts.values())) == 1


def test_a_one_point_space_trains_its_draft_once_per_step(deep_target):
    eagle = load_space("eagle").resolve(TargetDims.of(deep_target), Ranked((3, 2, 4)))
    assert sandwich_archs(eagle, 2, seed=0, step=5) == [eagle.largest()]
