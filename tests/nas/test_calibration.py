"""Entropy ranking (pure), calibration files, and calibration of real tiny targets."""

import json
from dataclasses import dataclass

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from nas.calibration import Calibration, CalibrationError, calibrate, rank_intermediate_taps
from search_spaces import SpaceError, TargetDims, load_space
from targets.target import Target
from targets.tiny import tiny_inputs, tiny_target


def test_ranking_excludes_first_and_last_layer_and_maps_layer_to_tap():
    # Decoder layer 0 and layer 5 have the lowest entropies but are not intermediate.
    entropies = [0.1, 2.0, 0.9, 1.5, 0.9, 0.05]
    # Layer 2 and 4 tie at 0.9: the shallower first; then 3 (1.5) and 1 (2.0). Tap = layer + 1.
    assert rank_intermediate_taps(entropies) == (3, 5, 4, 2)


def test_ranking_of_a_shallow_target():
    assert rank_intermediate_taps([1.0, 0.5, 2.0]) == (2,)
    assert rank_intermediate_taps([1.0, 0.5]) == ()


def test_ranking_refuses_non_finite_entropy():
    with pytest.raises(CalibrationError, match="decoder layer 1 is nan"):
        rank_intermediate_taps([1.0, float("nan"), 2.0])


@dataclass
class Batch:
    input_ids: torch.Tensor


class EntropyOnlyTarget:
    """Stands in for `targets.Target` where only its entropies matter."""

    fingerprint = "a" * 64
    num_layers = 6

    def attention_entropy(self, batches):
        assert len(list(batches)) == 2
        return torch.tensor([0.1, 2.0, 0.9, 1.5, 0.8, 0.05])


def two_batches() -> list[Batch]:
    return [Batch(torch.zeros(1, 7, dtype=torch.long)), Batch(torch.zeros(1, 5, dtype=torch.long))]


def test_calibrate_ranks_and_counts_tokens():
    calibration = calibrate(EntropyOnlyTarget(), iter(two_batches()))
    assert calibration.candidate_taps == (5, 3, 4, 2)
    assert calibration.num_tokens == 12
    assert calibration.layer_entropies[0] == pytest.approx(0.1)


def test_calibration_feeds_space_resolution():
    calibration = calibrate(EntropyOnlyTarget(), two_batches())
    dims = TargetDims(hidden_size=64, num_layers=6, num_heads=4, vocab_size=100)
    assert load_space("dream").resolve(dims, calibration).largest().injected_layers == (5, 6)


def test_save_load_round_trip_and_wrong_target(tmp_path):
    calibration = calibrate(EntropyOnlyTarget(), two_batches())
    path = calibration.save(tmp_path)
    assert path.name == "calibration.json"
    assert Calibration.load(tmp_path, fingerprint="a" * 64) == calibration
    with pytest.raises(CalibrationError, match="not on this target bbbbbbbbbbbb") as error:
        Calibration.load(path, fingerprint="b" * 64)
    assert "\n" not in str(error.value)


def test_load_refuses_tampered_or_missing_files(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist; run calibration"):
        Calibration.load(tmp_path / "calibration.json")
    path = calibrate(EntropyOnlyTarget(), two_batches()).save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "candidate_taps": [2, 3, 4, 5]}))
    with pytest.raises(CalibrationError, match="do not follow its layer_entropies"):
        Calibration.load(path)
    path.write_text(json.dumps({**data, "format": 99}))
    with pytest.raises(CalibrationError, match="format 99"):
        Calibration.load(path)


def test_calibrate_refuses_no_batches_and_wrong_shape():
    with pytest.raises(CalibrationError, match="no batches"):
        calibrate(EntropyOnlyTarget(), [])
    target = EntropyOnlyTarget()
    target.num_layers = 5
    with pytest.raises(CalibrationError, match=r"shape \(6,\), expected \(5,\)"):
        calibrate(target, two_batches())


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
