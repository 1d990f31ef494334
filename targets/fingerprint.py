"""A target's identity: sha256 over its architecture config and its weights.

Drafts record it, so a draft paired with the wrong target fails with a clear error. Weights are
hashed as float32 so the same checkpoint loaded in bf16 or fp32 gives the same fingerprint when it
was stored in bf16 (the usual case); run-time settings (dtype, attention kernel, paths) are left out.
"""

import hashlib
import json

import torch
from transformers import PreTrainedModel

_RUNTIME_KEYS = ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures")


def _architecture(config: dict) -> dict:
    # Keys become strings: a config read back from JSON has string keys where a fresh one had ints.
    return {
        str(key): _architecture(value) if isinstance(value, dict) else value
        for key, value in config.items()
        if key not in _RUNTIME_KEYS and not str(key).startswith("_attn_implementation")
    }


def model_fingerprint(model: PreTrainedModel) -> str:
    digest = hashlib.sha256()
    config = _architecture(model.config.to_dict())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
