"""The attention masks the adapter hands to transformers, built here for every call.

The adapter always passes ready 4D masks, so transformers never infers one from the cache: that
is what makes tree verification, sliding windows and cache select/crop agree for every family.
"""

import torch

from targets.errors import TargetError

# An additive mask entry at or below this value blocks the key (0 allows it; finfo.min or -inf
# are the usual blocked values).
BLOCKED_BELOW = -1.0


def allowed_keys(
    attention_mask: torch.Tensor | None, batch: int, new: int, past: int, device: torch.device
) -> torch.Tensor:
    """Bool [B, 1, T, past + T]: the user's additive mask, or causal over the new tokens."""
    if attention_mask is None:
        query = torch.arange(new, device=device)[:, None] + past
        key = torch.arange(past + new, device=device)[None, :]
        return (key <= query).expand(batch, 1, new, past + new)
    expected = (batch, 1, new, past + new)
    if tuple(attention_mask.shape) != expected:
        raise TargetError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, expected {expected} "
            "(batch, 1, new tokens, cached + new tokens)"
        )
    return attention_mask.to(device) > BLOCKED_BELOW


def image_blocks(image_types: torch.Tensor) -> torch.Tensor:
    """Bool [B, 1, T, T]: pairs of new tokens inside the same contiguous run of image tokens."""
    is_image = image_types == 1
    starts = is_image & ~torch.nn.functional.pad(is_image, (1, 0))[:, :-1]
    block = torch.where(is_image, starts.cumsum(dim=1), 0)
    same = (block[:, :, None] == block[:, None, :]) & is_image[:, :, None]
    return same[:, None]


def within_window(
    query_positions: torch.Tensor, key_positions: torch.Tensor, window: int
) -> torch.Tensor:
    """Bool [B, 1, T, K]: keys fewer than `window` positions behind the query (transformers' rule)."""
    distance = query_positions[:, None, :, None] - key_positions[:, None, None, :]
    return distance < window


def additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
    return torch.where(allowed, torch.zeros((), dtype=dtype, device=allowed.device), blocked)


def layer_masks(
    allowed: torch.Tensor,
    windows: list[int | None],
    layer_types: list[str] | None,
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """One additive mask, or one per layer type when layers differ in their sliding window."""

    def for_window(window: int | None) -> torch.Tensor:
        if window is None:
            return additive(allowed, dtype)
        return additive(allowed & within_window(query_positions, key_positions, window), dtype)

    if len(set(windows)) == 1:
        return for_window(windows[0])
    if layer_types is None:
        raise TargetError(
            "config: layers differ in sliding window but it has no layer_types; add them"
        )
    by_type = dict(zip(layer_types, windows))
    return {kind: for_window(window) for kind, window in by_type.items()}
