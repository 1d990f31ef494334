"""The acceptance estimator agrees with the bundled decoder on the target's own greedy sequences."""

import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nas.estimator import AcceptanceEstimator, ValidationSet
from nas.measured_shapes import decoded_tau as stage_tau
from nas.measured_shapes import prepared
from search_spaces import TargetDims, load_space
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.shape import DecodeShape
from specdec.vocab import most_frequent_tokens
from supernet import SuperDraft, extract
from supernet.corpus import build_corpus, response_tokens
from supernet.features import FeatureSource
from supernet.loss import LossConfig, unrolled_loss
from targets.tiny import tiny_inputs, tiny_target

sys.path.insert(0, str(Path(__file__).parents[1] / "supernet"))
from deep_targets import Ranked, deep_tiny_llama

# Every interaction, two depths and head counts, full and reduced vocabularies.
SPACE = """\
name: tiny
dimensions:
  num_layers: [1, 2]
  num_heads: [0.5, 1.0]
  intermediate_size: [1.0, 2.0]
  interaction: [none, add, concat, cross_attention]
  injected_layers:
    - [top]
    - [1, top]
  vision_keep_ratio: [1.0]
  draft_vocab_size: [0.5, full]
"""
NEW_TOKENS = 40
K = 4
TREE = DecodeShape(depth=3, top_k=2, total_tokens=6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-layer tiny target, its greedy responses, and a supernet trained on them briefly
    (60 sandwich steps): its subnets accept 1 to 3 tokens per step."""
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("estimator")
    (directory / "tiny.yaml").write_text(SPACE)
    target = deep_tiny_llama(layers=3)
    space = load_space(directory / "tiny.yaml").resolve(TargetDims.of(target), None)
    generator = torch.Generator().manual_seed(0)
    prompts = [target.prepare(inputs={"input_ids": torch.randint(3, 120, (1, 6),
                                                                 generator=generator)})
               for _ in range(24)]
    corpus = build_corpus(target, prompts, NEW_TOKENS, directory / "corpus")
    train, validation = corpus[:16], corpus[16:]
    ranking = most_frequent_tokens(response_tokens(train), 64, target.vocab_size)
    superdraft = SuperDraft(space, target, ranking)
    taps = sorted({tap for taps in space.injected_layers for tap in taps})
    batch = FeatureSource(target, taps, False).batch(list(enumerate(train)))
    optimizer = torch.optim.AdamW(superdraft.parameters(), lr=3e-3)
    rng = random.Random(0)
    for _ in range(60):
        optimizer.zero_grad()
        for arch in (space.largest(), space.smallest(), space.sample(rng)):
            superdraft.activate(arch)
            unrolled_loss(superdraft, batch, LossConfig(unroll_steps=3)).loss.backward()
        optimizer.step()
    superdraft.eval()
    return target, space, superdraft, validation, ValidationSet.build(target, validation, taps,
                                                                      False)


def decoded_tau(target, draft, validation, k: int = K) -> float:
    """Chain-mode tau the decoder measures over the validation prompts (pooled over steps)."""
    # adaptive=False: the draft's own tau, with no plain steps mixed in.
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(DecodeShape.chain(k), adaptive=False))
    steps = tokens = 0
    for item in validation:
        prompt = target.prepare(inputs={"input_ids": item.input_ids[None, : item.prompt_len]})
        generation = decoder.generate(inputs=prompt, max_new_tokens=NEW_TOKENS)
        # Identical sequences: the decoder's greedy output is the target's greedy response.
        assert generation.token_ids == item.response.tolist()
        steps, tokens = steps + generation.stats.steps, tokens + generation.stats.step_tokens
    return tokens / steps


def test_chain_tau_agrees_with_the_decoder_for_ten_subnets(trained):
    target, space, superdraft, validation, validation_set = trained
    estimator = AcceptanceEstimator(validation_set)
    rng = random.Random(1)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(8)]
    taus = []
    for arch in archs:
        estimate = estimator.estimate(superdraft.activate(arch), DecodeShape.chain(K))
        assert estimate.exact
        measured = decoded_tau(target, extract(superdraft, arch).eval(), validation)
        assert estimate.tau == pytest.approx(measured, rel=0.03), arch
        taus.append(measured)
    # The comparison means something only if drafts accept: several do, and they differ.
    assert sum(tau > 1.5 for tau in taus) >= 3
    assert max(taus) - min(taus) > 0.5


@pytest.mark.parametrize("k", [1, 2])
def test_chain_tau_of_every_length_agrees_with_the_decoder(trained, k):
    target, space, superdraft, validation, validation_set = trained
    estimator = AcceptanceEstimator(validation_set)
    for arch in (space.largest(), space.sample(random.Random(k))):
        estimate = estimator.estimate(superdraft.activate(arch), DecodeShape.chain(k))
        measured = decoded_tau(target, extract(superdraft, arch).eval(), validation, k)
        assert estimate.tau == pytest.approx(measured, rel=0.03), (k, arch)
        assert estimate.tau <= k + 1


def test_measured_shapes_stage_decodes_like_the_decoder_and_trees_stay_under_the_estimate(trained):
    target, space, superdraft, validation, validation_set = trained
    estimator = AcceptanceEstimator(validation_set)
    prompts = [prepared(target, item) for item in validation]
    for arch in (space.largest(), space.sample(random.Random(3))):
        draft = extract(superdraft, arch).eval()
        assert stage_tau(target, draft, DecodeShape.chain(K), prompts) == pytest.approx(
            decoded_tau(target, draft, validation))
        # The tree estimate ignores the frontier choice and total_tokens pruning: an upper bound.
        tree = estimator.estimate(superdraft.activate(arch), TREE)
        assert not tree.exact
        assert stage_tau(target, draft, TREE, prompts) <= tree.tau + 1e-9


def test_extracted_draft_and_active_subnet_estimate_alike(trained):
    _, space, superdraft, _, validation_set = trained
    estimator = AcceptanceEstimator(validation_set)
    arch = space.largest()
    from_supernet = estimator.estimate(superdraft.activate(arch), DecodeShape.chain(K))
    from_extracted = estimator.estimate(extract(superdraft, arch).eval(), DecodeShape.chain(K))
    assert from_extracted.tau == pytest.approx(from_supernet.tau, rel=1e-6)


def test_estimate_shapes_and_bounds(trained):
    _, space, superdraft, _, validation_set = trained
    draft = superdraft.activate(space.largest())
    estimate = AcceptanceEstimator(validation_set).estimate(draft, DecodeShape.chain(K))
    assert len(estimate.acceptance_by_depth) == K
    # Accepting > d tokens implies accepting > d - 1: the fractions never rise with depth.
    assert all(a >= b for a, b in zip(estimate.acceptance_by_depth,
                                       estimate.acceptance_by_depth[1:]))
    # tau = 1 + accepted per step, bonus included, except where the response's end truncates.
    assert 1.0 <= estimate.tau <= 1 + sum(estimate.acceptance_by_depth) + 1e-9
    # A tree holding every top-4 child accepts at least what the chain accepts, at most k + 1.
    tree = AcceptanceEstimator(validation_set).estimate(draft, DecodeShape(K, 4, 20))
    assert tree.chain_tau == pytest.approx(estimate.tau)
    assert estimate.tau <= tree.tau <= K + 1


def test_chain_tau_agrees_with_the_decoder_when_the_draft_reads_image_features(tmp_path):
    """On a VLM, tokens-only drafts trained briefly with and without the target's image
    features: the estimator (training's slot alignment of the merged embeddings) measures what
    the decoder (the prefill's) measures."""
    torch.set_num_threads(1)
    target = tiny_target("llava_clip", seed=0)
    space = load_space("dream_s").resolve(TargetDims.of(target), Ranked((1,)))
    space = replace(space, interaction=("none",), num_layers=(1,), num_heads=(4,),
                    intermediate_size=(64,), vision_keep_ratio=(1.0,), draft_vocab_size=(None,))
    prompts = [tiny_inputs(target, n_text=4 + i % 3, seed=i) for i in range(12)]
    corpus = build_corpus(target, prompts, 16, tmp_path / "corpus")
    train, validation = corpus[:8], corpus[8:]
    superdraft = SuperDraft(space, target)
    batch = FeatureSource(target, [], False, image_embeds=True).batch(list(enumerate(train)))
    optimizer = torch.optim.AdamW(superdraft.parameters(), lr=3e-3)
    for _ in range(30):
        optimizer.zero_grad()
        for arch in space:
            unrolled_loss(superdraft.activate(arch), batch, LossConfig()).loss.backward()
        optimizer.step()
    superdraft.eval()
    estimator = AcceptanceEstimator(ValidationSet.build(target, validation, [], False, True))
    assert {arch.image_input for arch in space} == {"placeholder", "features"}
    for arch in space:
        estimate = estimator.estimate(superdraft.activate(arch), DecodeShape.chain(K))
        decoder = SpeculativeDecoder(target, extract(superdraft, arch).eval(),
                                     DecodeConfig(DecodeShape.chain(K), adaptive=False))
        steps = tokens = 0
        for item in validation:
            prompt = target.prepare(inputs={"input_ids": item.input_ids[None, : item.prompt_len],
                                            **item.model_kwargs})
            generation = decoder.generate(inputs=prompt, max_new_tokens=len(item.response))
            assert generation.token_ids == item.response.tolist()
            steps, tokens = steps + generation.stats.steps, tokens + generation.stats.step_tokens
        assert estimate.tau == pytest.approx(tokens / steps, rel=1e-6), arch
        assert estimate.tau > 1.5, arch  # the drafts accept: the comparison means something
