"""The predictor on a synthetic table: sums of parts, interpolation, monotonicity, missing values."""

import dataclasses
import random

import pytest
from latency_fixtures import CHAIN, SHAPES, TREE, synthetic_ms, synthetic_table

from hardware_profiles.parts import draft_config
from hardware_profiles.predictor import InterpolatedValueWarning, LatencyPredictor
from hardware_profiles.table import TableError
from search_spaces import DraftArch
from specdec.shape import DEFAULT_SHAPE

EAGLE_LIKE = DraftArch(interaction="concat", injected_layers=(4,), num_layers=1, num_heads=4,
                       intermediate_size=128, vision_keep_ratio=1.0, draft_vocab_size=None)


@pytest.fixture
def predictor():
    return LatencyPredictor(synthetic_table())


def test_context_and_queries_are_interpolated_linearly(predictor):
    # The synthetic latencies are linear, so interpolation between grid points is exact.
    for q, ctx in [(2, 32), (3, 50), (6.5, 100), (10, 127)]:
        assert predictor.part_ms("target", tree=1, q=q, ctx=ctx) == pytest.approx(
            synthetic_ms("target", {"tree": 1, "q": q, "ctx": ctx}))
    layer = {"kind": "cross", "heads": 4, "head_dim": 16, "ffn": 96, "q": 3, "ctx": 77}
    with pytest.warns(InterpolatedValueWarning, match="ffn=96"):
        assert predictor.part_ms("layer", **layer) == pytest.approx(synthetic_ms("layer", layer))


def test_context_beyond_the_grid_extrapolates_up_and_holds_below(predictor):
    assert predictor.part_ms("target", tree=0, q=2, ctx=256) == pytest.approx(
        synthetic_ms("target", {"tree": 0, "q": 2, "ctx": 256}))
    assert predictor.part_ms("target", tree=0, q=2, ctx=8) == \
        predictor.part_ms("target", tree=0, q=2, ctx=32)
    assert predictor.target_step_ms(256) == pytest.approx(synthetic_ms("plain", {"ctx": 256}))


def shape_ms(part: str, shape, **fields) -> float:
    return synthetic_ms(part, {"depth": shape.depth, "top_k": shape.top_k,
                               "total": shape.total_tokens, **fields})


@pytest.mark.parametrize("shape", [TREE, CHAIN], ids=["tree", "chain"])
def test_a_step_is_the_sum_of_the_decoders_calls(predictor, shape):
    arch, ctx, tau = EAGLE_LIKE, 100, 2
    cfg = draft_config(predictor.dims, arch)
    k = shape.top_k

    def forward(q, at, rows):
        layer = synthetic_ms("layer", {"kind": "concat", "heads": cfg.num_heads, "ffn": 128,
                                       "q": q, "ctx": at})
        return (synthetic_ms("input", {"interaction": "concat", "q": q}) + layer
                + synthetic_ms("head", {"vocab": 0, "q": rows}))

    # depth - 1 draft forwards over top_k slots build the tree (a chain: one slot each)
    tree = sum(forward(k, ctx + (s - 1) * k, k) for s in range(1, shape.depth))
    tree += shape_ms("tree_overhead", shape, vocab=0)
    advance = synthetic_ms("fusion", {"taps": 1, "q": tau}) + forward(tau, ctx, 1)
    # a chain is verified causally, a tree with its mask
    verify = (synthetic_ms("target", {"tree": int(shape == TREE), "q": shape.total_tokens,
                                      "ctx": ctx})
              + shape_ms("step_overhead", shape, ctx=ctx))
    plain = synthetic_ms("plain", {"ctx": ctx})  # timed whole, as the decoder runs it
    parts = predictor.breakdown(arch, shape, ctx, tau)
    assert parts.tree_ms == pytest.approx(tree)
    assert parts.advance_ms == pytest.approx(advance)
    assert parts.verify_ms == pytest.approx(verify)
    assert parts.target_step_ms == pytest.approx(plain)
    assert predictor.speedup(arch, shape, tau, ctx) == pytest.approx(
        tau * plain / (tree + advance + verify))


@pytest.mark.parametrize(("interaction", "kinds"), [("concat", ["concat", "self"]),
                                                     ("cross_attention", ["cross", "cross"]),
                                                     ("none", ["self", "self"])])
