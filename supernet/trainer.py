"""The supernet training recipe (torchtune style): `setup` / `train` / `cleanup`, one config.

setup: the SuperDraft over the resolved space, AdamW (betas 0.9/0.95, as DREAM) with linear
warm-up and cosine decay, and, when a checkpoint exists under the run and `resume` is set, every
piece of state from it (weights, optimizer, scheduler, RNG, step).
train: for each step, this rank's share of the step's batch (a fixed permutation of the corpus
per epoch, so the batch is a function of the step alone), the sandwich of subnets with
gradients accumulated, gradients averaged over ranks, clipped (0.5), one optimizer step; a
checkpoint every `checkpoint_every` steps and at the end; metrics to `metrics.csv` and a tqdm bar.
cleanup: the loss plot, the process group.
"""

import csv
import math
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from search_spaces import ResolvedSpace
from supernet.checkpoint import SupernetMeta, latest_checkpoint, load_checkpoint, save_checkpoint
from supernet.corpus import CorpusItem, response_tokens
from supernet.distributed import World, average_gradients, average_metrics, close, shard
from supernet.errors import SupernetError
from supernet.features import FeatureSource, reads_image_features
from supernet.loss import KL_VOCABULARIES, LossConfig
from supernet.sandwich import SandwichConfig, sandwich_archs, sandwich_backward
from supernet.superdraft import SuperDraft

METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"
METRIC_COLUMNS = ("step", "lr", "loss", "largest_loss", "smallest_loss", "largest_top1",
                  "smallest_top1", "samples_per_second")


@dataclass
class TrainConfig:
    steps: int = 400
    batch_size: int = 8  # sequences per step, over all processes
    lr: float = 1e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    grad_clip: float = 0.5
    checkpoint_every: int = 50
    seed: int = 0
    deterministic: bool = True
    loss: LossConfig = field(default_factory=LossConfig)
    sandwich: SandwichConfig = field(default_factory=SandwichConfig)


