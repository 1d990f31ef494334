"""Drafts that are right often, so long accepted paths and cache selection get tested.

Both are real DraftModels (real caches, real tree building) with changed logits:
- OracleDraft boosts the reference continuation's next token; at every `wrong_every`-th position
  (default 5) it backs a wrong token instead, so paths end early there and the right token sits
  among the siblings. wrong_every = 1 gives a draft that never matches.
- MimicDraft returns the target's own logits, computed by running the target on the draft's slots
  in a cache of its own that follows the draft cache's crops: the best draft one can have.
"""

import torch

from specdec.model import DraftCache, DraftModel, DraftOutput
from targets import crop_cache


class OracleDraft(DraftModel):
    """Full-vocabulary drafts only: the bonus is indexed by target id."""

    reference: list[int]  # prompt + the target's greedy continuation, set by the test
    wrong_every: int = 5

    def forward(self, token_ids, features, positions, cache=None, attention_mask=None,
                logits="all", merged_embeds=None) -> DraftOutput:
        out = super().forward(token_ids, features, positions, cache, attention_mask, logits,
                              merged_embeds)
        if out.logits is None:
            return out
        # The slot at position p holds token p and predicts token p + 1.
        next_positions = positions[:, -out.logits.shape[1]:] + 1
        reference = torch.tensor(self.reference + [0], device=positions.device)
        backed = reference[next_positions.clamp(max=len(self.reference))]
        wrong = next_positions % self.wrong_every == 0
        backed = torch.where(wrong, (backed + 1) % self.config.target_vocab_size, backed)
        bonus = torch.zeros_like(out.logits).scatter_(-1, backed[..., None], 30.0)
        return DraftOutput(out.hidden, out.logits + bonus)


class MimicCache(DraftCache):
    """The draft cache plus a target cache holding token 0 and then one entry per slot."""

    def __init__(self, draft: "MimicDraft"):
        super().__init__(draft.config.num_layers, cross=draft.config.interaction == "cross_attention")
        self.target_cache = draft.target.new_cache()
        first = torch.tensor([[draft.first_token]], device=draft.target.device)
        draft.target.forward(first, positions=torch.zeros_like(first), cache=self.target_cache,
                             logits="none")

    def crop(self, length: int) -> None:
        super().crop(length)
        crop_cache(self.target_cache, length + 1)


class MimicDraft(DraftModel):
    """Text-only targets; `first_token` is the prompt's token 0, which no slot holds."""

    first_token: int

    def new_cache(self) -> MimicCache:
        return MimicCache(self)

    def forward(self, token_ids, features, positions, cache=None, attention_mask=None,
                logits="all", merged_embeds=None) -> DraftOutput:
        own = super().forward(token_ids, features, positions, cache, attention_mask, "none",
                              merged_embeds)
        mask = None
        if attention_mask is not None:
            visible = torch.cat((torch.ones_like(attention_mask[..., :1]), attention_mask), -1)
            blocked = torch.finfo(self.target.dtype).min
            mask = torch.zeros(visible.shape, dtype=self.target.dtype).masked_fill(~visible, blocked)
            mask = mask[:, None]
        out = self.target.forward(token_ids, positions=positions, attention_mask=mask,
                                  cache=cache.target_cache, logits=logits)
        return DraftOutput(own.hidden, out.logits)
