"""The supernet with the image_input dimension: extraction stays exact when a subnet reads the
target's image features, and training feeds them (the batch's merged image embeddings) to the
subnets that read them, and only to those."""

import random
from dataclasses import replace

import torch
from deep_targets import Ranked

from search_spaces import TargetDims, load_space
from supernet.extract import extract
from supernet.features import TargetBatch
from supernet.loss import LossConfig, unrolled_loss
from supernet.superdraft import SuperDraft
from targets.tiny import tiny_target


def vlm_and_space():
    target = tiny_target("llava_clip", seed=0)
    space = load_space("dream_s").resolve(TargetDims.of(target), Ranked((1,)))
    return target, space


def with_images(target, length: int, seed: int):
    """Slot inputs whose tokens hold image placeholders, and merged embeddings for them."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, target.vocab_size - 4, (2, length), generator=generator)
    tokens[:, 2:6] = target.image_token_id
    hidden = {tap: torch.randn(2, length, target.hidden_size, generator=generator)
              for tap in range(target.num_layers + 1)}
    merged = torch.randn(2, length, target.hidden_size, generator=generator)
    return tokens, hidden, torch.arange(1, length + 1).expand(2, length), merged


def test_subnets_reading_image_features_extract_exactly():
    target, space = vlm_and_space()
    assert space.image_input == ("placeholder", "features")
    superdraft = SuperDraft(space, target)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # open the gates, move the norms off 1: every tensor counts
        for param in superdraft.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    rng = random.Random(0)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(30)]
    assert {arch.image_input for arch in archs} == {"placeholder", "features"}
    for i, arch in enumerate(archs):
        tokens, hidden, positions, merged = with_images(target, 10, seed=i)
        superdraft.activate(arch)
        draft = extract(superdraft, arch)
        assert draft.config.image_input == arch.image_input
        with torch.no_grad():
            expected = superdraft(tokens, superdraft.fuse(hidden), positions,
                                  merged_embeds=merged)
            got = draft(tokens, draft.fuse(hidden), positions, merged_embeds=merged)
            blind = draft(tokens, draft.fuse(hidden), positions)
        torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=1e-5)
        # The merged embeddings change the output exactly when the draft reads them.
        reads = not torch.allclose(got.logits, blind.logits)
        assert reads == (arch.image_input == "features"), arch


def test_training_feeds_the_image_features_to_the_subnets_that_read_them():
    target, space = vlm_and_space()
    superdraft = SuperDraft(space, target)
    tokens, hidden, _, merged = with_images(target, 12, seed=0)
    response = torch.zeros_like(tokens, dtype=torch.bool)
    response[:, 7:] = True
    image_mask = tokens == target.image_token_id
    batch = TargetBatch(tokens, torch.ones_like(response), response, image_mask, None, hidden,
                        torch.randn(2, 12, target.hidden_size),
                        image_embeds=merged * image_mask[..., None])
    blind = replace(batch, image_embeds=torch.zeros_like(merged))
    cfg = LossConfig(unroll_steps=2)
    for image_input in ("placeholder", "features"):
        superdraft.activate(replace(space.largest(), image_input=image_input))
        with torch.no_grad():
            seen = unrolled_loss(superdraft, batch, cfg).loss
            unseen = unrolled_loss(superdraft, blind, cfg).loss
        assert (seen != unseen) == (image_input == "features")
