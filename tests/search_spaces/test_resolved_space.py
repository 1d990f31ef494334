"""Genes, Optuna params, largest/smallest, iteration and the JSON form of a resolved space."""

import json
import random
from dataclasses import replace

import pytest

from search_spaces import DraftArch, ResolvedSpace, SpaceError, TargetDims, load_space
from specdec.shape import DEFAULT_SHAPE, DecodeShape

SMOLLM2 = TargetDims(hidden_size=576, num_layers=30, num_heads=9, vocab_size=49152)


class Calibration:
    candidate_taps = (12, 7, 20)


class ShallowCalibration:
    candidate_taps = (3, 2)


@pytest.fixture(scope="module")
def space() -> ResolvedSpace:
    return load_space("dream_s").resolve(SMOLLM2, Calibration())


def test_encode_decode_round_trip(space):
    rng = random.Random(1)
    for _ in range(300):
        arch = space.sample(rng)
        genes = space.encode(arch)
        bounds = zip(genes, space.gene_sizes(), strict=True)
        assert all(isinstance(gene, int) and 0 <= gene < size for gene, size in bounds)
        assert space.decode(genes) == arch


def test_tokens_only_points_read_no_taps(space):
    genes = list(space.encode(space.largest()))
    genes[0] = 0  # interaction none
    arch = space.decode(genes)
    assert arch.interaction == "none" and arch.injected_layers == ()
    assert space.encode(arch)[1] == 0
    with pytest.raises(SpaceError, match=r"injected_layers=\(30,\) must be \(\) for interaction"):
        space.validate(replace(arch, injected_layers=(30,)))
    tokens_only = [arch for arch in space if arch.interaction == "none"]
    assert len(tokens_only) == space.size() // (3 * 5 + 1)


def test_largest_and_smallest_are_the_extreme_genes(space):
    assert space.encode(space.largest()) == tuple(n - 1 for n in space.gene_sizes())
    assert space.encode(space.smallest()) == (0,) * len(space.gene_sizes())
    assert space.smallest().injected_layers == ()
    largest, smallest = space.largest(), space.smallest()
    assert (largest.num_layers, largest.num_heads, largest.intermediate_size) == (3, 9, 1728)
    assert largest.interaction == "cross_attention" and largest.draft_vocab_size is None
    assert (smallest.num_layers, smallest.num_heads, smallest.vision_keep_ratio) == (1, 2, 0.25)
    assert smallest.interaction == "none" and smallest.draft_vocab_size == 12288


def test_exhaustive_iteration_yields_size_unique_points():
    shapes = TargetDims(hidden_size=256, num_layers=4, num_heads=4, vocab_size=300)
    space = load_space("dream_s").resolve(shapes, ShallowCalibration())
    points = list(space)
    assert len(points) == len(set(points)) == space.size()
    assert len({space.encode(arch) for arch in points}) == space.size()


@pytest.mark.filterwarnings("error")  # Optuna warns on choices it cannot store
def test_optuna_params_round_trip(space):
    import optuna

    choices = space.categorical_choices()
    rng = random.Random(2)
    for _ in range(50):
        arch = space.sample(rng)
        values = {d: choices[d][gene] for d, gene in zip(choices, space.encode(arch), strict=True)}
        # FixedTrial checks each value against the choices as Optuna's samplers would.
        trial = optuna.trial.FixedTrial(values)
        params = {d: trial.suggest_categorical(d, values) for d, values in choices.items()}
        assert space.from_params(params) == arch
    with pytest.raises(SpaceError, match="injected_layers='2;15' is not a tap list"):
        space.from_params({**params, "injected_layers": "2;15"})


def test_validate_names_the_bad_key(space):
    with pytest.raises(SpaceError, match=r"num_heads=5 .*pick one of 2, 4, 6, 9") as error:
        space.validate(replace(space.largest(), num_heads=5))
    assert "\n" not in str(error.value)
    with pytest.raises(SpaceError, match="injected_layers"):
        space.validate(replace(space.largest(), injected_layers=(31,)))


def test_decode_rejects_bad_genes(space):
    with pytest.raises(SpaceError, match="2 entries; space 'dream_s' needs 8"):
        space.decode((0, 0))
    with pytest.raises(SpaceError, match=r"gene num_layers=3 is out of range; use an int in 0..2"):
        space.decode((0, 0, 3, 0, 0, 0, 0, 0))


def test_json_round_trip(space):
    restored = ResolvedSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert restored == space
    with pytest.raises(SpaceError, match="'heads' is unknown"):
        ResolvedSpace.from_dict({**space.to_dict(), "heads": [1]})


def test_arch_dict_round_trip(space):
    arch = space.sample(random.Random(3))
    assert DraftArch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    with pytest.raises(SpaceError, match="'depth' is unknown"):
        DraftArch.from_dict({**arch.to_dict(), "depth": 2})


def test_the_space_files_shapes_stay_out_of_the_resolved_space():
    """A supernet's space never holds decoding shapes: its weights serve any. The space file's
    list (the default tree when it has none) is what a search tries with its drafts."""
    listed = load_space("dream_s")
    assert listed.decode[0] == DecodeShape.chain(1) and listed.decode[-1] == DEFAULT_SHAPE
    assert [shape.size_key for shape in listed.decode] == sorted(s.size_key for s in listed.decode)
    assert load_space("eagle").decode == (DEFAULT_SHAPE,)
    resolved = listed.resolve(SMOLLM2, Calibration())
    assert "decode" not in resolved.to_dict() and "decode" not in resolved.choices()
    assert "decode" not in resolved.largest().to_dict()


def test_point_is_the_space_of_one_arch(space):
    arch = space.sample(random.Random(5))
    point = space.point(arch)
    assert point.size() == 1 and point.largest() == arch and point.name == "dream_s-point"


def test_spaces_and_archs_saved_before_image_inputs_read_as_placeholder(space):
    """Supernet checkpoints, best.json and trials written before the image_input dimension."""
    data = space.to_dict()
    del data["image_input"]
    assert ResolvedSpace.from_dict(data).image_input == ("placeholder",)
    arch = space.largest().to_dict()
    del arch["image_input"]
    assert DraftArch.from_dict(arch).image_input == "placeholder"
