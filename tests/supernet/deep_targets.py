"""Tiny targets deep enough for entropy-ranked candidates (>= 4 layers)."""

from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from targets import Target
from targets.tiny import BOS, EOS, PAD

LAYERS = 5


@dataclass(frozen=True)
class Ranked:
    """A calibration stand-in: intermediate taps, lowest entropy first."""

    candidate_taps: tuple[int, ...]


def deep_tiny_llama(seed: int = 0, layers: int = LAYERS) -> Target:
    """targets.tiny's llama sizes (width 32, 4 heads, vocab 128) with `layers` decoder layers."""
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                         max_position_embeddings=256, bos_token_id=BOS, eos_token_id=EOS,
                         pad_token_id=PAD)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa",
                                             dtype=torch.float32)
    return Target(model, spec=f"tiny:llama-{layers}")


