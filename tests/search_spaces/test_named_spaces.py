"""The shipped YAML spaces load, resolve for both target shapes and keep their promises."""

import math
import random
from dataclasses import dataclass

import pytest

from search_spaces import DIMENSIONS, SpaceError, TargetDims, available_spaces, load_space

# A small LLaVA like `shapes` and SmolLM2-135M, the two sizes one named space must fit.
SHAPES = TargetDims(hidden_size=256, num_layers=4, num_heads=4, vocab_size=300)
SMOLLM2 = TargetDims(hidden_size=576, num_layers=30, num_heads=9, vocab_size=49152,
                     images=False)


@dataclass(frozen=True)
class FakeCalibration:
    candidate_taps: tuple[int, ...]


CALIBRATIONS = {SHAPES: FakeCalibration((3, 2)), SMOLLM2: FakeCalibration((12, 7, 20, 3))}


def resolved(name: str, dims: TargetDims):
    return load_space(name).resolve(dims, CALIBRATIONS[dims])


def assert_within_dream_s(name: str, dims: TargetDims) -> None:
    """What a space built from dream_s's values promises (a table profiled for dream_s prices
    it): every value of every dimension, and every decoding shape, is one dream_s holds too."""
    space, full = resolved(name, dims), resolved("dream_s", dims)
    for dimension, values in space.choices().items():
        assert set(values) <= set(full.values(dimension)), dimension
    assert set(load_space(name).decode) <= set(load_space("dream_s").decode)


@pytest.mark.parametrize("name", ["dream_s", "eagle", "dream", "specllava"])
def test_a_text_targets_drafts_keep_every_position_and_read_tokens(name):
    """Image positions to keep, and image features to read there, mean nothing without images:
    a text target's space searches neither, and its dream point keeps every position and reads
    tokens (what an EAGLE-3 export requires)."""
    assert resolved(name, SMOLLM2).vision_keep_ratio == (1.0,)
    assert resolved(name, SMOLLM2).image_input == ("placeholder",)
    assert len(resolved(name, SHAPES).vision_keep_ratio) == (4 if name == "dream_s" else 1)
    with_images = TargetDims(hidden_size=576, num_layers=30, num_heads=9, vocab_size=49152)
    with_image_choices = load_space("dream_s").resolve(with_images, CALIBRATIONS[SMOLLM2])
    # four keep ratios x two image inputs
    assert with_image_choices.size() == 4 * 2 * resolved("dream_s", SMOLLM2).size()


def test_what_the_named_spaces_read_at_image_positions():
    """dream_s searches both; DREAM's draft runs on the target's merged inputs_embeds; EAGLE-3's
    (vLLM, SGLang) embeds the placeholder tokens."""
    assert resolved("dream_s", SHAPES).image_input == ("placeholder", "features")
    assert resolved("dream", SHAPES).image_input == ("features",)
    assert resolved("eagle", SHAPES).image_input == ("placeholder",)
    assert resolved("specllava", SHAPES).image_input == ("features",)
    assert resolved("dream_s", SHAPES).largest().image_input == "features"
    assert resolved("dream_s", SHAPES).smallest().image_input == "placeholder"


def test_available_spaces_are_the_five_named_ones():
    assert available_spaces() == ["dream", "dream_s", "dream_s_cpu", "eagle", "specllava"]


