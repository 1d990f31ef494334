"""Acceptance estimator: how many tokens per step a draft would give, without running the decoder.

The decoder at temperature 0 on a sequence the target generated greedily is deterministic: a step
whose root sits at slot r (see specdec.model for slots) accepts draft token i + 1 iff every earlier
one was accepted and the draft's i-th drafted token equals the target's token x_{r+i+2}. While
drafts match, the draft's inputs are the real tokens, so the draft's i-th token from root slot r is
what training-time-test unrolling (supernet.loss) computes at step i, slot r + i: step i feeds,
at slot p, the draft's own step-(i-1) output at slot p - 1 and sees real slots up to p - i.
So one unrolled forward per depth gives the drafted token of EVERY root at once; replaying the
decoder's schedule over them (root, accept a, emit a + 1 tokens, the bonus is the next root,
truncated at the end of the response) gives the tau the decoder would measure in chain mode.

tau counts the bonus token (specdec.stats: tokens emitted per target forward after prefill);
`acceptance_by_depth[d]` is the fraction of those steps accepting more than d draft tokens.

Every estimate is for one decoding shape (specdec.shape.DecodeShape). A chain of k replays at most
k drafts per step: its tau is exact (the decoder measures the same). A tree (EAGLE-2: depth,
top_k, total_tokens): the node on the target's path at depth d is drafted from the same inputs as
in a chain, so it is among the tree's children iff the target's token is in the draft's top_k
there; replaying the schedule with that rule ignores the frontier choice and the total_tokens
pruning of the dynamic tree, so a tree's tau is an upper estimate. `draftnas search` measures the
exact tau of its best drafts with the decoder in a final stage (nas.measured_shapes).

Target features of the validation sequences are computed once (`ValidationSet`) and reused for
every subnet of a search.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from specdec.shape import DecodeShape
from supernet.corpus import CorpusItem
from supernet.features import FeatureSource, TargetBatch, reads_image_features
from supernet.loss import keep_mask, shift_right, slot_image_embeds, unroll_mask


@dataclass
class ValidationSet:
    """Validation sequences (prompt + the target's greedy response) and their target features."""

    batch: TargetBatch
    prompt_lens: list[int]
    lengths: list[int]

    @classmethod
    def build(cls, target: Any, corpus: Sequence[CorpusItem], taps: Sequence[int],
              image_scores: bool, image_embeds: bool = False) -> "ValidationSet":
        """One target forward per sequence; `taps`: every layer any draft of the search injects;
        `image_scores`: whether some draft drops image positions (vision_keep_ratio < 1);
        `image_embeds`: whether some draft reads the image features (image_input 'features')."""
        source = FeatureSource(target, taps, image_scores and target.is_vlm,
                               image_embeds=image_embeds and target.is_vlm)
        batch = source.batch(list(enumerate(corpus)))
        return cls(batch, [item.prompt_len for item in corpus],
                   [len(item.input_ids) for item in corpus])

    @classmethod
    def for_space(cls, target: Any, corpus: Sequence[CorpusItem],
                  space: Any) -> "ValidationSet":
        """The features every draft of `space` (a ResolvedSpace) reads."""
        taps = sorted({tap for taps in space.injected_layers for tap in taps})
        return cls.build(target, corpus, taps, min(space.vision_keep_ratio) < 1.0,
                         reads_image_features(target, space))


@dataclass
class AcceptanceEstimate:
    tau: float  # the shape's: exact for a chain, an upper estimate for a tree; bonus included
    acceptance_by_depth: list[float]  # the shape's steps accepting > d draft tokens
    chain_tau: float  # a chain as deep as the shape (exact)
    tree_tau: float  # top_k acceptance along the target's path (= tau; a chain's: chain_tau)
    steps: int  # the shape's target forwards replayed
    exact: bool  # True for a chain: tau is what the decoder measures

    def to_dict(self) -> dict[str, Any]:
        return {"tau": self.tau, "acceptance_by_depth": self.acceptance_by_depth,
                "chain_tau": self.chain_tau, "tree_tau": self.tree_tau, "steps": self.steps,
                "exact": self.exact}


class AcceptanceEstimator:
    def __init__(self, validation: ValidationSet):
        self.validation = validation

    @torch.inference_mode()
    def estimate(self, draft: Any, shape: DecodeShape) -> AcceptanceEstimate:
        """`draft`: a DraftModel attached to the target, or a SuperDraft with an active arch;
        `shape`: how it decodes (its depth bounds the drafts per step)."""
        k = shape.depth
        ranks = self.target_ranks(draft, k)  # [k, B, slots]: rank of x_{p+2} at step i, slot p
        chain_steps, chain_tokens, _ = self.replay(self.accepted_from(ranks < 1), k)
        # The shape's own rule: the target's token among the top_k (a chain: top 1).
        steps, tokens, counts = self.replay(self.accepted_from(ranks < shape.top_k), k)
        tau = tokens / max(steps, 1)
        return AcceptanceEstimate(
            tau=tau, acceptance_by_depth=[count / max(steps, 1) for count in counts],
            chain_tau=chain_tokens / max(chain_steps, 1), tree_tau=tau, steps=steps,
            exact=shape.is_chain)

    def target_ranks(self, draft: Any, k: int) -> torch.Tensor:
        """For each unrolled step i and slot p, how many draft tokens score above the target's
        token x_{p+2} (0: the draft's greedy pick; a token outside a reduced vocabulary or past
        the sequence end gets the vocabulary size)."""
        batch = self.validation.batch
        slots = batch.input_ids.shape[1] - 1
        tokens = batch.input_ids[:, 1:]
        positions = torch.arange(1, slots + 1, device=tokens.device).expand_as(tokens)
        features = draft.fuse({tap: h[:, :slots] for tap, h in batch.hidden.items()})
        kept = keep_mask(batch, draft.config.vision_keep_ratio)[:, :slots]
        merged_embeds = slot_image_embeds(batch)
        wanted = torch.zeros_like(tokens)
        wanted[:, :-1] = batch.input_ids[:, 2:]
        exists = torch.zeros_like(batch.valid[:, 1:])
        exists[:, :-1] = batch.valid[:, 2:]
        to_draft = draft_index(draft)
        # A tokens-only draft reads no features: every unrolled step equals step 0.
        steps = k if features is not None else 1
        cache, previous, ranks = draft.new_cache(), None, []
        for step in range(steps):
            step_features = features if step == 0 else shift_right(previous)
            out = draft(tokens, step_features, positions, cache, unroll_mask(kept, step),
                        merged_embeds=merged_embeds)
            previous = out.hidden
            logits = out.logits.float()
            vocab = logits.shape[-1]
            index = to_draft(wanted)
            present = exists & (index >= 0)
            wanted_logit = logits.gather(-1, index.clamp(min=0)[..., None])[..., 0]
            rank = (logits > wanted_logit[..., None]).sum(-1)
            ranks.append(torch.where(present, rank, vocab))
        ranks += [ranks[0]] * (k - steps)
        return torch.stack(ranks)

    def accepted_from(self, hits: torch.Tensor) -> torch.Tensor:
        """[B, slots] draft tokens a step rooted at each slot accepts: hits[i, b, r + i] for
        i = 0 .. k-1 while all hold."""
        k, _, slots = hits.shape
        aligned = torch.zeros_like(hits)
        for i in range(k):
            aligned[i, :, : slots - i] = hits[i, :, i:]
        return aligned.long().cumprod(0).sum(0)

    def replay(self, accepted: torch.Tensor, k: int) -> tuple[int, int, list[int]]:
        """The decoder's steps over each response (at most k drafts accepted per step): (steps,
        tokens emitted, steps accepting > d)."""
        steps = tokens = 0
        depth_counts = [0] * k
        rows = accepted.tolist()
        for row, prompt_len, length in zip(rows, self.validation.prompt_lens,
                                           self.validation.lengths, strict=True):
            response = length - prompt_len
            emitted, root_slot = 1, prompt_len - 1  # prefill emits x_T; its slot is T - 1
            while emitted < response:
                a = row[root_slot]
                new = min(a + 1, response - emitted)
                steps, tokens, emitted = steps + 1, tokens + new, emitted + new
                for depth in range(a):
                    depth_counts[depth] += 1
                root_slot += a + 1
        return steps, tokens, depth_counts


def draft_index(draft: Any):
    """target id -> draft vocabulary index (-1 outside a reduced vocabulary)."""
    t2d = getattr(draft, "t2d", None)
    if t2d is None and getattr(draft, "active", None) is not None and draft.active.draft_vocab_size:
        _, _, t2d = draft.vocabulary(draft.active.draft_vocab_size)
    if t2d is None:
        return lambda ids: ids
    # t2d is a boolean mask over target ids; the draft's rows are its True ids in ascending order.
    index = torch.cumsum(t2d.long(), 0) - 1
    index = torch.where(t2d, index, -1)
    return lambda ids: index[ids]
