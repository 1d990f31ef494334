"""A draft that is right most of the time, so long accepted paths and cache selection get tested.

It is a real DraftModel (real caches, real tree building) whose logits get a large bonus on the
reference continuation's next token; at every fifth position it backs a wrong token instead, so
accepted paths end early there and the right token sits deeper among the siblings, if at all.
"""

import torch

from specdec.model import DraftModel, DraftOutput


class OracleDraft(DraftModel):
    """Full-vocabulary drafts only: the bonus is indexed by target id."""

    reference: list[int]  # prompt + the target's greedy continuation, set by the test

    def forward(self, token_ids, features, positions, cache=None, attention_mask=None,
                logits="all") -> DraftOutput:
        out = super().forward(token_ids, features, positions, cache, attention_mask, logits)
        if out.logits is None:
            return out
        # The slot at position p holds token p and predicts token p + 1.
        next_positions = positions[:, -out.logits.shape[1]:] + 1
        reference = torch.tensor(self.reference + [0], device=positions.device)
        backed = reference[next_positions.clamp(max=len(self.reference))]
        wrong = next_positions % 5 == 0
        backed = torch.where(wrong, (backed + 1) % self.config.target_vocab_size, backed)
        bonus = torch.zeros_like(out.logits).scatter_(-1, backed[..., None], 30.0)
        return DraftOutput(out.hidden, out.logits + bonus)
