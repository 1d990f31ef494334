"""The training loss of one subnet on one batch: KL to the target + feature regression, unrolled.

Alignment follows specdec.model: slot j = (token x_{j+1}, feature at j), position j + 1; its
output predicts x_{j+2}, whose target distribution is lm_head(last_hidden[j + 1]).

Training-time test (EAGLE-3): step 0 feeds the target's fused features. Step k feeds, at slot p,
the draft's own step-(k-1) output of slot p - 1, exactly what drafting k tokens beyond a verified
prefix ending at slot p - k does; slot p then sees the real slots up to p - k and its own chain
(one slot of each step 1..k), which the mask below encodes over the cache of all steps' keys.
Step k weighs `step_decay ** k`. Only slots whose chain lies in the target's response count.
A tokens-only draft (interaction none) reads no features: all its steps would be the same, so
it runs one.

Per step: kl * KL(target || draft) over the draft vocabulary (the target's distribution
restricted and renormalised for a reduced one; for a draft of the target's full vocabulary, over
`SuperDraft.kl_vocabulary` when set: `kl_vocabulary: corpus`, below) + final_feature * SmoothL1(norm(h), the target's
final hidden state) + intermediate_feature * SmoothL1(first layer's output, the hidden state of
the lowest-entropy candidate layer) for drafts of 2+ layers (DREAM's 0.2 / 0.2 / 1.0).
Losses average over a sequence's counted slots, then over sequences, so that equal shards on
several processes average to the loss of the whole batch.

Logits, the draft's and the target's, are computed for the slots that predict a response token
only (rows [N, V]), and the target's side of the KL once per batch and draft vocabulary (shared
by every unrolled step and, through `teachers`, every subnet of a sandwich step): over a 49k
vocabulary the heads, the KL and their backward were three quarters of a training step, and a
prompt's slots never count.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specdec.vision import select_kept_positions
from supernet.features import TargetBatch
from supernet.superdraft import SuperDraft

KL_VOCABULARIES = ("corpus", "full")


@dataclass
class LossConfig:
    unroll_steps: int = 7
    step_decay: float = 0.8
    kl: float = 1.0
    final_feature: float = 0.2
    intermediate_feature: float = 0.2
    # The vocabulary a draft of the target's full vocabulary learns its KL over. corpus: the
    # tokens the training responses use (EAGLE-3 trains its head on a reduced vocabulary for the
    # same reason: on SmolLM2's 49k tokens the head was most of a step, and the responses use a
    # few thousand); the draft still proposes from the full head. full: every token.
    kl_vocabulary: str = "corpus"


@dataclass
class SubnetLoss:
    loss: torch.Tensor  # scalar, in the graph
    metrics: dict[str, float]
    step_logits: list[torch.Tensor] | None  # detached [N, V] per step (full vocab), if asked


def unrolled_loss(draft: SuperDraft, batch: TargetBatch, cfg: LossConfig,
                  intermediate_tap: int | None = None,
                  teacher_logits: list[torch.Tensor] | None = None,
                  keep_logits: bool = False,
                  teachers: dict[int | None, "Teacher"] | None = None) -> SubnetLoss:
    """Loss of the active subnet of `draft`. teacher_logits: per step, full-vocabulary logits of
    the predicting slots ([N, V], another subnet's `step_logits` on this batch) that replace the
    target's in the KL (in-place distillation from the largest subnet). teachers: the target's
    Teacher per draft vocabulary size on this batch, filled on first use, for the other subnets
    trained on the same batch."""
    arch, target = draft.active, draft.target
    slots = batch.input_ids.shape[1] - 1
    tokens = batch.input_ids[:, 1:]
    positions = torch.arange(1, slots + 1, device=tokens.device).expand_as(tokens)
    features = draft.fuse({tap: h[:, :slots] for tap, h in batch.hidden.items()})
    merged_embeds = slot_image_embeds(batch)
    # Slot j predicts x_{j+2}: it counts when that token is part of the response.
    predicts = torch.zeros_like(batch.valid[:, 1:])
    predicts[:, :-1] = batch.response[:, 2:]
    kept = keep_mask(batch, arch.vision_keep_ratio)[:, :slots]
    vocab = draft.kl_vocabulary  # the full vocabulary's subnets: None (all) or restricted
    if arch.draft_vocab_size:
        _, d2t, _ = draft.vocabulary(arch.draft_vocab_size)
        vocab = torch.arange(arch.draft_vocab_size, device=d2t.device) + d2t
    teachers = {} if teachers is None else teachers
    if arch.draft_vocab_size not in teachers:
        with torch.no_grad():
            teachers[arch.draft_vocab_size] = Teacher.of(
                target.lm_head(batch.last_hidden[:, 1:][predicts], vocab))
    target_side = teachers[arch.draft_vocab_size]
    layers = draft.skeleton(arch).layers
    intermediate: list[torch.Tensor] = []
    hook = None
    use_intermediate = (intermediate_tap is not None and arch.num_layers > 1
                        and cfg.intermediate_feature > 0)
    if use_intermediate:
        hook = layers[0].register_forward_hook(lambda _m, _i, out: intermediate.append(out))
    steps = cfg.unroll_steps if features is not None else 1
    cache, total, weights = draft.new_cache(), 0.0, 0.0
    metrics: dict[str, float] = {}
    kept_logits: list[torch.Tensor] = []
    previous = None
    try:
        for k in range(steps):
            step_features = features if k == 0 else shift_right(previous)
            out = draft(tokens, step_features, positions, cache, unroll_mask(kept, k),
                        logits=predicts, merged_embeds=merged_embeds)
            previous = out.hidden
            counted = predicts.clone()
            counted[:, k:] &= predicts[:, : slots - k]
            counted[:, :k] = False
            teacher = (target_side if teacher_logits is None
                       else Teacher.of(teacher_logits[k], vocab))
            kl = on_slots(teacher.kl(out.logits.float()), predicts)
            final = F.smooth_l1_loss(draft.final_norm(out.hidden), batch.last_hidden[:, 1:],
                                     reduction="none").mean(-1)
            step = cfg.kl * per_sequence_mean(kl, counted)
            step = step + cfg.final_feature * per_sequence_mean(final, counted)
            if use_intermediate:
                aligned = batch.hidden[intermediate_tap][:, 1:]
                regress = F.smooth_l1_loss(intermediate.pop(), aligned, reduction="none").mean(-1)
                step = step + cfg.intermediate_feature * per_sequence_mean(regress, counted)
            weight = cfg.step_decay ** k
            total, weights = total + weight * step, weights + weight
            agree = on_slots((out.logits.argmax(-1) == teacher.top1).float(), predicts)
            metrics[f"kl_{k}"] = float(per_sequence_mean(kl.detach(), counted))
            metrics[f"top1_{k}"] = float(per_sequence_mean(agree, counted))
            if keep_logits:
                kept_logits.append(out.logits.detach())
    finally:
        if hook is not None:
            hook.remove()
    loss = total / weights
    metrics["loss"] = float(loss.detach())
    return SubnetLoss(loss, metrics, kept_logits if keep_logits else None)


def slot_image_embeds(batch: TargetBatch) -> torch.Tensor | None:
    """[B, L - 1, H]: the merged image embeddings of the slots' tokens (slot j holds x_{j+1}), for
    drafts with image_input 'features' (every unrolled step reads the same tokens)."""
    return None if batch.image_embeds is None else batch.image_embeds[:, 1:]


def keep_mask(batch: TargetBatch, ratio: float) -> torch.Tensor:
    """[B, L] slots kept under `ratio`: the decoder's selection (specdec.vision)."""
    if ratio >= 1.0 or batch.image_scores is None:
        return torch.ones_like(batch.valid)
    return select_kept_positions(batch.image_mask, batch.image_scores, ratio)


def unroll_mask(kept: torch.Tensor, step: int) -> torch.Tensor:
    """bool [B, T, (step + 1) T] over the keys of steps 0..step (see the module docstring)."""
    batch, slots = kept.shape
    device = kept.device
    p = torch.arange(slots, device=device)[:, None]
    q = torch.arange(slots, device=device)[None, :]
    real = (q <= p - step) & kept[:, None, :]
    if step == 0:
        real = real | (q == p)  # a dropped slot still sees itself (no empty softmax row)
    chain = [(q == p - step + i).expand(batch, slots, slots) for i in range(1, step + 1)]
    return torch.cat([real, *chain], dim=-1)


def shift_right(hidden: torch.Tensor) -> torch.Tensor:
    """Slot p gets the output of slot p - 1 (slot 0 gets zeros; it never counts at step >= 1)."""
    return torch.cat((torch.zeros_like(hidden[:, :1]), hidden[:, :-1]), dim=1)


@dataclass
class Teacher:
    """The teacher's side of KL(teacher || draft) over N rows, computed once and reused by every
    unrolled step: probabilities, sum p log p, and its top-1 token."""

    probs: torch.Tensor  # [N, V]
    p_log_p: torch.Tensor  # [N]
    top1: torch.Tensor  # [N]

    @classmethod
    def of(cls, logits: torch.Tensor, vocab: torch.Tensor | None = None) -> "Teacher":
        """From logits over the draft's vocabulary (or full-vocabulary ones, restricted and
        renormalised to `vocab` if given)."""
        logits = (logits if vocab is None else logits[..., vocab]).float()
        log_probs = torch.log_softmax(logits, -1)
        probs = log_probs.exp()
        return cls(probs, (probs * log_probs).sum(-1), logits.argmax(-1))

    def kl(self, student_logits: torch.Tensor) -> torch.Tensor:
        """KL(teacher || student) per row, [N]."""
        return self.p_log_p - (self.probs * torch.log_softmax(student_logits, -1)).sum(-1)


def on_slots(values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """[B, T] with `values` [N] at the N true positions of bool `slots`, zeros elsewhere."""
    return values.new_zeros(slots.shape).masked_scatter(slots, values)


def per_sequence_mean(values: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Mean over each sequence's counted slots, then over sequences (empty ones count 0)."""
    weights = counted.to(values.dtype)
    return ((values * weights).sum(1) / weights.sum(1).clamp(min=1)).mean()
