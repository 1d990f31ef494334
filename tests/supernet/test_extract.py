"""Extraction is exact: a subnet's extracted DraftModel computes what the supernet computes."""

import random

import pytest
import torch
from deep_targets import deep_tiny_llama

from specdec.model import DraftModel
from supernet.extract import extract
from supernet.superdraft import SuperDraft, draft_config


def open_gates_and_perturb(superdraft: SuperDraft, seed: int) -> None:
    """Gates start at 0 (cross blocks would be invisible) and norms at 1: make every tensor count."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in superdraft.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))


def slot_inputs(target, superdraft, length: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, target.vocab_size, (2, length), generator=generator)
    hidden = {tap: torch.randn(2, length, target.hidden_size, generator=generator)
              for tap in range(target.num_layers + 1)}
    return tokens, hidden, torch.arange(1, length + 1).expand(2, length)


def test_fifty_random_subnets_extract_exactly(deep_target, dream_s):
    superdraft = SuperDraft(dream_s, deep_target, vocab_ranking=list(range(127, -1, -1)))
    open_gates_and_perturb(superdraft, seed=1)
    rng = random.Random(0)
    archs = [dream_s.largest(), dream_s.smallest()] + [dream_s.sample(rng) for _ in range(48)]
    assert len({arch.interaction for arch in archs}) == 4
    for i, arch in enumerate(archs):
        tokens, hidden, positions = slot_inputs(deep_target, superdraft, 9, seed=i)
        superdraft.activate(arch)
        draft = extract(superdraft, arch)
        with torch.no_grad():
            expected = superdraft(tokens, superdraft.fuse(hidden), positions)
            got = draft(tokens, draft.fuse(hidden), positions)
        torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=1e-5)
        fresh = DraftModel.random(draft_config(deep_target, arch), deep_target,
                                  superdraft.draft_token_ids(arch))
        count = sum(p.numel() for p in draft.parameters())
        assert count == sum(p.numel() for p in fresh.parameters()), arch
        if arch.draft_vocab_size:
            assert torch.equal(draft.d2t, fresh.d2t) and torch.equal(draft.t2d, fresh.t2d)


def test_extracted_draft_round_trips_through_a_checkpoint(deep_target, dream_s, tmp_path):
    superdraft = SuperDraft(dream_s, deep_target)
    arch = dream_s.sample(random.Random(3))
    saved = extract(superdraft, arch, provenance={"supernet": "test"}).save_pretrained(tmp_path)
    loaded = DraftModel.from_pretrained(saved, deep_target)
    assert loaded.config.provenance == {"supernet": "test"}
    for name, tensor in superdraft.subnet_weights(arch).items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_space_of_another_target_is_refused(deep_target, dream_s):
    with pytest.raises(ValueError, match="resolve it against this target"):
        SuperDraft(dream_s, deep_tiny_llama(layers=4))


def test_a_reduced_head_starts_as_the_targets_rows_of_its_tokens(deep_target, dream_s):
    ranking = list(range(127, -1, -1))
    superdraft = SuperDraft(dream_s, deep_target, vocab_ranking=ranking)
    superdraft.start_head_from_target()
    arch = next(arch for arch in (dream_s.sample(random.Random(seed)) for seed in range(100))
                if arch.draft_vocab_size)
    draft = extract(superdraft, arch)
    target_ids = torch.arange(arch.draft_vocab_size) + draft.d2t  # the draft's rows, in order
    assert sorted(target_ids.tolist()) == sorted(ranking[: arch.draft_vocab_size])
    torch.testing.assert_close(draft.lm_head.weight,
                               deep_target.model.get_output_embeddings().weight[target_ids],
                               rtol=0, atol=0)
