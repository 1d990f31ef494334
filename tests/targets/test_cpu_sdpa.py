"""The CPU attention kernel (targets.attention): masked verification reads grouped key/value heads
in place, and gives what transformers' sdpa gives, for every tiny family."""

import pytest
import torch
import transformers.integrations.sdpa_attention as hf_sdpa

from targets import crop_cache
from targets.attention import CPU_SDPA
from targets.families.masks import additive
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target


def verify_chain_and_tree(target, prepared) -> list[torch.Tensor]:
    """Logits of a 4-token chain (transformers' causal mask) and of a 4-node tree (our mask)."""
    cache = target.new_cache()
    target.forward(prepared.input_ids, cache=cache, model_kwargs=prepared.model_kwargs)
    prefix = cache.length
    chain = target.forward(torch.tensor([[5, 6, 7, 8]]), cache=cache)
    crop_cache(cache, prefix)
    allowed = torch.ones(4, prefix + 4, dtype=torch.bool)
    allowed[:, prefix:] = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]])
    mask = additive(allowed, target.dtype)
    tree = target.forward(torch.tensor([[5, 6, 9, 7]]),
                          positions=torch.tensor([[prefix, prefix + 1, prefix + 1, prefix + 2]]),
                          attention_mask=mask[None, None], cache=cache)
    return [chain.logits, tree.logits]


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_masked_verification_reads_grouped_heads_in_place_and_equals_sdpa(family, monkeypatch):
    target = tiny_target(family, seed=0)
    prepared = tiny_inputs(target, n_text=6, seed=1)
    assert target.model.config._attn_implementation == CPU_SDPA
    assert target.model.config.get_text_config(decoder=True).num_key_value_heads < \
        target.num_heads  # the tiny targets have grouped heads: the path under test runs

    def copies_the_cache(*_):
        raise AssertionError("repeat_kv: the cache was copied once per head group")

    with monkeypatch.context() as patched:
        patched.setattr(hf_sdpa, "repeat_kv", copies_the_cache)
        ours = verify_chain_and_tree(target, prepared)
    target.model.set_attn_implementation("sdpa")
    theirs = verify_chain_and_tree(target, prepared)
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, atol=1e-6, rtol=1e-5)
