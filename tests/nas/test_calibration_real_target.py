"""Calibration of real (tiny, random) targets through the Target adapter's eager attention."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from nas.calibration import calibrate
from search_spaces import SpaceError, TargetDims, load_space
from targets.target import Target
from targets.tiny import tiny_inputs, tiny_target


def five_layer_llama() -> Target:
    # The tiny targets have 2 layers, hence no intermediate one: this one has 3 candidates.
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=5,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return Target(LlamaForCausalLM(config).to(torch.float32), spec="test:llama5")


def reference_entropies(target: Target, input_ids: torch.Tensor) -> torch.Tensor:
    """Per-layer mean attention entropy straight from transformers' eager attentions."""
    target.model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = target.model(input_ids, output_attentions=True).attentions
    target.model.set_attn_implementation("sdpa")
    return torch.stack([-(a * a.clamp_min(1e-12).log()).sum(-1).mean() for a in attentions])


def test_calibration_ranks_decoder_layers_as_taps():
    target = five_layer_llama()
    batches = [tiny_inputs(target, n_text=12, seed=seed) for seed in range(2)]
    calibration = calibrate(target, batches)
    reference = (
        reference_entropies(target, batches[0].input_ids)
        + reference_entropies(target, batches[1].input_ids)
    ) / 2
    assert torch.allclose(torch.tensor(calibration.layer_entropies), reference, atol=1e-5)
    # Decoder layers 1..3 are intermediate; layer j is tap j + 1.
    by_entropy = sorted(range(1, 4), key=lambda layer: reference[layer].item())
    assert calibration.candidate_taps == tuple(layer + 1 for layer in by_entropy)
    assert calibration.num_tokens == 24
    assert calibration.target_fingerprint == target.fingerprint
    dream = load_space("dream").resolve(TargetDims.of(target), calibration).largest()
    assert dream.injected_layers == (calibration.candidate_taps[0], 5)


def test_calibration_of_a_two_layer_vlm_has_no_intermediate_candidate():
    target = tiny_target("llava_clip")
    calibration = calibrate(target, [tiny_inputs(target, n_text=6)])
    assert len(calibration.layer_entropies) == 2
    assert all(h > 0 for h in calibration.layer_entropies)
    assert calibration.candidate_taps == ()
    dims = TargetDims.of(target)
    with pytest.raises(SpaceError, match="2-layer target has no intermediate layer"):
        load_space("dream").resolve(dims, calibration)
    assert load_space("eagle").resolve(dims, calibration).largest().injected_layers == (2,)
