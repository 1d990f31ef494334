"""Greedy speculative decoding equals `model.generate(do_sample=False)` token for token, in fp32
and in every other runtime (targets.runtime: the same runtime's own greedy decoding).

Per family, 20 prompts cycle through the four interactions, chain and tree mode, random and
oracle drafts (specdec_test_drafts.py: long accepted paths, non-contiguous cache selection),
EOS midway, max_new_tokens = 1, trees stopped early (stop_below), a reduced draft vocabulary
and (VLMs) vision keep ratio 0.5 and the target's image features as the draft's input at image
positions (cases 4-7 and 12-15: every interaction, chain and tree).
"""

import pytest
import torch
from specdec_test_drafts import OracleDraft

from specdec.config import INTERACTIONS, DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.model import DraftModel
from specdec.shape import DecodeShape
from targets.runtime import QUANTIZE
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target

PROMPTS_PER_FAMILY = 20
NEW_TOKENS = 10
TREE = DecodeShape(depth=4, top_k=3, total_tokens=10)
CHAIN = DecodeShape.chain(3)


def greedy_reference(target, prepared, eos: list[int]) -> list[int]:
    ids = prepared.input_ids
    out = target.model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), **prepared.model_kwargs,
        do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=eos, pad_token_id=eos[0])
    return out[0, ids.shape[1]:].tolist()


def until(tokens: list[int], eos: int) -> list[int]:
    """What generate returns with `eos` as the only EOS: the tokens up to its first occurrence."""
    return tokens[: tokens.index(eos) + 1]


def case_draft(target, case: int, reference: list[int]) -> DraftModel:
    interaction = INTERACTIONS[case % 4]
    oracle = case % 3 != 2
    choices = {"interaction": interaction, "num_layers": 1 + case % 2,
                   "intermediate_size": 2 * target.hidden_size}
    if interaction != "none":
        choices["injected_layers"] = [target.num_layers] if case % 2 else [1, target.num_layers]
    if target.is_vlm and case % 2:
        choices["vision_keep_ratio"] = 0.5
    if target.is_vlm and case % 8 >= 4:
        choices["image_input"] = "features"
    token_ids = None
    if not oracle and case % 6 == 5:
        choices["draft_vocab_size"] = target.vocab_size // 2
        token_ids = list(range(0, target.vocab_size, 2))[: target.vocab_size // 2]
    cfg = DraftConfig.for_target(target, **choices)
    if not oracle:
        return DraftModel.random(cfg, target, token_ids, seed=case)
    draft = OracleDraft.random(cfg, target, seed=case)
    draft.reference = reference
    return draft


@pytest.mark.parametrize("quantize", QUANTIZE)
@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_greedy_decoding_is_lossless(family, quantize):
    target = tiny_target(family, seed=0, quantize=quantize)
    accepted = 0
    for case in range(PROMPTS_PER_FAMILY):
        prepared = tiny_inputs(target, n_text=3 + case % 6, seed=case)
        prompt = prepared.input_ids[0].tolist()
        reference = greedy_reference(target, prepared, target.eos_token_ids)
        draft = case_draft(target, case, prompt + reference)
        budget, eos = NEW_TOKENS, list(target.eos_token_ids)
        expected = reference
        if case % 5 == 0:
            budget, expected = 1, reference[:1]
        elif case % 5 in (1, 2) and len(reference) > 3:
            # EOS midway: a token the target emits mid-answer; generate stops at its first use.
            eos = [reference[len(reference) // 2]]
            expected = until(reference, eos[0])
        shape = TREE if (case // 4) % 2 == 0 else CHAIN
        # adaptive=False: every step drafts, so the oracle's long paths are what gets counted
        # (test_adaptive_decoding.py covers decoding with paused drafting). Every third case
        # stops its trees early (a random draft's after one level, an oracle's never).
        stop_below = 0.3 if case % 3 == 1 else 0.0
        decoder = SpeculativeDecoder(target, draft, DecodeConfig(
            shape, eos_token_ids=eos, adaptive=False, stop_below=stop_below))
        generation = decoder.generate(inputs=prepared, max_new_tokens=budget)
        assert generation.token_ids == expected, (family, case, shape, draft.config.interaction)
        accepted += sum(generation.stats.accepted_at_depth)
        if budget > 1:
            bound = len(prompt) + len(expected) + shape.total_tokens
            assert generation.stats.max_target_cache <= bound
            # The draft holds its prefix slots plus the tree's expanded frontiers.
            frontier_slots = (shape.depth - 1) * shape.top_k
            assert generation.stats.max_draft_cache <= len(prompt) + len(expected) + frontier_slots
    assert accepted > 2 * PROMPTS_PER_FAMILY, "the oracle drafts should get long paths accepted"


def test_vanilla_through_the_decoder_equals_generate():
    target = tiny_target("llama", seed=0)
    prepared = tiny_inputs(target, n_text=6, seed=11)
    reference = greedy_reference(target, prepared, target.eos_token_ids)
    generation = SpeculativeDecoder(target, None).generate(inputs=prepared,
                                                          max_new_tokens=NEW_TOKENS)
    assert generation.token_ids == reference
    assert generation.stats.tau == 1.0
    assert generation.stats.steps == len(reference) - 1