@pytest.mark.parametrize("dims", [SHAPES, SMOLLM2])
def test_every_dream_s_cpu_point_is_a_dream_s_point_a_cpu_can_serve(dims):
    """Its description promises that a table profiled for dream_s prices it, and that it leaves
    out what a CPU cannot serve."""
    assert_within_dream_s("dream_s_cpu", dims)
    cpu = resolved("dream_s_cpu", dims)
    assert max(cpu.num_layers) == 2 and set(cpu.interaction) == {"none", "concat"}
    assert cpu.draft_vocab_size == (dims.vocab_size // 4,)
    assert max(shape.total_tokens for shape in load_space("dream_s_cpu").decode) <= 8


@pytest.mark.parametrize("dims", [SHAPES, SMOLLM2])
@pytest.mark.parametrize("name", ["dream_s", "eagle", "dream", "specllava"])
def test_every_point_respects_the_target(name, dims):
    space = resolved(name, dims)
    for arch in space:
        space.validate(arch)
        assert dims.hidden_size % arch.num_heads == 0
        assert (dims.hidden_size // arch.num_heads) % 2 == 0  # rotary needs even heads
        assert 1 <= arch.num_heads <= dims.num_heads
        assert all(1 <= tap <= dims.num_layers for tap in arch.injected_layers)
        assert list(arch.injected_layers) == sorted(set(arch.injected_layers))


def test_dream_s_resolves_widths_relative_to_smollm2():
    choices = resolved("dream_s", SMOLLM2).choices()
    # 9 heads x (0.25, 0.5, 0.75, 1): 2.25 -> 2, 4.5 -> 5 -> 4 (divides 576), 6.75 -> 7 -> 6, 9.
    assert choices["num_heads"] == (2, 4, 6, 9)
    assert choices["intermediate_size"] == (576, 1152, 1728)
    assert choices["draft_vocab_size"] == (12288, None)
    # top = 30, entropy:1 = 12, entropy:2 = {12, 7}, eagle3 = 2, 15, 27.
    assert choices["injected_layers"] == ((12,), (30,), (12, 30), (2, 15, 27), (7, 12, 30))


def test_dream_s_collapses_coinciding_choices_on_shapes():
    choices = resolved("dream_s", SHAPES).choices()
    # 4 heads x (0.25, 0.5, 0.75, 1) = 1, 2, 3 -> 2 (3 does not divide 256), 4.
    assert choices["num_heads"] == (1, 2, 4)
    # eagle3 on 4 layers: 2, 4 // 2 = 2, 4 - 3 = 1 -> (1, 2).
    assert (1, 2) in choices["injected_layers"]
    assert len(choices["injected_layers"]) == 5
    # Tokens-only points (interaction none) have no taps, so they do not multiply by the
    # 5 injected choices: 3 interactions x 5 injected sets + 1.
    paired = ("interaction", "injected_layers")
    others = math.prod(len(values) for key, values in choices.items() if key not in paired)
    assert resolved("dream_s", SHAPES).size() == others * (3 * 5 + 1)


@pytest.mark.parametrize("dims", [SHAPES, SMOLLM2])
def test_fixed_points_are_single_points_of_dream_s(dims):
    full = resolved("dream_s", dims)
    for name in ("eagle", "dream", "specllava"):
        point = resolved(name, dims)
        assert point.size() == 1
        assert point.largest() == point.smallest()
        full.validate(point.largest())


def test_fixed_points_match_design():
    eagle = resolved("eagle", SMOLLM2).largest()
    assert (eagle.num_layers, eagle.interaction, eagle.injected_layers) == (1, "concat", (30,))
    dream = resolved("dream", SMOLLM2).largest()
    assert dream.interaction == "cross_attention"
    assert dream.injected_layers == (12, 30)  # the lowest-entropy candidate and the top
    assert resolved("dream", SHAPES).largest().vision_keep_ratio == 0.75  # of a VLM's images
    # Spec-LLaVA: a small draft LM that sees the image through the target's features
    specllava = resolved("specllava", SHAPES).largest()
    assert (specllava.interaction, specllava.injected_layers) == ("none", ())
    assert specllava.image_input == "features"


def test_entropy_spaces_need_a_calibration():
    assert load_space("dream").needs_calibration
    assert not load_space("eagle").needs_calibration
    with pytest.raises(SpaceError, match="entropy:1"):
        load_space("dream").resolve(SMOLLM2)
    load_space("eagle").resolve(SMOLLM2)


def test_calibration_of_a_deeper_target_is_refused():
    with pytest.raises(SpaceError, match="tap 12"):
        load_space("dream").resolve(SHAPES, CALIBRATIONS[SMOLLM2])


def test_sample_covers_every_choice():
    space = resolved("dream_s", SMOLLM2)
    rng = random.Random(0)
    seen = {dimension: set() for dimension in DIMENSIONS}
    for _ in range(500):
        arch = space.sample(rng)
        for dimension in DIMENSIONS:
            seen[dimension].add(getattr(arch, dimension))
    expected = {dimension: set(values) for dimension, values in space.choices().items()}
    expected["injected_layers"].add(())  # the taps of every tokens-only point
    assert seen == expected


def test_heads_are_lowered_to_even_head_sizes():
    dims = TargetDims(hidden_size=90, num_layers=4, num_heads=9, vocab_size=50)
    # Of 9 heads: 0.25 -> 2 heads 45 wide (odd) -> 1 head of 90; 0.5 -> 5 heads of 18;
    # 0.75 -> 7 (no divisor) -> 6 heads of 15 (odd) -> 5; 1.0 -> 9 heads of 10.
    choices = load_space("dream_s").resolve(dims, FakeCalibration((2,))).choices()
    assert choices["num_heads"] == (1, 5, 9)
