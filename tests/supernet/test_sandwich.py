"""The sandwich: the largest of every interaction and the smallest every step, draws stratified by
interaction, repeats once."""

from collections import Counter

from deep_targets import Ranked

from search_spaces import TargetDims, load_space
from supernet.sandwich import sandwich_archs


def test_random_draws_cycle_through_every_interaction_and_are_valid(dream_s):
    """Each interaction has its own layers: every one must get random shapes, not only the
    interactions of the largest and smallest subnets."""
    n = len(dream_s.interaction)
    steps = [sandwich_archs(dream_s, n, seed=0, step=step) for step in range(12)]
    largest = dream_s.largest()
    for archs in steps:
        # the largest first (in-place distillation's teacher), then each other interaction's
        assert archs[0] == largest and archs[n] == dream_s.smallest()
        assert [arch.interaction for arch in archs[:n]] == [
            largest.interaction, *(i for i in dream_s.interaction if i != largest.interaction)]
        for arch in archs[1:n]:
            assert (arch.num_layers, arch.num_heads, arch.intermediate_size) == (
                largest.num_layers, largest.num_heads, largest.intermediate_size)
            assert arch.injected_layers == (() if arch.interaction == "none"
                                            else largest.injected_layers)
        assert sorted(arch.interaction for arch in archs[n + 1:]) == sorted(dream_s.interaction)
        for arch in archs:
            dream_s.validate(arch)
    assert steps == [sandwich_archs(dream_s, n, seed=0, step=step) for step in range(12)]
    assert len({arch for archs in steps for arch in archs[n + 1:]}) > 12
    # With fewer draws than interactions, every interaction still gets the same share of them.
    draws = [sandwich_archs(dream_s, 2, seed=0, step=step)[n + 1:] for step in range(12)]
    counts = Counter(arch.interaction for archs in draws for arch in archs)
    assert set(counts) == set(dream_s.interaction) and len(set(counts.values())) == 1


def test_a_one_point_space_trains_its_draft_once_per_step(deep_target):
    eagle = load_space("eagle").resolve(TargetDims.of(deep_target), Ranked((3, 2, 4)))
    assert sandwich_archs(eagle, 2, seed=0, step=5) == [eagle.largest()]
