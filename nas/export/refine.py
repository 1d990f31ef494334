"""A target-aware fine-tune of one subnet before it is extracted: a short touch-up, or (the
pipeline on a CPU with a large vocabulary) the searched draft's training alone.

It trains the supernet's shared weights with only the chosen arch active, with the supernet's own
loss (KL to the target + feature regression, unrolled: supernet.loss), on the target's own
responses (supernet.corpus) and its features (supernet.features, read from the disk cache the
supernet's training filled when given its directory), so the refined draft learns exactly what
training taught and `extract` then copies the refined slices. Only the arch's slices receive
gradients; the rest of the supernet is left as it was. The learning rate warms up linearly, then
follows a cosine to lr * min_lr_ratio (the defaults: a constant lr), as training's does.

Given a directory, it checkpoints every `checkpoint_every` steps as training does
(supernet.checkpoint: weights, optimizer, schedule, batch order, losses) and a rerun continues
from the newest checkpoint of the same draft and settings: the pipeline's winner training runs
for many minutes, and a killed export picks up where it stopped.
"""

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nas.export.errors import ExportError
from search_spaces import DraftArch
from supernet.checkpoint import (
    SupernetMeta,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
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
    checkpoint_every: int = 50
    loss: LossConfig = field(default_factory=LossConfig)


def refine(superdraft: SuperDraft, arch: DraftArch, corpus: list[CorpusItem],
           intermediate_tap: int | None, steps: int, cfg: RefineConfig,
           features_dir: Path | None = None, checkpoints: Path | None = None) -> dict[str, Any]:
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
    # What a checkpoint must have been made for to be continued.
    run = {"arch": arch.to_dict(), "steps": steps, "config": repr(cfg), "sequences": len(corpus)}
    losses: list[float] = []
    resumed = checkpoints and latest_checkpoint(checkpoints)
    if resumed:
        state = load_checkpoint(resumed, superdraft, target.fingerprint)
        if state.get("run") != run:
            raise ExportError(f"{checkpoints} holds a refinement of another draft or with other "
                              "settings; give a fresh run_dir, or delete that directory")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        order.setstate(state["order"])
        losses = list(state["losses"])
    meta = SupernetMeta.of(superdraft, intermediate_tap)
    superdraft.train()
    started, first = time.perf_counter(), len(losses)
    try:
        for step in tqdm(range(first, steps), initial=first, total=steps, desc="refine",
                         dynamic_ncols=True):
            indices = order.sample(range(len(corpus)), min(cfg.batch_size, len(corpus)))
            batch = features.batch([(index, corpus[index]) for index in indices])
            optimizer.zero_grad(set_to_none=True)
            metrics = sandwich_backward(superdraft, batch, [arch], cfg.loss,
                                        inplace_distill=False, intermediate_tap=intermediate_tap)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(metrics["loss"])
            if checkpoints and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                save_checkpoint(checkpoints, step + 1, superdraft, meta, {
                    "run": run, "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "order": order.getstate(),
                    "losses": losses})
    finally:
        superdraft.eval()
    tenth = max(1, steps // 10)
    return {"steps": steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "sequences": len(corpus), "first_loss": round(sum(losses[:tenth]) / tenth, 5),
            "last_loss": round(sum(losses[-tenth:]) / tenth, 5), "resumed_from_step": first,
            "seconds": round(time.perf_counter() - started, 1)}
