"""The target's KV cache: transformers' DynamicCache plus what the adapter needs to continue it.

Every layer keeps full keys and values, sliding-window layers included: the window is applied by
the attention mask instead, so cropping to any length or keeping an arbitrary set of positions
(a prefix plus an accepted tree path) stays exact for every family.
"""

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache


@dataclass
class TargetCache:
    """KV of `length` tokens; `positions[b, i]` is the plain sequence position of slot i."""

    hf: DynamicCache = field(default_factory=DynamicCache)
    length: int = 0
    positions: torch.Tensor | None = None
    # Qwen2-VL / Qwen2.5-VL: mrope offset of text after the image, set by the prefill with images.
    rope_deltas: torch.Tensor | None = None

    def append(self, positions: torch.Tensor) -> None:
        """Record the positions of tokens whose KV the model has just appended."""
        self.positions = (
            positions if self.positions is None else torch.cat([self.positions, positions], dim=1)
        )
        self.length = self.positions.shape[1]


def crop_cache(cache: TargetCache, length: int) -> None:
    """Keep the first `length` cached positions (in place)."""
    if not 0 <= length <= cache.length:
        raise ValueError(f"crop length {length} is outside 0..{cache.length}")
    keep = torch.arange(length, device=_device(cache))
    select_cache(cache, keep)


def select_cache(cache: TargetCache, keep: torch.Tensor) -> None:
    """Keep only the cached slots `keep` (absolute indices, in that order), in place."""
    keep = keep.to(_device(cache)).long()
    if keep.ndim != 1 or (keep.numel() and (keep.min() < 0 or keep.max() >= cache.length)):
        raise ValueError(f"select indices must be a 1D tensor of slots in 0..{cache.length - 1}")
    for layer in cache.hf.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys = layer.keys.index_select(2, keep)
            layer.values = layer.values.index_select(2, keep)
    if cache.positions is not None:
        cache.positions = cache.positions.index_select(1, keep)
    cache.length = keep.numel()


def _device(cache: TargetCache) -> torch.device:
    return cache.positions.device if cache.positions is not None else torch.device("cpu")