def lr_factor(step: int, steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up over warmup_steps, then cosine from 1 to min_lr_ratio at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class SupernetRecipe:
    def __init__(self, cfg: TrainConfig, run_dir: Path, world: World):
        self.cfg, self.run_dir, self.world = cfg, Path(run_dir), world
        self.checkpoints = self.run_dir / "checkpoints"
        self.step = 0

    def setup(self, target: Any, space: ResolvedSpace, corpus: list[CorpusItem],
              vocab_ranking: list[int], intermediate_tap: int | None,
              features_dir: Path | None, resume: bool) -> None:
        cfg = self.cfg
        if cfg.steps < 1 or cfg.batch_size < 1:
            raise SupernetError(f"train.steps={cfg.steps}, train.batch_size={cfg.batch_size}: "
                                "use positive integers")
        if not corpus:
            raise SupernetError("the training corpus is empty; give prompts > 0")
        if cfg.loss.kl_vocabulary not in KL_VOCABULARIES:
            raise SupernetError(f"train.loss.kl_vocabulary: '{cfg.loss.kl_vocabulary}'; use one "
                                f"of {', '.join(KL_VOCABULARIES)}")
        restricted = cfg.loss.kl_vocabulary == "corpus"
        if restricted and cfg.sandwich.inplace_distill:
            raise SupernetError("train.sandwich.inplace_distill needs the full vocabulary's "
                                "logits: set train.loss.kl_vocabulary=full with it")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.target, self.space, self.corpus = target, space, corpus
        self.intermediate_tap = intermediate_tap
        kl_vocabulary = torch.unique(response_tokens(corpus)).tolist() if restricted else None
        self.superdraft = SuperDraft(space, target, vocab_ranking, kl_vocabulary).train()
        self.superdraft.start_head_from_target()  # a checkpoint, if resumed, replaces it
        self.meta = SupernetMeta.of(self.superdraft, intermediate_tap)
        taps = {tap for taps in space.injected_layers for tap in taps}
        if intermediate_tap is not None:
            taps.add(intermediate_tap)
        wants_scores = target.is_vlm and min(space.vision_keep_ratio) < 1.0
        self.features = FeatureSource(target, sorted(taps), wants_scores, features_dir,
                                      image_embeds=reads_image_features(target, space))
        params = list(self.superdraft.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95),
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: lr_factor(
            step, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio))
        checkpoint = latest_checkpoint(self.checkpoints) if resume else None
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, self.superdraft, target.fingerprint)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            random.setstate(state["python_rng"])
            self.step = state["step"]
        self.resumed_from = self.step
        if self.world.is_main:
            self._trim_metrics()

    # -- data ----------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> list[int]:
        """The step's global batch: consecutive slices of a per-epoch permutation of the corpus."""
        size, n = self.cfg.batch_size, len(self.corpus)
        indices = []
        for position in range(step * size, (step + 1) * size):
            epoch, offset = divmod(position, n)
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                self.cfg.seed * 100_003 + epoch)).tolist()
            indices.append(order[offset])
        return indices

    # -- training ------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        cfg, world = self.cfg, self.world
        params = [p for p in self.superdraft.parameters() if p.requires_grad]
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not world.is_main,
                   desc="supernet", dynamic_ncols=True)
        started, samples, last = time.perf_counter(), 0, {}
        while self.step < cfg.steps:
            step_started = time.perf_counter()
            mine = shard(self.batch_indices(self.step), world)
            batch = self.features.batch([(index, self.corpus[index]) for index in mine])
            archs = sandwich_archs(self.space, cfg.sandwich.random_subnets, cfg.seed, self.step)
            self.optimizer.zero_grad(set_to_none=True)
            metrics = sandwich_backward(self.superdraft, batch, archs, cfg.loss,
                                        cfg.sandwich.inplace_distill, self.intermediate_tap)
            average_gradients(params, world)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            lr = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            samples += cfg.batch_size
            metrics = average_metrics(metrics, world)
            rate = cfg.batch_size / max(time.perf_counter() - step_started, 1e-9)
            last = {"step": self.step, "lr": lr, **metrics, "samples_per_second": rate}
            if world.is_main:
                self._log(last)
                bar.set_postfix(loss=f"{metrics['loss']:.3f}",
                                top1=f"{metrics['largest_top1']:.2f}")
                bar.update(1)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        seconds = time.perf_counter() - started
        return {
            "steps": self.step,
            "resumed_from_step": self.resumed_from,
            "train_seconds": round(seconds, 2),
            "samples_per_second": round(samples / seconds, 3) if samples else None,
            "peak_memory_mb": peak_memory_mb(),
            "final_metrics": {name: round(value, 5) for name, value in last.items()},
        }

    def save(self) -> None:
        if not self.world.is_main:
            return
        state = {"optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}
        save_checkpoint(self.checkpoints, self.step, self.superdraft, self.meta, state)

    # -- metrics -------------------------------------------------------------------------------
    def _log(self, row: dict[str, float]) -> None:
        path = self.run_dir / METRICS_FILE
        new = not path.is_file()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _trim_metrics(self) -> None:
        """Drop rows a killed run logged after its last checkpoint: they are trained again."""
        path = self.run_dir / METRICS_FILE
        if not path.is_file():
            return
        with path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= self.step]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def cleanup(self) -> None:
        if self.world.is_main and (self.run_dir / METRICS_FILE).is_file():
            plot_losses(self.run_dir / METRICS_FILE, self.run_dir / PLOT_FILE)
        close(self.world)


def plot_losses(metrics_csv: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(metrics_csv)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for column, label in (("loss", "sandwich mean"), ("largest_loss", "largest"),
                          ("smallest_loss", "smallest")):
        axis.plot(frame["step"], frame[column], label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("unrolled loss")
    axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def peak_memory_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is in KiB on Linux), or GPU peak."""
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
