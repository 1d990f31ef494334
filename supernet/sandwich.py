"""The sandwich rule (BigNAS, AttentiveNAS): each step trains the largest subnet, the smallest and
n random ones on the same batch, accumulating their gradients for one optimizer step; here the
largest of every interaction, as each interaction has weights of its own.

With in-place distillation the largest learns from the target and every other subnet's KL term
uses the largest's own (detached) distributions instead, which are easier for a small subnet to
match than the target's. Subnets are drawn from a generator seeded by (seed, step), so every
process of a distributed run and a resumed run draw the same ones.
"""

import random
from dataclasses import dataclass, replace

from search_spaces import DraftArch, ResolvedSpace
from supernet.features import TargetBatch
from supernet.loss import LossConfig, unrolled_loss
from supernet.superdraft import SuperDraft


@dataclass
class SandwichConfig:
    random_subnets: int = 2
    inplace_distill: bool = False


def sandwich_archs(space: ResolvedSpace, random_subnets: int, seed: int, step: int
                   ) -> list[DraftArch]:
    """The largest, the largest of each other interaction, the smallest, then `random_subnets`
    draws; a repeat is trained once (a one-point space trains its single draft once per step).

    Each interaction has its own layers (supernet.superdraft), so each needs its own sandwich:
    - the largest of every interaction trains all of that interaction's slices every step (with
      only the overall largest, a cross-attention draft, concat subnets reached 0.80-0.83 of the
      same drafts trained alone; with every interaction's, 0.91-0.96);
    - the draws are stratified by interaction: they cycle through every interaction of the
      space. Reached only as the largest or the smallest, an interaction trains a single shape
      and leaves its other subnets untrained (measured: 1-layer cross-attention subnets at 0.79
      of alone); uniform draws left add and concat with a quarter of the updates."""
    rng = random.Random(f"{seed}-{step}")
    kinds = space.interaction
    largest = space.largest()
    drawn = [largest, *(with_interaction(space, largest, kind, rng) for kind in kinds),
             space.smallest()]
    for i in range(random_subnets):
        arch = space.sample(rng)
        if len(kinds) > 1:
            arch = with_interaction(space, arch, kinds[(step * random_subnets + i) % len(kinds)],
                                    rng)
        drawn.append(arch)
    return list(dict.fromkeys(drawn))


def with_interaction(space: ResolvedSpace, arch: DraftArch, interaction: str,
                     rng: random.Random) -> DraftArch:
    """`arch` with another interaction; a tokens-only arch gets injected layers drawn anew."""
    taps = arch.injected_layers or rng.choice(space.injected_layers)
    return replace(arch, interaction=interaction,
                   injected_layers=() if interaction == "none" else taps)


def sandwich_backward(superdraft: SuperDraft, batch: TargetBatch, archs: list[DraftArch],
                      loss_cfg: LossConfig, inplace_distill: bool,
                      intermediate_tap: int | None) -> dict[str, float]:
    """Backward every subnet's loss / len(archs) (gradients accumulate); returns metrics: the mean
    loss, and the largest's and smallest's loss and step-0 top-1 agreement with the target."""
    teacher, teachers = None, {}
    metrics: dict[str, float] = {"loss": 0.0}
    smallest = superdraft.space.smallest()
    reported = {"largest": 0, "smallest": archs.index(smallest) if smallest in archs else 0}
    for i, arch in enumerate(archs):
        superdraft.activate(arch)
        distill = inplace_distill and i == 0 and arch.draft_vocab_size is None
        result = unrolled_loss(superdraft, batch, loss_cfg, intermediate_tap,
                               teacher_logits=teacher if i > 0 else None, keep_logits=distill,
                               teachers=teachers)
        (result.loss / len(archs)).backward()
        if distill:
            teacher = result.step_logits
        metrics["loss"] += result.metrics["loss"] / len(archs)
        for name, index in reported.items():
            if i == index:
                metrics[f"{name}_loss"] = result.metrics["loss"]
                metrics[f"{name}_top1"] = result.metrics["top1_0"]
    return metrics
