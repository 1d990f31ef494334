"""Attention read-outs that need eager attention: per-layer entropy and image-token scores.

sdpa returns no attention weights, so these switch the model to eager for one call and back.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import PreTrainedModel

# Keeps log(0) finite for fully masked keys; their weight is 0, so they add nothing.
_TINY = 1e-12


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Run the body with eager attention everywhere in `model`, then restore the previous kernel."""
    previous = model.config._attn_implementation
    if previous == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def attention_entropy_of(attentions: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
    """Per-layer sum over heads and query tokens of -sum_j A_ij log A_ij, and the count summed."""
    sums = []
    for weights in attentions:
        weights = weights.float()
        row_entropy = -(weights * weights.clamp_min(_TINY).log()).sum(dim=-1)
        sums.append(row_entropy.sum())
    count = attentions[0].shape[0] * attentions[0].shape[1] * attentions[0].shape[2]
    return torch.stack(sums), count


def image_attention_scores(
    last_layer_attention: torch.Tensor, image_mask: torch.Tensor | None, new_tokens: int
) -> torch.Tensor:
    """[B, T]: attention each new position receives in the last layer.

    Mean over heads and over the text queries that follow the last image token of this call (the
    queries that read the image); all queries when the call has no image or no text after it.
    """
    per_query = last_layer_attention.float().mean(dim=1)  # [B, T, K]
    batch, queries, _ = per_query.shape
    chosen = torch.ones(batch, queries, dtype=torch.bool, device=per_query.device)
    if image_mask is not None and image_mask.any():
        index = torch.arange(queries, device=per_query.device)
        last_image = torch.where(image_mask, index, -1).max(dim=1, keepdim=True).values
        after_image = (index[None] > last_image) & ~image_mask
        chosen = torch.where(after_image.any(dim=1, keepdim=True), after_image, chosen)
    weights = chosen.float()[:, :, None]
    received = (per_query * weights).sum(dim=1) / weights.sum(dim=1)
    return received[:, -new_tokens:]
