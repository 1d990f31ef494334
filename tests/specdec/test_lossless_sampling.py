"""Speculative sampling draws from the target's own distribution.

On a tiny target with a 12-token vocabulary, the exact joint distribution of the first three
generated tokens is enumerated (12^3 sequences); N seeded speculative generations are compared
with it by a chi-square test (cells with expected count < 5 pooled). Seeds are fixed, so each
statistic is deterministic; the observed p-values are noted beside the assertions. The draft
mimics the target (specdec_test_drafts.MimicDraft), so drafts are accepted often and rejected
sometimes, and both branches of the rejection rule run at every depth. Each runtime
(targets.runtime) samples from its own model's distribution: the fp16 runtime is checked on the
tree, whose rejection rule runs along each path as a chain's does (the suite's time is bounded).
"""

import functools

import pytest
import torch
from scipy.stats import chi2
from specdec_test_drafts import MimicDraft

from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.shape import DecodeShape
from specdec.verify import TokenSampler
from targets import Target
from targets.runtime import QUANTIZE
from targets.tiny import tiny_inputs, tiny_target

VOCAB = 12
SAMPLES = 3000  # draws of the power check
GENERATIONS = 2000  # seeded speculative generations per decoding case


@functools.cache
def runtime_target(quantize: str) -> Target:
    target = tiny_target("llama", seed=0, vocab_size=VOCAB)
    with torch.no_grad():  # sharpen the random head so the joint has structure worth testing
        target.model.lm_head.weight.mul_(25.0)
    return Target(target.model, spec=target.spec, quantize=quantize)


def exact_joint(target, prompt: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """[V, V, V]: P(x1, x2, x3 | prompt) under temperature and top-p, by enumeration."""
    warp = TokenSampler(temperature, top_p, seed=0, device=torch.device("cpu")).probs
    tokens = torch.arange(VOCAB)
    with torch.no_grad():
        first = warp(target.model(input_ids=prompt).logits[0, -1])
        one = torch.cat((prompt.expand(VOCAB, -1), tokens[:, None]), 1)
        second = warp(target.model(input_ids=one).logits[:, -1])
        two = torch.cat((one.repeat_interleave(VOCAB, 0), tokens.repeat(VOCAB)[:, None]), 1)
        third = warp(target.model(input_ids=two).logits[:, -1]).view(VOCAB, VOCAB, VOCAB)
    return first[:, None, None] * second[:, :, None] * third


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's test; sequences of probability 0 (cut by top-p) must never be drawn."""
    expected = probs.flatten().double() * counts.sum()
    observed = counts.flatten().double()
    possible = expected > 0
    assert observed[~possible].sum() == 0, "drew a sequence the target gives probability 0"
    expected, observed = expected[possible], observed[possible]
    small = expected < 5
    if small.any():  # pool the rare sequences into one cell
        expected = torch.cat((expected[~small], expected[small].sum()[None]))
        observed = torch.cat((observed[~small], observed[small].sum()[None]))
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return float(chi2.sf(statistic, observed.numel() - 1))


# Observed (deterministic): chain p = 0.827 (3375 draft tokens accepted in 2000 generations),
# tree p = 0.119 (4785 accepted; the same with the fp16 runtime). adaptive=False: every step
# drafts, whatever the timings (test_adaptive_decoding.py samples with paused drafting).
@pytest.mark.parametrize("quantize, shape, temperature, top_p", [
    ("none", DecodeShape.chain(3), 1.0, 1.0),
    *[(quantize, DecodeShape(depth=3, top_k=3, total_tokens=8), 0.7, 0.9) for quantize in QUANTIZE],
])
def test_speculative_sampling_matches_the_target(quantize, shape, temperature, top_p):
    target = runtime_target(quantize)
    prepared = tiny_inputs(target, n_text=5, seed=0)
    cfg = DraftConfig.for_target(target, interaction="concat")
    draft = MimicDraft.random(cfg, target, seed=0)
    draft.first_token = int(prepared.input_ids[0, 0])
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(shape, eos_token_ids=[],
                                                             adaptive=False))
    counts = torch.zeros(VOCAB, VOCAB, VOCAB)
    accepted = 0
    for seed in range(GENERATIONS):
        generation = decoder.generate(inputs=prepared, max_new_tokens=3,
                                      temperature=temperature, top_p=top_p, seed=seed)
        counts[tuple(generation.token_ids)] += 1
        accepted += sum(generation.stats.accepted_at_depth)
    assert accepted > GENERATIONS // 4, "the draft should get tokens accepted, or nothing is tested"
    joint = exact_joint(target, prepared.input_ids, temperature, top_p)
    p_value = chi_square_p_value(counts, joint)
    assert p_value > 1e-3


def test_the_chi_square_test_detects_a_slightly_wrong_distribution():
    """Power check: samples from the joint at temperature 1.15 instead of 1 are rejected."""
    target = runtime_target("none")
    prompt = tiny_inputs(target, n_text=5, seed=0).input_ids
    wrong = exact_joint(target, prompt, 1.15, 1.0).flatten()
    draws = torch.multinomial(wrong, SAMPLES, replacement=True,
                              generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=VOCAB**3).view(VOCAB, VOCAB, VOCAB)
    assert chi_square_p_value(counts, exact_joint(target, prompt, 1.0, 1.0)) < 1e-3
