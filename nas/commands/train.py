"""Train the weight-sharing draft supernet of a search space against a target.

Writes to the run directory: calibration.json (when the space ranks layers by entropy and no
calibration is given), space.json (the space resolved for this target), checkpoints/ (atomic,
complete; resume=true continues from the newest), metrics.csv, loss.png, supernet/ (the trained
weights + meta that search and export load) and, for a one-point space such as eagle or dream,
draft/: that draft as a DraftModel checkpoint the decoder loads.

Multi-process: `torchrun --nproc_per_node N -m nas.cli train run_dir=<dir> ...` (gloo on CPU,
nccl on GPU); train.batch_size is the global batch and must split over the processes.

keys:
  target          shapes | smollm2 | a Hugging Face model id | a local model directory
  search_space    a named space (dream_s, dream_s_cpu, eagle, dream) or a space YAML file
  budget          smoke | default | long: steps, batch, prompts, unroll (conf/budget/)
  data            the prompts: data=<source> (null: the embedded target's own set), data.* keys
                  (userdata.DataConfig); training and calibration read its train split
  calibration     a calibration.json to use instead of calibrating (null: the run's own)
  prompts         training prompts (the first of the data's train split)
  max_new_tokens  length of the target's responses that the draft learns from
  validation_prompts  held-out prompts (the data's validation split) on which the trained draft's
                  tau is estimated at the end (0: none); the same answers `draftnas search` uses
  features        disk (computed once per item and tap, cached under $DRAFTNAS_HOME, shared by
                  every run on the corpus) | online (a target forward per batch)
  resume          continue from the newest checkpoint in run_dir
  threads         torch CPU threads per process (0: torch's default)
  train.*         steps, batch_size, lr, warmup_steps, checkpoint_every, seed, loss.*, sandwich.*
"""

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from nas.calibration import FILE_NAME as CALIBRATION_FILE
from nas.calibration import Calibration, calibrate
from nas.commands import CommandConfig
from nas.estimator import AcceptanceEstimator, ValidationSet
from nas.run_context import RunContext, TargetConfig
from nas.user_errors import UserError
from search_spaces import ResolvedSpace, TargetDims, load_space
from specdec.shape import DecodeShape
from supernet.checkpoint import SupernetMeta, load_supernet, save_supernet
from supernet.corpus import cached_corpus, features_dir, vocabulary_ranking
from supernet.distributed import World, barrier, init_world
from supernet.extract import extract
from supernet.superdraft import SuperDraft
from supernet.trainer import SupernetRecipe, TrainConfig
from targets import Target
from userdata import DataConfig, UserData

FEATURES = ("online", "disk")


@dataclass(kw_only=True)
class Config(CommandConfig, TargetConfig):
    search_space: str
    budget_name: str
    calibration: Path | None
    calibration_prompts: int
    prompts: int
    max_new_tokens: int
    validation_prompts: int
    features: str
    resume: bool
    threads: int
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass(kw_only=True)
class Result:
    target: str
    target_fingerprint: str
    search_space: str
    space_size: int
    budget: str
    processes: int
    corpus_sequences: int
    # SupernetRecipe.train's summary.
    steps: int
    resumed_from_step: int
    train_seconds: float
    samples_per_second: float | None
    peak_memory_mb: float
    final_metrics: dict[str, float]
    data: dict[str, Any]  # the rows it trained and calibrated on (userdata.UserData.report)
    # Estimated greedy tau on held-out prompts of the space's largest and smallest drafts (its
    # draft, for a one-point space): what the training batches' top-1 overstates once a draft overfits.
    held_out: dict[str, Any] | None = None
    # What the main process saved (None in the others).
    supernet: str | None = None
    checkpoints: str | None = None
    metrics: str | None = None
    draft: str | None = None  # a one-point space's draft checkpoint


