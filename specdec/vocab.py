"""The reduced draft vocabulary (EAGLE-3 convention).

A draft with `draft_vocab_size` = n predicts only n target tokens, the most frequent ones. Its ids
are the ranks of those tokens in ascending target-id order, and two maps translate:
  d2t[draft_id] = target_id - draft_id   (offsets, so target_id = draft_id + d2t[draft_id])
  t2d[target_id] = True where the target token is in the draft vocabulary.
"""

from collections.abc import Sequence

import torch

from specdec.errors import DraftError


def vocab_maps(token_ids: Sequence[int], target_vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(d2t LongTensor[n], t2d BoolTensor[target_vocab_size]) for the draft vocabulary `token_ids`."""
    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    if ids.numel() == 0 or ids.unique().numel() != ids.numel():
        raise DraftError("draft vocabulary: give distinct target token ids (non-empty)")
    if ids.min() < 0 or ids.max() >= target_vocab_size:
        raise DraftError(f"draft vocabulary: token ids must lie in 0..{target_vocab_size - 1}")
    ids = ids.sort().values
    t2d = torch.zeros(target_vocab_size, dtype=torch.bool)
    t2d[ids] = True
    return ids - torch.arange(ids.numel()), t2d


def most_frequent_tokens(token_ids: torch.Tensor, count: int, target_vocab_size: int) -> list[int]:
    """The `count` most frequent ids in `token_ids` (any shape), ties to the smaller id."""
    frequency = torch.bincount(token_ids.flatten().long(), minlength=target_vocab_size)
    # A stable sort on descending counts keeps ties in id order, so the choice is deterministic.
    order = torch.sort(frequency, descending=True, stable=True).indices
    return order[:count].tolist()
