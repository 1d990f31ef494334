"""A target-aware fine-tune of one subnet before it is extracted: a short touch-up, or (the
pipeline on a CPU with a large vocabulary) the searched draft's training alone.

It trains the supernet's shared weights with only the chosen arch active, with the supernet's own
loss (KL to the target + feature regression, unrolled: supernet.loss), on the target's own
responses (supernet.corpus) and its features (supernet.features, read from the disk cache the
supernet's training filled when given its directory), so the refined draft learns exactly what
training taught and `extract` then copies the refined slices. Only the arch's slices receive
gradients; the rest of the supernet is left as it was. The learning rate warms up linearly, then
follows a cosine to lr * min_lr_ratio (the defaults: a constant lr), as training's does.
"""

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from search_spaces import DraftArch
from supernet.corpus import CorpusItem
from supernet.features import FeatureSource
from supernet.loss import LossConfig
from supernet.sandwich import sandwich_backward
from supernet.superdraft import SuperDraft
from supernet.trainer import lr_factor


@dataclass
class RefineConfig:
    batch_size: int = 4
    lr: float = 1e-4
    warmup_steps: int = 0
    min_lr_ratio: float = 1.0
    grad_clip: float = 0.5
    seed: int = 0
    loss: LossConfig = field(default_factory=LossConfig)


def refine(superdraft: SuperDraft, arch: DraftArch, corpus: list[CorpusItem],
           intermediate_tap: int | None, steps: int, cfg: RefineConfig,
           features_dir: Path | None = None) -> dict[str, Any]:
    """Train `arch`'s slices of `superdraft` for `steps` steps; returns the first and last loss
    (each the mean of the first / last tenth of the steps: one batch's loss is noisy)."""
    target = superdraft.target
    taps = set(arch.injected_layers)
    if intermediate_tap is not None:
        taps.add(intermediate_tap)
    wants_scores = bool(target.is_vlm) and arch.vision_keep_ratio < 1.0
    features = FeatureSource(target, sorted(taps), wants_scores, features_dir, image_embeds=bool(
        target.is_vlm) and arch.image_input == "features")
    params = [param for param in superdraft.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps, cfg.warmup_steps, cfg.min_lr_ratio))
    order = random.Random(cfg.seed)
    losses = []
    superdraft.train()
    started = time.perf_counter()
    try:
        for _ in tqdm(range(steps), desc="refine", dynamic_ncols=True):
            indices = order.sample(range(len(corpus)), min(cfg.batch_size, len(corpus)))
            batch = features.batch([(index, corpus[index]) for index in indices])
            optimizer.zero_grad(set_to_none=True)
            metrics = sandwich_backward(superdraft, batch, [arch], cfg.loss,
                                        inplace_distill=False, intermediate_tap=intermediate_tap)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(metrics["loss"])
    finally:
        superdraft.eval()
    tenth = max(1, steps // 10)
    return {"steps": steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "sequences": len(corpus), "first_loss": round(sum(losses[:tenth]) / tenth, 5),
            "last_loss": round(sum(losses[-tenth:]) / tenth, 5),
            "seconds": round(time.perf_counter() - started, 1)}
