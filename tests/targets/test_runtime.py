"""Runtimes (targets.runtime): what an fp16 target serves with, and the cache that grows in place.

Losslessness per runtime is tested where decoding is (tests/specdec/test_lossless_*.py); here: which
linears a runtime replaces, that the model it serves is the same model up to float16 weights, that
the fingerprint still names the stored weights, and that a draft computes as its target does.
"""

import pytest
import torch
from torch import nn

from specdec.config import DraftConfig
from specdec.model import DraftModel
from targets import Target, TargetError, crop_cache, load_target, select_cache
from targets.cache import GrowingLayer, TargetCache
from targets.runtime import Fp16Linear, serve, served_weight_bytes
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target


def linears(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_fp16_serves_the_text_decoder_and_head_of_the_same_model(family):
    exact = tiny_target(family, seed=0)
    served = tiny_target(family, seed=0, quantize="fp16")
    assert served.quantize == "fp16" and exact.quantize == "none"
    assert served.fingerprint == exact.fingerprint  # the stored weights, not the runtime's
    assert linears(served.model.get_decoder(), nn.Linear) == 0
    assert isinstance(served.model.get_output_embeddings(), Fp16Linear)
    # A vision tower runs once per prompt and keeps its own linears.
    assert (linears(served.model, nn.Linear) > 0) == served.is_vlm
    prepared = tiny_inputs(exact, n_text=6, seed=1)
    want = exact.forward(prepared.input_ids, cache=exact.new_cache(),
                         model_kwargs=prepared.model_kwargs).logits
    got = served.forward(prepared.input_ids, cache=served.new_cache(),
                         model_kwargs=prepared.model_kwargs).logits
    assert not torch.equal(got, want)  # float16 weights: another model ...
    torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)  # ... and nearly the same one


def test_fp16_reads_half_the_bytes_of_its_linears():
    exact, served = tiny_target("llama", seed=0), tiny_target("llama", seed=0, quantize="fp16")
    linear_bytes = sum(m.weight.numel() * 4 for m in exact.model.modules()
                       if isinstance(m, nn.Linear))
    assert served_weight_bytes(exact.model) - served_weight_bytes(served.model) == \
        linear_bytes // 2


def test_a_draft_computes_as_its_target_does():
    target = tiny_target("llama", seed=0, quantize="fp16")
    draft = DraftModel.random(DraftConfig.for_target(target, interaction="concat"), target)
    assert linears(draft, nn.Linear) == 0 and linears(draft, Fp16Linear) > 0


def test_serve_replaces_a_bare_linear_and_leaves_none_alone():
    linear = nn.Linear(8, 4)
    assert serve(linear, "none") is linear
    served = serve(linear, "fp16")
    assert isinstance(served, Fp16Linear)
    x = torch.randn(3, 8)
    torch.testing.assert_close(served(x), linear(x), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("kwargs, message", [
    ({"quantize": "int8"}, "quantize: unknown 'int8'"),
    ({"quantize": "fp16", "dtype": torch.bfloat16}, "quantize=fp16 is a CPU runtime"),
])
def test_a_runtime_that_cannot_serve_is_refused_in_one_line(kwargs, message):
    with pytest.raises(TargetError, match=message):
        load_target("/nonexistent", **kwargs)  # refused before anything is read
    model = tiny_target("llama", seed=0).model.to(kwargs.get("dtype", torch.float32))
    with pytest.raises(TargetError, match=message):
        Target(model, spec="tiny", quantize=kwargs["quantize"])


def fill(cache: TargetCache, layers: int, steps: list[int]) -> list[torch.Tensor]:
    """Append `steps` new slots per call to every layer; returns each layer's keys appended."""
    written = [[] for _ in range(layers)]
    for step, new in enumerate(steps):
        for layer in range(layers):
            keys = torch.randn(1, 2, new, 4)
            cache.hf.update(keys, keys + 1, layer)
            written[layer].append(keys)
        start = cache.length
        cache.append(torch.arange(start, start + new)[None])
    return [torch.cat(chunks, dim=2) for chunks in written]


def test_the_cache_grows_in_place_and_keeps_a_path_by_moving_only_it():
    cache = TargetCache()
    keys = fill(cache, 2, [5, 3, 4])
    layer = cache.hf.layers[1]
    assert isinstance(layer, GrowingLayer) and cache.hf.get_seq_length() == 12
    buffer = layer.keys.data_ptr()
    keep = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 9, 11])  # prefix 0..7, then a path 9, 11
    select_cache(cache, keep)
    assert torch.equal(layer.keys, keys[1][:, :, keep])
    assert torch.equal(layer.values, keys[1][:, :, keep] + 1)
    assert layer.keys.data_ptr() == buffer  # moved within the buffer, not copied out
    crop_cache(cache, 4)
    assert torch.equal(layer.keys, keys[1][:, :, :4]) and layer.keys.data_ptr() == buffer
    more = fill(cache, 2, [2])
    assert torch.equal(layer.keys, torch.cat((keys[1][:, :, :4], more[1]), dim=2))


def test_the_cache_survives_keys_assigned_from_outside():
    """The profiler restores earlier references; an arbitrary tensor may be assigned too."""
    cache = TargetCache()
    keys = fill(cache, 1, [6])[0]
    layer = cache.hf.layers[0]
    snapshot = (layer.keys, layer.values, cache.positions, cache.length)
    fill(cache, 1, [400])  # outgrows the buffer: a new one
    layer.keys, layer.values, cache.positions, cache.length = snapshot  # the old buffer's view
    for _ in range(20):  # as the profiler's repeats do: the old buffer is taken back each time
        more = fill(cache, 1, [3])[0]
        assert torch.equal(layer.keys, torch.cat((keys, more), dim=2))
        assert layer.keys.data_ptr() == snapshot[0].data_ptr()
        layer.keys, layer.values, cache.positions, cache.length = snapshot
    layer.keys, layer.values = keys.clone(), keys.clone() + 1  # not a view of any buffer
    cache.positions, cache.length = cache.positions[:, :6], 6
    select_cache(cache, torch.tensor([0, 1, 4]))
    assert torch.equal(layer.keys, keys[:, :, [0, 1, 4]])
