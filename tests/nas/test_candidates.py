"""What a search tries: a draft of the supernet's space with a decoding shape of the space file;
the same choices, params and sampling order as when the shape was a dimension of the space."""

import json
import random

import pytest

from nas.candidates import Candidate, CandidateSpace
from search_spaces import SpaceError, TargetDims, load_space
from specdec.shape import DEFAULT_SHAPE, DecodeShape

DIMS = TargetDims(hidden_size=64, num_layers=4, num_heads=4, vocab_size=256)


@pytest.fixture(scope="module")
def candidates() -> CandidateSpace:
    listed = load_space("dream_s")
    ranked = type("Calibration", (), {"candidate_taps": (2, 1)})()
    return CandidateSpace(listed.resolve(DIMS, ranked), listed.decode)


def test_every_draft_with_every_shape(candidates):
    assert candidates.size() == candidates.space.size() * len(candidates.shapes) > 0
    points = list(candidates)
    assert len(points) == len(set(points)) == candidates.size()
    assert points[0] == Candidate(next(iter(candidates.space)), DecodeShape.chain(1))


def test_params_round_trip_with_the_shape_as_its_label(candidates):
    choices = candidates.categorical_choices()
    assert choices["decode"][:2] == ["chain 1", "chain 2"] and choices["decode"][-1] == "tree 6/4/32"
    assert list(choices)[:-1] == list(candidates.space.categorical_choices())
    rng = random.Random(0)
    for _ in range(50):
        candidate = candidates.sample(rng)
        assert candidates.from_params(candidates.to_params(candidate)) == candidate
        assert Candidate.from_dict(json.loads(json.dumps(candidate.to_dict()))) == candidate


def test_sampling_draws_the_draft_then_its_shape(candidates):
    """The order the shape had as the space's last dimension: searches keep their trials."""
    first, second = random.Random(7), random.Random(7)
    candidate = candidates.sample(first)
    assert candidate == Candidate(candidates.space.sample(second), second.choice(candidates.shapes))


def test_a_shape_the_space_does_not_list_is_refused(candidates):
    arch = candidates.space.largest()
    with pytest.raises(SpaceError, match="decode='chain 7' is not a shape of space 'dream_s'"):
        candidates.validate(Candidate(arch, DecodeShape.chain(7)))
    params = {**candidates.to_params(Candidate(arch, DEFAULT_SHAPE)), "decode": "tree 6"}
    with pytest.raises(SpaceError, match="not a decoding shape"):
        candidates.from_params(params)


def test_an_arch_written_before_shapes_were_searched_decodes_with_the_default(candidates):
    old = candidates.space.largest().to_dict()  # best.json and trials of such searches
    assert Candidate.from_dict(old) == Candidate(candidates.space.largest(), DEFAULT_SHAPE)
    keys = {candidate.key for candidate in candidates}
    assert len(keys) == candidates.size()
