"""Qwen2-VL / Qwen2.5-VL multimodal rotary positions (mrope).

The prefill that carries the image gets the model's own rope index (time, height, width per image
token); it also fixes `rope_deltas`, the offset of every later text position. Afterwards a token at
plain position p rotates by p + rope_deltas on all three axes, exactly as `generate` does.
"""

import torch
from transformers import PreTrainedModel

from targets.cache import TargetCache
from targets.errors import TargetError


def mrope_positions(
    model: PreTrainedModel,
    input_ids: torch.Tensor | None,
    positions: torch.Tensor,
    cache: TargetCache,
    model_kwargs: dict,
) -> torch.Tensor:
    """LongTensor [3, B, T] of rotary positions for these new tokens."""
    has_images = model_kwargs.get("image_grid_thw") is not None
    if has_images:
        if cache.length:
            raise TargetError(
                "model_kwargs: Qwen image inputs must come with the first forward of an empty cache; "
                "prefill the image prompt first"
            )
        if input_ids is None or model_kwargs.get("mm_token_type_ids") is None:
            raise TargetError(
                "model_kwargs: Qwen image prefill needs input_ids and mm_token_type_ids; "
                "pass the processor's output as is"
            )
        rope_positions, deltas = model.model.get_rope_index(
            input_ids,
            mm_token_type_ids=model_kwargs["mm_token_type_ids"],
            image_grid_thw=model_kwargs["image_grid_thw"],
        )
        cache.rope_deltas = deltas
        return rope_positions
    deltas = cache.rope_deltas if cache.rope_deltas is not None else 0
    shifted = positions + deltas
    return shifted[None].expand(3, *positions.shape)