def test_a_draft_forward_times_each_layer_by_its_kind(predictor, interaction, kinds):
    """A concat draft's first layer is EAGLE-3's (q/k/v 2D wide), the layers after it plain."""
    taps = () if interaction == "none" else (4,)
    arch = dataclasses.replace(EAGLE_LIKE, interaction=interaction, injected_layers=taps,
                               num_layers=2)
    layers = sum(synthetic_ms("layer", {"kind": kind, "heads": 4, "ffn": 128, "q": 2, "ctx": 64})
                 for kind in kinds)
    expected = (synthetic_ms("input", {"interaction": interaction, "q": 2}) + layers
                + synthetic_ms("head", {"vocab": 0, "q": 1}))
    assert predictor.draft_forward_ms(arch, 2, 64, 1) == pytest.approx(expected)


def test_predictions_grow_with_every_size(predictor):
    rng = random.Random(0)
    from latency_fixtures import small_space

    space = small_space()
    for _ in range(20):
        arch, shape = space.sample(rng), rng.choice(SHAPES)

        def cost(draft: DraftArch, ctx: int = 64, tau: int = 2, shape=shape) -> float:
            return predictor.draft_ms(draft, shape, ctx, tau)

        base = cost(arch)
        assert cost(arch, ctx=100) > base and cost(arch, tau=3) > base
        if arch.num_layers == 1:
            assert cost(dataclasses.replace(arch, num_layers=2)) > base
        if arch.intermediate_size == 64:
            assert cost(dataclasses.replace(arch, intermediate_size=128)) > base
        if arch.draft_vocab_size is not None:
            assert cost(dataclasses.replace(arch, draft_vocab_size=None)) > base
        if arch.vision_keep_ratio < 1:
            assert cost(dataclasses.replace(arch, vision_keep_ratio=1.0)) > base
        assert predictor.step_ms(arch, shape, 100, 2) > predictor.step_ms(arch, shape, 64, 2)
    assert predictor.speedup(EAGLE_LIKE, TREE, 3, 64) > predictor.speedup(EAGLE_LIKE, TREE, 2, 64)


def test_a_chain_drafts_and_verifies_less_than_a_tree(predictor):
    chain, tree = (predictor.breakdown(EAGLE_LIKE, shape, 64, 2) for shape in (CHAIN, TREE))
    assert chain.tree_ms < tree.tree_ms
    assert predictor.verify_ms(CHAIN, 64) < predictor.verify_ms(TREE, 64)
    # at the same tau the cheaper step decodes faster
    assert predictor.speedup(EAGLE_LIKE, CHAIN, 2, 64) > predictor.speedup(EAGLE_LIKE, TREE, 2, 64)


def test_missing_space_values_raise_one_line(predictor):
    with pytest.raises(TableError, match=r"no layer entry with heads=1 \(table has 2, 4\)"):
        predictor.draft_ms(dataclasses.replace(EAGLE_LIKE, num_heads=1), TREE, 64, 2)
    with pytest.raises(TableError, match="no head entry with vocab=100"):
        predictor.draft_ms(dataclasses.replace(EAGLE_LIKE, draft_vocab_size=100), TREE, 64, 2)
    with pytest.raises(TableError, match="no layer entry with ffn=512"):
        predictor.draft_ms(dataclasses.replace(EAGLE_LIKE, intermediate_size=512), TREE, 64, 2)
    with pytest.raises(TableError, match="no fusion entry with taps=3"):
        predictor.draft_ms(dataclasses.replace(EAGLE_LIKE, injected_layers=(1, 2, 4)), TREE, 64, 2)
    with pytest.raises(TableError, match=r"no tree_overhead entry with depth=6 \(table has 2, 3\)"):
        predictor.draft_ms(EAGLE_LIKE, DEFAULT_SHAPE, 64, 2)


def test_tau_below_one_is_refused(predictor):
    with pytest.raises(ValueError, match="tau >= 1"):
        predictor.speedup(EAGLE_LIKE, TREE, 0.5, 64)


def test_scoring_cost_of_vision_keep(predictor):
    assert predictor.scoring_ms(64) == pytest.approx(1.0)
