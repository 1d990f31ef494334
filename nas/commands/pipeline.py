"""The whole job on one target: build it, train the supernet, profile, search, export (on a CPU
with a large vocabulary after training the searched draft alone: winner_steps), train the
eagle, dream and (for a VLM) specllava baselines, bench them all (`stages`: <run_dir>/01-target ...
09-bench, each a draftnas command in this process, the target loaded once). A stage whose directory holds
result.json is skipped: `draftnas pipeline run_dir=<an earlier run>` resumes a killed pipeline.
Benched drafts are copied to <run_dir>/drafts/<name>; summary.md and result.json hold the table.
Keys: conf/pipeline.yaml (data, budget, device, dtype, quantize, tables_dir, shapes_build, and
per-stage overrides, e.g. "overrides.search=['n_trials=10']"); the pipeline sets target, paths
and results between stages.
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hardware_profiles.table import load_table
from nas.commands import CommandConfig, command_config, data_shorthand
from nas.export import RefineConfig
from nas.pipeline_report import Progress, summarise, summary_rows
from nas.run_context import RunContext, ServeConfig
from nas.run_dir import Stage, run_stages
from nas.user_errors import UserError
from supernet.trainer import TrainConfig
from userdata import DataConfig, UserData

# From this vocabulary up, a CPU cannot serve a full-vocabulary draft head (on smollm2's 49k one
# draft token costs about 9 ms of a 60 ms plain step): the CPU's part of dream_s is searched.
LARGE_VOCABULARY = 32768
DRAFTS = {"searched": "05-export", "eagle": "06-train-eagle", "dream": "07-train-dream",
          "specllava": "08-train-specllava"}


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig):
    tables_dir: Path | None
    # The supernet's space: a named space or a YAML file; auto: `dream_s_cpu` on a CPU for a
    # target of LARGE_VOCABULARY tokens or more (space_for), else `dream_s`.
    search_space: str = "auto"
    # Steps of the searched draft's training alone after the search (export's refinement at the
    # budget's lr, batch and corpus; its decoding shape chosen again); None: twice the budget's
    # train.steps on a CPU with a large vocabulary (winner_steps_for), else none; 0: none.
    winner_steps: int | None = None
    shapes_build: dict[str, str] = field(default_factory=dict)
    budget_name: str  # this and the four below: the budget group's (conf/budget/)
    calibration_prompts: int
    prompts: int
    max_new_tokens: int
    train: TrainConfig = field(default_factory=TrainConfig)
    # Overrides of each stage's command per budget, per device kind; the user's.
    stages: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    by_device: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    overrides: dict[str, list[str]] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass(kw_only=True)
class Result:
    target: str
    budget: str
    latency_table: str
    stages: dict[str, str]
    drafts: dict[str, str]
    summary: list[dict[str, Any]]
    summary_md: str
    total_seconds: float  # the stages' recorded durations, summed over every run that made them


def run(cfg: Config, ctx: RunContext) -> Result:
    if cfg.budget_name not in cfg.stages:
        raise UserError(f"budget: '{cfg.budget_name}' has no stage settings in conf/pipeline.yaml; "
                        f"use one of {', '.join(cfg.stages)}")
    ctx = ctx.with_tables(cfg.tables_dir) if cfg.tables_dir else ctx
    UserData(cfg.data, ctx.spec(cfg.target))  # checked before the stages, not at the bench
    run_dir, progress, plan = Path(cfg.run_dir), Progress("pipeline"), stages(cfg, ctx)
    results, seconds = run_stages(plan, run_dir, ctx, progress.say)
    bench, names = results[plan[-1].name], list(results)  # the bench; the stages that ran
    print(summarise(run_dir, f"draftnas pipeline: {cfg.target}, budget {cfg.budget_name}",
                    bench, f"{cfg.device} {cfg.dtype} quantize={bench.quantize}", seconds,
                    names))
    progress.say(f"done: {run_dir / 'summary.md'}")
    return Result(target=bench.target, budget=cfg.budget_name,
                  latency_table=results["03-profile"].table,
                  stages={name: str(run_dir / name) for name in names},
                  drafts={name: str(run_dir / "drafts" / name)
                          for name, stage in DRAFTS.items() if stage in results},
                  summary=summary_rows(bench.rows), summary_md=str(run_dir / "summary.md"),
                  total_seconds=round(seconds, 1))


def stages(cfg: Config, ctx: RunContext) -> list[Stage]:
    """The stages in order: each config is its command's own, composed, with what the pipeline
    passes it (target, earlier stages' paths and results) set by `replace`, never as strings."""
    run_dir, kind = Path(cfg.run_dir), cfg.device.partition(":")[0]
    search_dir = run_dir / "04-search"
    spec = ctx.spec(cfg.target, cfg.shapes_build.get(cfg.budget_name))
    target = replace(ServeConfig.of(cfg), target=spec)

    def on_target(command: str) -> CommandConfig:
        """conf/<command>.yaml with the budget's, device's and user's overrides, on the target
        (and the data, where the command reads prompts)."""
        config = target.onto(command_config(command, [
            *cfg.stages[cfg.budget_name].get(command, []),
            *cfg.by_device.get(kind, {}).get(command, []), *cfg.overrides.get(command, [])]))
        return replace(config, data=cfg.data) if hasattr(config, "data") else config

    def train(space: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], CommandConfig]:
        # The budget's keys (the pipeline's own, as the user set them), then the user's
        # overrides.train again: "train.steps=40" there wins over the budget's 240.
        return lambda done: with_keys(replace(
            on_target("train"), search_space=space(done), resume=True, budget_name=cfg.budget_name,
            calibration_prompts=cfg.calibration_prompts, prompts=cfg.prompts,
            max_new_tokens=cfg.max_new_tokens, train=cfg.train), cfg.overrides.get("train", []))

    def supernet_space(done: dict[str, Any]) -> str:
        return space_for(cfg.search_space, kind, done["01-target"].vocab_size)

    def search(done: dict[str, Any]) -> CommandConfig:
        base = on_target("search")
        table = replace(base.hardware, table=done["03-profile"].table)
        return replace(base, supernet=run_dir / "02-train", hardware=table)

    def export(done: dict[str, Any]) -> CommandConfig:
        config = replace(on_target("export"), search=search_dir)
        # The supernet's training as the pipeline runs it: the winner trains on its corpus, with
        # its threads, batch, lr schedule and loss (the user's overrides.train included).
        trained = train(supernet_space)(done)
        steps = winner_steps_for(cfg.winner_steps, trained.train.steps, kind,
                                 done["01-target"].vocab_size)
        if not steps:
            return config
        return with_keys(replace(
            config, refine=True, refine_steps=steps, prompts=trained.prompts,
            max_new_tokens=trained.max_new_tokens, threads=trained.threads, data=trained.data,
            refinement=winner_refinement(trained.train)), cfg.overrides.get("export", []))

    def bench(done: dict[str, Any]) -> CommandConfig:
        # With the table's CPU threads, the bench's speedups answer the search's predictions.
        base = on_target("bench")
        threads = load_table(done["03-profile"].table).device.threads or base.threads
        return replace(base, drafts=copy_drafts(run_dir, done), threads=threads)

    # A budget with profile settings of its own (quicker: smoke) makes a table only it reuses.
    quick = cfg.stages[cfg.budget_name].get("profile") or cfg.overrides.get("profile")
    return [
        Stage("01-target", "target", lambda _: on_target("target")),
        Stage("02-train", "train", train(supernet_space)),
        Stage("03-profile", "profile", lambda _: replace(
            on_target("profile"), reuse=True, tag=cfg.budget_name if quick else None)),
        Stage("04-search", "search", search),
        Stage("05-export", "export", export),
        Stage("06-train-eagle", "train", train(lambda _: "eagle")),
        Stage("07-train-dream", "train", train(lambda _: "dream")),
        # specllava's point is what a tokens-only draft reads at image positions: on a text
        # target it would be one more tokens-only draft, minutes of training for no question.
        Stage("08-train-specllava", "train", train(lambda _: "specllava"),
              needed=lambda done: done["01-target"].is_vlm),
        Stage("09-bench", "bench", bench),
    ]


