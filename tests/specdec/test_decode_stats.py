"""What the decoder measures: tau (bonus token included), acceptance by depth, cache sizes, and
that the draft's context leaves out the image positions the keep ratio drops."""

import pytest
import torch
from specdec_test_drafts import MimicDraft, OracleDraft

from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.errors import DraftError
from specdec.model import DraftModel
from specdec.shape import DecodeShape
from targets.tiny import tiny_inputs, tiny_target


@pytest.fixture(scope="module")
def llama():
    """A tiny llama with a sharpened head: its greedy path then also has the best cumulative
    log-probability, so EAGLE-2's beam-like tree keeps it and a perfect draft is fully accepted."""
    target = tiny_target("llama", seed=0)
    with torch.no_grad():
        target.model.lm_head.weight.mul_(200.0)
    return target


@pytest.mark.parametrize("shape", [DecodeShape.chain(3), DecodeShape(3, 2, 7)])
def test_a_perfect_draft_gives_tau_of_depth_plus_one(llama, shape):
    prepared = tiny_inputs(llama, n_text=6, seed=0)
    draft = MimicDraft.random(DraftConfig.for_target(llama, interaction="add"), llama)
    draft.first_token = int(prepared.input_ids[0, 0])
    decoder = SpeculativeDecoder(llama, draft, DecodeConfig(shape, eos_token_ids=[]))
    stats = decoder.generate(inputs=prepared, max_new_tokens=1 + 4 * 5).stats
    # 1 token from the prefill, then 5 steps of 3 accepted drafts + 1 bonus token each.
    assert (stats.steps, stats.tau, stats.new_tokens) == (5, 4.0, 21)
    assert stats.acceptance_by_depth == [1.0, 1.0, 1.0]
    assert stats.time_target + stats.time_draft <= stats.time_total
    assert stats.tokens_per_second > 0
    # KV never beyond the accepted length plus one tree (the last tree is not accepted into it).
    tree_size = shape.total_tokens
    assert stats.max_target_cache <= stats.prompt_tokens + 16 + tree_size


def test_a_draft_that_never_matches_gives_tau_one(llama):
    prepared = tiny_inputs(llama, n_text=6, seed=0)
    draft = OracleDraft.random(DraftConfig.for_target(llama, interaction="concat"), llama)
    draft.reference, draft.wrong_every = prepared.input_ids[0].tolist() + [0] * 20, 1
    decoder = SpeculativeDecoder(llama, draft, DecodeConfig(DecodeShape.chain(2), eos_token_ids=[]))
    stats = decoder.generate(inputs=prepared, max_new_tokens=9).stats
    assert (stats.steps, stats.tau, stats.acceptance_by_depth) == (8, 1.0, [])


@pytest.mark.parametrize("ratio, dropped", [(1.0, 0), (0.5, 8), (0.1, 14)])
def test_draft_context_drops_the_unkept_image_positions(ratio, dropped):
    target = tiny_target("llava_clip", seed=0)  # 16 image positions per prompt
    prepared = tiny_inputs(target, n_text=5, seed=0)
    assert int(prepared.image_mask.sum()) == 16
    cfg = DraftConfig.for_target(target, interaction="cross_attention", vision_keep_ratio=ratio)
    decoder = SpeculativeDecoder(target, DraftModel.random(cfg, target),
                                 DecodeConfig(DecodeShape.chain(1), eos_token_ids=[]))
    # One step after the prefill: the draft cache then holds just its prefill slots.
    stats = decoder.generate(inputs=prepared, max_new_tokens=2).stats
    assert stats.max_draft_cache == prepared.input_ids.shape[1] - dropped


def test_scores_are_asked_for_only_when_images_are_dropped():
    target = tiny_target("llava_clip", seed=0)
    asked = []
    forward = target.forward

    def spy(*args, **kwargs):
        asked.append(kwargs.get("image_scores", False))
        return forward(*args, **kwargs)

    target.forward = spy
    prepared = tiny_inputs(target, n_text=5, seed=0)
    for ratio in (1.0, 0.5):
        cfg = DraftConfig.for_target(target, interaction="add", vision_keep_ratio=ratio)
        SpeculativeDecoder(target, DraftModel.random(cfg, target)).generate(
            inputs=prepared, max_new_tokens=3)
    assert asked.count(True) == 1 and torch.tensor(asked).any()


def test_prompt_plus_budget_beyond_the_context_is_one_line_draft_error(llama):
    prepared = tiny_inputs(llama, n_text=6, seed=0)
    with pytest.raises(DraftError, match="max_new_tokens") as error:
        SpeculativeDecoder(llama, None).generate(inputs=prepared, max_new_tokens=llama.max_positions)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("temperature", [float("nan"), float("inf")])
def test_a_temperature_that_is_not_finite_is_one_line_draft_error(llama, temperature):
    """nan passed `temperature < 0` and reached the sampler as a nan probability."""
    prepared = tiny_inputs(llama, n_text=6, seed=0)
    with pytest.raises(DraftError, match="temperature") as error:
        SpeculativeDecoder(llama, None).generate(inputs=prepared, max_new_tokens=4,
                                                 temperature=temperature)
    assert "\n" not in str(error.value)
