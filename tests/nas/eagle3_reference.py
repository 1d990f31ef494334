"""EAGLE-3's draft forward as vLLM computes it (model_executor/models/llama_eagle3.py), from an
exported directory alone: config.json, model.safetensors and the target's embeddings. Written from
the format, not from specdec.model, so that it can disagree with our DraftModel."""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def eagle3_forward(directory: Path, embeddings: torch.Tensor, aux: dict[int, torch.Tensor],
                   positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """embeddings [B, T, D] of the slot tokens; aux {layer id: [B, T, H]} holding at least the
    config's aux layer ids; positions [B, T]. Returns (logits over the target vocabulary, -inf
    outside the draft vocabulary; the pre-norm hidden state vLLM feeds back)."""
    config = json.loads((directory / "config.json").read_text())
    w = load_file(directory / "model.safetensors")
    eps, heads, head_dim = config["rms_norm_eps"], config["num_attention_heads"], config["head_dim"]

    def rms(x: torch.Tensor, name: str) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w[name]

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ w[name].T

    ids = config["eagle_config"]["eagle_aux_hidden_state_layer_ids"]
    g = linear(torch.cat([aux[layer] for layer in ids], dim=-1), "fc.weight")
    x = torch.cat((rms(embeddings, "midlayer.input_layernorm.weight"),
                   rms(g, "midlayer.hidden_norm.weight")), dim=-1)
    batch, length = x.shape[:2]

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, length, heads, head_dim).transpose(1, 2)

    q, k, v = (split(linear(x, f"midlayer.self_attn.{p}_proj.weight")) for p in "qkv")
    inv_freq = 1.0 / config["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = positions[..., None].float() * inv_freq
    angles = torch.cat((angles, angles), dim=-1)[:, None]  # [B, 1, T, head_dim]
    cos, sin = angles.cos(), angles.sin()

    def rotate_half(t: torch.Tensor) -> torch.Tensor:
        return torch.cat((-t[..., head_dim // 2:], t[..., : head_dim // 2]), dim=-1)

    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    scores = q @ k.transpose(-1, -2) / head_dim ** 0.5
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    attended = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
    hidden = g + linear(attended.transpose(1, 2).reshape(batch, length, -1),
                        "midlayer.self_attn.o_proj.weight")
    normed = rms(hidden, "midlayer.post_attention_layernorm.weight")
    hidden = hidden + linear(F.silu(linear(normed, "midlayer.mlp.gate_proj.weight"))
                             * linear(normed, "midlayer.mlp.up_proj.weight"),
                             "midlayer.mlp.down_proj.weight")
    draft_logits = linear(rms(hidden, "norm.weight"), "lm_head.weight")
    target_ids = torch.arange(config["draft_vocab_size"]) + w["d2t"]
    logits = draft_logits.new_full((batch, length, config["vocab_size"]), float("-inf"))
    logits[..., target_ids] = draft_logits
    return logits, hidden
