"""A short target-aware fine-tune of one subnet before it is extracted.

It trains the supernet's shared weights with only the chosen arch active, with the supernet's own
loss (KL to the target + feature regression, unrolled: supernet.loss), on the target's own
responses (supernet.corpus) and its features (supernet.features), so the refined draft learns
exactly what training taught and `extract` then copies the refined slices. Only the arch's slices
receive gradients; the rest of the supernet is left as it was.
"""

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from search_spaces import DraftArch
from supernet.corpus import CorpusItem
from supernet.features import FeatureSource
from supernet.loss import LossConfig
from supernet.sandwich import sandwich_backward
from supernet.superdraft import SuperDraft


@dataclass
class RefineConfig:
    batch_size: int = 4
    lr: float = 1e-4
    grad_clip: float = 0.5
    seed: int = 0
    loss: LossConfig = field(default_factory=LossConfig)


def refine(superdraft: SuperDraft, arch: DraftArch, corpus: list[CorpusItem],
           intermediate_tap: int | None, steps: int, cfg: RefineConfig) -> dict[str, Any]:
    """Train `arch`'s slices of `superdraft` for `steps` steps; returns the first and last loss."""
    target = superdraft.target
    taps = set(arch.injected_layers)
    if intermediate_tap is not None:
        taps.add(intermediate_tap)
    wants_scores = bool(target.is_vlm) and arch.vision_keep_ratio < 1.0
    features = FeatureSource(target, sorted(taps), wants_scores, image_embeds=bool(
        target.is_vlm) and arch.image_input == "features")
    params = [param for param in superdraft.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    order = random.Random(cfg.seed)
    losses = []
    superdraft.train()
    try:
        for _ in tqdm(range(steps), desc="refine", dynamic_ncols=True):
            indices = order.sample(range(len(corpus)), min(cfg.batch_size, len(corpus)))
            batch = features.batch([(index, corpus[index]) for index in indices])
            optimizer.zero_grad(set_to_none=True)
            metrics = sandwich_backward(superdraft, batch, [arch], cfg.loss,
                                        inplace_distill=False, intermediate_tap=intermediate_tap)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            losses.append(metrics["loss"])
    finally:
        superdraft.eval()
    return {"steps": steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "sequences": len(corpus), "first_loss": round(losses[0], 5),
            "last_loss": round(losses[-1], 5)}
