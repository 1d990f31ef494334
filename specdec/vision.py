"""Vision keep-ratio: which image positions the draft keeps in its context.

Image positions are scored by the attention they receive in the target's last layer
(`TargetOutput.image_scores`); the top `ratio` fraction (rounded up) is kept, text positions always.
Training and decoding call the same function, so a draft sees the same kind of context in both.

How the decoder applies the mask: the draft's slot for feature position j holds
(token j+1, target feature at j); a slot is dropped iff position j is a dropped image position, so
exactly the scored image features leave the draft's context. Slots keep their original positions.
"""

import torch


def select_kept_positions(image_mask: torch.Tensor, scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Keep mask [..., T]: True for text positions and the best-scored `ratio` of image positions.

    image_mask: BoolTensor [..., T]; scores: FloatTensor [..., T] (only image positions matter);
    ratio in (0, 1]. Ties keep the earlier position.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"vision keep ratio {ratio}: use a fraction in (0, 1]")
    if ratio == 1.0:
        return torch.ones_like(image_mask, dtype=torch.bool)
    masked = scores.float().masked_fill(~image_mask, float("-inf"))
    order = torch.sort(masked, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    positions = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    rank.scatter_(-1, order, positions)
    # The small epsilon keeps e.g. 0.1 * 30 = 3.0000000000000004 from rounding up to 4.
    n_keep = torch.ceil(image_mask.sum(-1, keepdim=True) * ratio - 1e-6).long()
    return ~image_mask | (rank < n_keep)
