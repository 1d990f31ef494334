"""The decoder with drafting paused and resumed (a scripted DraftPolicy, so the steps are fixed):
greedy output stays the target's, the stats split drafted from plain steps, and a draft that
catches up on paused steps in one forward is in the state of a draft that was never paused."""

import pytest
import torch
from specdec_test_drafts import MimicDraft, OracleDraft
from test_lossless_greedy import NEW_TOKENS, case_draft, greedy_reference
from test_lossless_sampling import GENERATIONS, VOCAB, chi_square_p_value, exact_joint

from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.model import DraftModel
from specdec.shape import DecodeShape
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target


class ScriptedPolicy:
    """Drafts on the steps whose letter in `pattern` (repeated) is D, plain on P."""

    def __init__(self, pattern: str):
        self.pattern, self.step = pattern, 0

    def draft_next(self) -> bool:
        return self.pattern[self.step % len(self.pattern)] == "D"

    def record(self, tokens: int, seconds: float, drafted: bool) -> None:
        assert drafted == self.draft_next() and tokens >= 1 and seconds >= 0
        self.step += 1


PATTERNS = ("PDPPDDPPPD", "DPPPPDPD")


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_greedy_decoding_with_paused_drafting_is_lossless(family):
    target = tiny_target(family, seed=0)
    drafted = plain = 0
    for case in range(8):
        prepared = tiny_inputs(target, n_text=3 + case % 6, seed=case)
        expected = greedy_reference(target, prepared, target.eos_token_ids)
        draft = case_draft(target, case, prepared.input_ids[0].tolist() + expected)
        shape = DecodeShape(4, 3, 10) if case % 2 else DecodeShape.chain(3)
        pattern = PATTERNS[case % 2]
        decoder = SpeculativeDecoder(target, draft, DecodeConfig(shape),
                                     policy=ScriptedPolicy(pattern))
        generation = decoder.generate(inputs=prepared, max_new_tokens=NEW_TOKENS)
        assert generation.token_ids == expected, (family, case, shape, draft.config.interaction)
        drafted += generation.stats.drafted_steps
        plain += generation.stats.steps - generation.stats.drafted_steps
    assert drafted >= 8 and plain >= 8, "resumes after plain steps should be tested"


def test_sampling_with_paused_drafting_matches_the_target():
    """As test_lossless_sampling, with the policy going on across generations in the pattern
    P D D: generations start plain then resume (catch-up), or draft then pause."""
    target = tiny_target("llama", seed=0, vocab_size=VOCAB)
    with torch.no_grad():
        target.model.lm_head.weight.mul_(25.0)
    prepared = tiny_inputs(target, n_text=5, seed=0)
    draft = MimicDraft.random(DraftConfig.for_target(target, interaction="concat"), target)
    draft.first_token = int(prepared.input_ids[0, 0])
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(DecodeShape.chain(3), eos_token_ids=[]),
                                 policy=ScriptedPolicy("PDD"))
    counts = torch.zeros(VOCAB, VOCAB, VOCAB)
    accepted = plain = 0
    for seed in range(GENERATIONS):
        generation = decoder.generate(inputs=prepared, max_new_tokens=3, seed=seed,
                                      temperature=1.0)
        counts[tuple(generation.token_ids)] += 1
        accepted += sum(generation.stats.accepted_at_depth)
        plain += generation.stats.steps - generation.stats.drafted_steps
    assert accepted > GENERATIONS // 4 and plain > GENERATIONS // 4
    # Observed (deterministic): p = 0.512, 2797 draft tokens accepted, 746 plain steps.
    assert chi_square_p_value(counts, exact_joint(target, prepared.input_ids, 1.0, 1.0)) > 1e-3


def never_matching_draft(target, interaction: str, reference: list[int]) -> OracleDraft:
    cfg = DraftConfig.for_target(target, interaction=interaction)
    draft = OracleDraft.random(cfg, target, seed=1)
    draft.reference, draft.wrong_every = reference, 1
    return draft


def root_states(decoder: SpeculativeDecoder, prepared, new_tokens: int) -> dict[int, tuple]:
    """The draft's (hidden, logits) at the root's slot whenever it builds a tree, by root
    position; and the generation."""
    states = {}
    build = decoder._draft_tree

    def spy(state, root, prefix_len):
        states[prefix_len] = (state.hidden.clone(), state.logits.clone())
        return build(state, root, prefix_len)

    decoder._draft_tree = spy
    generation = decoder.generate(inputs=prepared, max_new_tokens=new_tokens)
    return states, generation


@pytest.mark.parametrize("family, interaction", [("llama", "concat"),
                                                 ("llama", "cross_attention"),
                                                 ("llava_clip", "add")])
def test_a_draft_resumed_after_plain_steps_equals_a_draft_never_paused(family, interaction):
    target = tiny_target(family, seed=0)
    prepared = tiny_inputs(target, n_text=5, seed=3)
    new_tokens = 16
    reference = prepared.input_ids[0].tolist() + SpeculativeDecoder(target).generate(
        inputs=prepared, max_new_tokens=new_tokens).token_ids
    # Chain mode and a draft that never matches: one token per step, so the never-paused draft
    # builds a tree at every root position.
    chain = DecodeConfig(DecodeShape.chain(2), eos_token_ids=[], adaptive=False)
    never_paused, plain_run = root_states(
        SpeculativeDecoder(target, never_matching_draft(target, interaction, reference), chain),
        prepared, new_tokens)
    resumed, paused_run = root_states(
        SpeculativeDecoder(target, never_matching_draft(target, interaction, reference), chain,
                           policy=ScriptedPolicy("DPPPDPD")),
        prepared, new_tokens)
    assert paused_run.token_ids == plain_run.token_ids
    assert paused_run.stats.drafted_steps < paused_run.stats.steps == plain_run.stats.steps
    assert len(resumed) == paused_run.stats.drafted_steps >= 4
    for position, (hidden, logits) in resumed.items():
        torch.testing.assert_close(hidden, never_paused[position][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logits, never_paused[position][1], rtol=1e-4, atol=1e-4)


def test_stats_count_drafted_steps_and_acceptance_over_them_only():
    target = tiny_target("llama", seed=0)
    prepared = tiny_inputs(target, n_text=6, seed=0)
    new_tokens = 12
    reference = prepared.input_ids[0].tolist() + SpeculativeDecoder(target).generate(
        inputs=prepared, max_new_tokens=new_tokens).token_ids
    draft = OracleDraft.random(DraftConfig.for_target(target, interaction="concat"), target)
    draft.reference, draft.wrong_every = reference, 1000  # every draft token is right
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(DecodeShape.chain(2), eos_token_ids=[]),
                                 policy=ScriptedPolicy("DP"))
    stats = decoder.generate(inputs=prepared, max_new_tokens=new_tokens).stats
    # Drafted steps emit 3 tokens, plain ones 1: the prefill's token, then D P D P D give 12.
    assert (stats.steps, stats.drafted_steps) == (5, 3)
    assert stats.acceptance_by_depth == [1.0, 1.0]
    assert stats.tau == 11 / 5
    assert stats.to_dict()["drafted_steps"] == 3


def test_adaptive_false_drafts_every_step():
    target = tiny_target("llama", seed=0)
    prepared = tiny_inputs(target, n_text=6, seed=0)
    draft = DraftModel.random(DraftConfig.for_target(target, interaction="add"), target)
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(DecodeShape.chain(2), eos_token_ids=[],
                                                             adaptive=False))
    stats = decoder.generate(inputs=prepared, max_new_tokens=10).stats
    assert stats.drafted_steps == stats.steps > 0
