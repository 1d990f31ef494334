"""The target's KV cache: transformers' Cache API over buffers that grow in place, plus what the
adapter needs to continue it.

Every layer keeps full keys and values, sliding-window layers included: the window is applied by
the attention mask instead, so cropping to any length or keeping an arbitrary set of positions
(a prefix plus an accepted tree path) stays exact for every family.

transformers' DynamicCache concatenates on every forward, and selecting a kept path copied every
layer's whole cache once more: two copies of the whole KV per decoding step (about a tenth of a
SmolLM2 step on a CPU). Here a layer's `keys` / `values` are a prefix view of a buffer that grows
by doubling: a forward writes only its new entries, a crop shortens the view, and keeping
prefix + path moves only the path's entries. Whoever assigns `keys` / `values` directly stays
correct: the profiler restores views it kept (their buffer is taken back as it is), and any
other tensor is copied into a fresh buffer on the next write.
"""

from dataclasses import dataclass, field

import torch
from transformers.cache_utils import Cache, DynamicLayer

# Slots a buffer has beyond what it first holds (a prompt): room for the steps that follow, and for
# the profiler's verifications at a fixed context, without growing.
HEADROOM = 256


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose keys/values [B, n, L, d] are prefix views of doubling buffers."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        self._reserve(length + key_states.shape[-2], key_states, value_states)
        end = length + key_states.shape[-2]
        self._key_buffer[..., length:end, :] = key_states
        self._value_buffer[..., length:end, :] = value_states
        self.keys = self._key_buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]
        return self.keys, self.values

    def keep(self, keep: torch.Tensor, prefix: int) -> None:
        """Keep slots `keep` (absolute, in order) whose first `prefix` are 0 .. prefix - 1."""
        if not self.is_initialized or self.get_seq_length() == 0:
            return
        self._reserve(self.get_seq_length(), self.keys, self.values)
        tail = keep[prefix:]
        keys, values = self.keys.index_select(-2, tail), self.values.index_select(-2, tail)
        end = prefix + tail.numel()
        self._key_buffer[..., prefix:end, :] = keys
        self._value_buffer[..., prefix:end, :] = values
        self.keys = self._key_buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]

    def _reserve(self, needed: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Make the buffers hold `needed` slots with the current keys/values as their prefix
        (`keys`, `values`: new entries, the templates of a first buffer)."""
        self._key_buffer = _buffer_of(self.keys, self._key_buffer)
        self._value_buffer = _buffer_of(self.values, self._value_buffer)
        buffers = (self._key_buffer, self._value_buffer)
        if all(b is not None and needed <= b.shape[-2] for b in buffers):
            return
        length = self.get_seq_length()
        grown = max((b.shape[-2] for b in buffers if b is not None), default=0)
        capacity = max(needed + HEADROOM, 2 * grown)
        key_buffer = keys.new_empty(*keys.shape[:-2], capacity, keys.shape[-1])
        value_buffer = values.new_empty(*values.shape[:-2], capacity, values.shape[-1])
        if length:
            key_buffer[..., :length, :] = self.keys
            value_buffer[..., :length, :] = self.values
        self._key_buffer, self._value_buffer = key_buffer, value_buffer
        self.keys, self.values = key_buffer[..., :length, :], value_buffer[..., :length, :]


def _buffer_of(view: torch.Tensor, current: torch.Tensor | None) -> torch.Tensor | None:
    """The buffer `view` is a prefix of: the current one, or the one it was cut from (a view kept
    from before the cache grew, restored from outside), else None."""
    for buffer in (current, view._base):
        if buffer is not None and _is_prefix_view(view, buffer):
            return buffer
    return None


def _is_prefix_view(view: torch.Tensor, buffer: torch.Tensor) -> bool:
    return (view.dim() == buffer.dim() and view.data_ptr() == buffer.data_ptr()
            and view.stride() == buffer.stride() and view.shape[:-2] == buffer.shape[:-2]
            and view.shape[-1] == buffer.shape[-1] and view.shape[-2] <= buffer.shape[-2])


def new_hf_cache() -> Cache:
    return Cache(layer_class_to_replicate=GrowingLayer)


@dataclass
class TargetCache:
    """KV of `length` tokens; `positions[b, i]` is the plain sequence position of slot i."""

    hf: Cache = field(default_factory=new_hf_cache)
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
    prefix = _unmoved_prefix(keep)
    for layer in cache.hf.layers:
        if isinstance(layer, GrowingLayer):
            layer.keep(keep, prefix)
        elif getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys = layer.keys.index_select(2, keep)
            layer.values = layer.values.index_select(2, keep)
    if cache.positions is not None:
        cache.positions = cache.positions.index_select(1, keep)
    cache.length = keep.numel()


def _unmoved_prefix(keep: torch.Tensor) -> int:
    """How many leading entries of `keep` are 0, 1, 2, ...: slots that stay where they are."""
    moved = (keep != torch.arange(keep.numel(), device=keep.device)).nonzero()
    return int(moved[0, 0]) if moved.numel() else keep.numel()


def _device(cache: TargetCache) -> torch.device:
    return cache.positions.device if cache.positions is not None else torch.device("cpu")