def run(cfg: Config, ctx: RunContext) -> Result:
    if cfg.features not in FEATURES:
        raise UserError(f"features: '{cfg.features}'; use one of {', '.join(FEATURES)}")
    if cfg.prompts < 1 or cfg.max_new_tokens < 1 or cfg.validation_prompts < 0:
        raise UserError(f"prompts={cfg.prompts}, max_new_tokens={cfg.max_new_tokens}, "
                        f"validation_prompts={cfg.validation_prompts}: use positive numbers "
                        "(validation_prompts may be 0)")
    space = load_space(cfg.search_space)  # a bad space or data fails before the target loads
    data = UserData(cfg.data, ctx.spec(cfg.target))
    if cfg.threads < 0:
        raise UserError(f"threads: {cfg.threads}; use 0 (torch's default) or a positive number")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = init_world(cfg.device)
    target = ctx.target(replace(cfg, device=world.device))
    run_dir = Path(cfg.run_dir)
    calibration = None
    if space.needs_calibration:
        calibration = calibration_for(cfg, target, data, run_dir, world)
    resolved = space.resolve(TargetDims.of(target), calibration)
    if world.is_main:
        (run_dir / "space.json").write_text(_json(resolved.to_dict()))
    prompts = data.take(target, "train", cfg.prompts, cfg.max_new_tokens)
    corpus = cached_corpus(target, prompts.inputs, cfg.max_new_tokens, ctx.home, world,
                           prompts.responses, shorten="fewer prompts= or max_new_tokens=")
    vocab_ranking = vocabulary_ranking(resolved.draft_vocab_size, corpus, target)
    intermediate_tap = calibration.candidate_taps[0] if calibration else None
    cache = None
    if cfg.features == "disk":
        cache = features_dir(ctx.home, target, prompts.inputs, cfg.max_new_tokens,
                             prompts.responses)
    recipe = SupernetRecipe(cfg.train, run_dir, world)
    try:
        recipe.setup(target, resolved, corpus, vocab_ranking, intermediate_tap, cache,
                     cfg.resume)
        summary = recipe.train()
        outputs = save_outputs(recipe, resolved, space.decode, intermediate_tap, run_dir, world)
        held_out = None
        if cfg.validation_prompts and world.is_main:
            # The saved supernet, as search reads it: training's heads compute the corpus's
            # tokens only (train.loss.kl_vocabulary), a decoding draft proposes from all.
            saved, _ = load_supernet(outputs["supernet"], target)
            held_out = held_out_tau(cfg, ctx, target, data, saved, space.decode)
    finally:
        recipe.cleanup()
    return Result(target=target.spec, target_fingerprint=target.fingerprint,
                  search_space=resolved.name, space_size=resolved.size(),
                  budget=cfg.budget_name, processes=world.size, corpus_sequences=len(corpus),
                  data=data.report(), held_out=held_out, **summary, **outputs)


def held_out_tau(cfg: Config, ctx: RunContext, target: Target, data: UserData,
                 superdraft: SuperDraft, shapes: tuple[DecodeShape, ...]) -> dict[str, Any]:
    """Greedy tau of the largest and smallest drafts on held-out prompts (nas.estimator: exact
    for a chain), decoding as the space's one shape or, for a space of several, a chain of 3."""
    prompts = data.take(target, "validation", cfg.validation_prompts, cfg.max_new_tokens)
    corpus = cached_corpus(target, prompts.inputs, cfg.max_new_tokens, ctx.home,
                           shorten="fewer validation_prompts= or max_new_tokens=")
    space = superdraft.space
    estimator = AcceptanceEstimator(ValidationSet.for_space(target, corpus, space))
    shape = shapes[0] if len(shapes) == 1 else DecodeShape.chain(3)
    superdraft.eval()
    drafts = ({"draft": space.largest()} if space.size() == 1 else
              {"largest": space.largest(), "smallest": space.smallest()})
    report: dict[str, Any] = {"prompts": len(corpus), "decode": shape.label}
    for name, arch in drafts.items():
        estimate = estimator.estimate(superdraft.activate(arch), shape)
        report[name] = {"tau": round(estimate.tau, 4), "exact": estimate.exact,
                        "acceptance_by_depth": [round(a, 4) for a in estimate.acceptance_by_depth]}
        print(f"held-out ({len(corpus)} validation prompts, {shape.label}): {name} draft "
              f"tau {estimate.tau:.2f}")
    return report


def calibration_for(cfg: Config, target: Target, data: UserData, run_dir: Path,
                    world: World) -> Calibration:
    path = Path(cfg.calibration) if cfg.calibration else run_dir / CALIBRATION_FILE
    if cfg.calibration or path.is_file():
        return Calibration.load(path, fingerprint=target.fingerprint)
    if world.is_main:
        calibrate(target, data.take(target, "train", cfg.calibration_prompts).inputs).save(path)
    barrier(world)
    return Calibration.load(path, fingerprint=target.fingerprint)


def save_outputs(recipe: SupernetRecipe, space: ResolvedSpace, shapes: tuple[DecodeShape, ...],
                 intermediate_tap: int | None, run_dir: Path, world: World) -> dict[str, Any]:
    """The supernet (its meta lists the space's decoding shapes, what a search of it tries) and,
    for a one-point space, its draft (recommending the space's shape, if it lists one)."""
    if not world.is_main:
        return {}
    supernet_dir = save_supernet(run_dir / "supernet", recipe.superdraft,
                                 SupernetMeta.of(recipe.superdraft, intermediate_tap, shapes))
    outputs: dict[str, Any] = {"supernet": str(supernet_dir),
                               "checkpoints": str(recipe.checkpoints),
                               "metrics": str(run_dir / "metrics.csv")}
    if space.size() == 1:
        provenance = {"source": "draftnas train", "search_space": space.name,
                      "supernet": str(supernet_dir), "steps": recipe.step}
        recommended = shapes[0] if len(shapes) == 1 else None
        draft = extract(recipe.superdraft, space.largest(), provenance, recommended)
        outputs["draft"] = str(draft.save_pretrained(run_dir / "draft"))
    return outputs


def _json(data: dict) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"
