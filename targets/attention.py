"""The attention kernel a target serves with on a CPU: transformers' sdpa, reading grouped
key/value heads in place when a mask is given.

Verifying q > 1 tokens (a chain or a tree) passes a mask, and for a model with grouped-query
attention transformers' sdpa then copies every cached key and value once per query-head group
(`repeat_kv`) before the kernel runs: 2 x the whole cache x the group count, in every layer, on
every verification step, a cost that grows with the context and that a one-token plain step never
pays (without a mask it asks the kernel to read the groups in place, `enable_gqa`). On a GPU that
copy is what lets the fused kernels run; torch's CPU kernel reads grouped heads with a mask
directly, and gives the same numbers (experiments/latency.md has the curves before and after).
Every other call (no mask, no grouped heads, a position bias) goes to transformers' sdpa as is.
"""

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

CPU_SDPA = "draftnas_cpu_sdpa"


def cpu_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                       value: torch.Tensor, attention_mask: torch.Tensor | None,
                       dropout: float = 0.0, scaling: float | None = None,
                       **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query [B, n, T, d], key/value [B, n_kv, S, d],
    attention_mask [B, 1, T, S] (bool or additive) or None; returns [B, T, n, d]."""
    grouped = getattr(module, "num_key_value_groups", 1) > 1
    plain = kwargs.get("position_bias") is None and kwargs.get("softcap") is None
    if attention_mask is None or not grouped or not plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                         dropout_p=dropout, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(CPU_SDPA, cpu_sdpa_attention)
# transformers builds a model's masks by its attention name: this kernel takes sdpa's masks.
AttentionMaskInterface.register(CPU_SDPA, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def use_cpu_sdpa(model: PreTrainedModel) -> None:
    """Switch a CPU model served with sdpa to `cpu_sdpa_attention` (other kernels are kept)."""
    if model.device.type == "cpu" and model.config._attn_implementation == "sdpa":
        model.set_attn_implementation(CPU_SDPA)
