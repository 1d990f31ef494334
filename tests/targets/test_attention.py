"""Eager-attention read-outs (entropy, image scores) and image-token positions, for every family."""

import math

import pytest
import torch

from targets.attention import CPU_SDPA
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target


@pytest.fixture(params=TINY_FAMILIES)
def tiny(request):
    target = tiny_target(request.param)
    return target, tiny_inputs(target, n_text=6, seed=2)


def test_image_mask_marks_the_placeholders(tiny):
    target, prepared = tiny
    if target.is_vlm:
        expected = prepared.input_ids == target.image_token_id
        assert expected.sum() > 0
    else:
        expected = torch.zeros_like(prepared.input_ids, dtype=torch.bool)
    assert torch.equal(prepared.image_mask, expected)


def test_attention_entropy_per_layer(tiny):
    target, prepared = tiny
    other = tiny_inputs(target, n_text=4, seed=3)
    entropy = target.attention_entropy([prepared, other])
    assert entropy.shape == (target.num_layers,)
    assert torch.isfinite(entropy).all()
    # Each query attends to at most T keys: 0 < H <= log T (the first query's H is 0).
    longest = prepared.input_ids.shape[1]
    assert (entropy > 0).all() and (entropy <= math.log(longest)).all()
    assert target.model.config._attn_implementation == CPU_SDPA


def test_image_scores_come_from_eager_and_leave_the_cpu_kernel(tiny):
    target, prepared = tiny
    cache = target.new_cache()
    scored = target.forward(
        prepared.input_ids, cache=cache, model_kwargs=prepared.model_kwargs, image_scores=True
    )
    length = prepared.input_ids.shape[1]
    assert scored.image_scores.shape == (1, length)
    assert (scored.image_scores >= 0).all()
    # At prefill every query's weights sum to 1, so their mean over queries does too.
    torch.testing.assert_close(scored.image_scores.sum(), torch.tensor(1.0))
    assert target.model.config._attn_implementation == CPU_SDPA

    plain = target.forward(
        prepared.input_ids,
        cache=target.new_cache(),
        model_kwargs=prepared.model_kwargs,
    )
    assert plain.image_scores is None
    torch.testing.assert_close(scored.logits, plain.logits, atol=2e-5, rtol=1e-4)