def with_keys(config: CommandConfig, overrides: list[str]) -> CommandConfig:
    """`config` with `key=value` overrides set on it (checked against its schema)."""
    if not overrides:
        return config
    keys = OmegaConf.from_dotlist([data_shorthand(override) for override in overrides])
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(config), keys))


def space_for(search_space: str, device_kind: str, vocab_size: int) -> str:
    """The supernet's space: the user's, or for `auto` the part of dream_s the device can serve
    (dream_s_cpu: one or two layers, a quarter of the vocabulary, chains and small trees) on a
    CPU with a large vocabulary, where dream_s's full heads, third layer and cross-attention
    double the training time (19.9 s a step against 10.8 on smollm2) for drafts that cost such a
    CPU the most per draft token (a full 49k head: about 9 ms)."""
    if search_space != "auto":
        return search_space
    return "dream_s_cpu" if large_vocabulary_cpu(device_kind, vocab_size) else "dream_s"


def winner_steps_for(winner_steps: int | None, train_steps: int, device_kind: str,
                     vocab_size: int) -> int:
    """The searched draft's own training steps. By default on a CPU with a large vocabulary only:
    there the supernet's budget is spread over up to seven subnets a step, and its winner (on
    smollm2 after 120 steps: tau 1.27, chain 1, 1.09x) is far from what a draft of its kind
    reaches trained alone (1.5x after 960 steps: experiments/smollm2_training_data.md); a step
    of one draft costs about a fifth of a supernet step there (2.9 s against 13-16 on smollm2)."""
    if winner_steps is not None:
        return winner_steps
    return 2 * train_steps if large_vocabulary_cpu(device_kind, vocab_size) else 0


def winner_refinement(train: TrainConfig) -> RefineConfig:
    """The winner trains as the supernet trained: the same batch, lr schedule and loss."""
    return RefineConfig(batch_size=train.batch_size, lr=train.lr,
                        warmup_steps=train.warmup_steps, min_lr_ratio=train.min_lr_ratio,
                        grad_clip=train.grad_clip, seed=train.seed,
                        checkpoint_every=train.checkpoint_every, loss=train.loss)


def large_vocabulary_cpu(device_kind: str, vocab_size: int) -> bool:
    return device_kind == "cpu" and vocab_size >= LARGE_VOCABULARY


def copy_drafts(run_dir: Path, done: dict[str, Any]) -> list[Path]:
    """Bench names a draft by its directory, and every stage writes `draft/`: copies under
    distinct names keep the rows apart (and leave the pipeline's drafts in one place)."""
    return [Path(shutil.copytree(done[stage].draft, run_dir / "drafts" / name, dirs_exist_ok=True))
            for name, stage in DRAFTS.items() if stage in done]
