"""Export a searched draft as a standalone DraftModel checkpoint with its provenance.

Reads the search run directory (best.json, and trials.csv for trial=), loads the search's target
and its trained supernet, checks that they belong together, optionally refines the chosen subnet
with a short target-aware fine-tune, and writes <run_dir>/draft/ (config.json + model.safetensors;
`DraftModel.from_pretrained` and `draftnas decode draft=` load it). Provenance in its config:
trial, predicted tau / latency / speedup, hardware table, target spec and fingerprint, space,
supernet directory, refinement.

format=eagle3 writes the EAGLE-3 layout of vLLM and SGLang to <run_dir>/eagle3/ as well, for a
draft that fits it exactly (concat, 1 layer, at most 3 taps, every image position: see
nas/export/eagle3.py); any other draft exits 2 naming why before anything is written.

keys:
  search          the run directory of `draftnas search` (required)
  trial           a trial number from its trials.csv; null: the best trial (best.json)
  target          null: the search's target (best.json); else a spec of the same target
  format          draftnas | eagle3
  refine          fine-tune the chosen subnet before extracting it
  refine_steps    optimizer steps of that fine-tune
  refinement.*    batch_size, lr, warmup_steps, min_lr_ratio, grad_clip, seed, loss.* (as
                  train.*), checkpoint_every (into <run_dir>/refine-checkpoints: rerun with the
                  same run_dir to continue a killed refinement)
  data            the refinement's prompts: data=<source> (null: the embedded target's own set),
                  data.* keys (userdata.DataConfig); it reads the train split
  prompts         training prompts the refinement learns from (the first of that train split)
  max_new_tokens  length of the target's responses in that corpus (and the held-out ones)
  validation_prompts  after a refinement, held-out prompts (the data's validation split) on which
                  every decoding shape of the supernet is decoded with the refined draft and
                  priced on the search's table: the fastest is recommended (nas/export/reshape.py);
                  0: the search's shape
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.commands import CommandConfig
from nas.export import (
    ExportError,
    RefineConfig,
    check_eagle3,
    extract_selection,
    load_search_supernet,
    refine,
    reshape,
    select_trial,
    table_of,
    write_eagle3,
)
from nas.run_context import RunContext, TargetConfig
from supernet import draft_config
from supernet.corpus import cached_corpus, features_dir
from userdata import DataConfig, UserData

FORMATS = ("draftnas", "eagle3")


@dataclass(kw_only=True)
class Config(CommandConfig, TargetConfig):
    search: Path | None
    trial: int | None
    target: str | None  # null: the search's own (best.json)
    format: str
    refine: bool
    refine_steps: int
    prompts: int
    validation_prompts: int
    max_new_tokens: int
    threads: int
    refinement: RefineConfig = field(default_factory=RefineConfig)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass(kw_only=True)
class Result:
    draft: str
    eagle3: str | None
    format: str
    trial: int
    arch: dict[str, Any]
    predicted: dict[str, float]
    target: str
    target_fingerprint: str
    supernet: str
    refinement: dict[str, Any] | None
    parameters: int
    data: dict[str, Any] | None = None  # the refinement's rows (userdata.UserData.report)


def run(cfg: Config, ctx: RunContext) -> Result:
    check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    selection = select_trial(cfg.search, cfg.trial)
    spec = cfg.target or selection.target_spec
    # The refinement's data, checked before the target loads.
    data = UserData(cfg.data, ctx.spec(spec)) if cfg.refine else None
    if cfg.refine and cfg.validation_prompts:
        table_of(selection)  # the refined draft's shapes are priced on it: there, before training
    target = ctx.target(cfg, spec)
    if cfg.format == "eagle3":  # refuse before any work: the layout is decided by the arch
        check_eagle3(draft_config(target, selection.candidate.arch), target)
    superdraft, meta = load_search_supernet(selection, target)
    refinement = None
    if data is not None:
        prompts = data.take(target, "train", cfg.prompts, cfg.max_new_tokens)
        corpus = cached_corpus(target, prompts.inputs, cfg.max_new_tokens, ctx.home,
                               responses=prompts.responses,
                               shorten="fewer prompts= or max_new_tokens=")
        # The features the supernet's training cached for this corpus (train's features=disk).
        features = features_dir(ctx.home, target, prompts.inputs, cfg.max_new_tokens,
                                prompts.responses)
        refinement = refine(superdraft, selection.candidate.arch, corpus, meta.intermediate_tap,
                            cfg.refine_steps, cfg.refinement, features,
                            Path(cfg.run_dir) / "refine-checkpoints")
        if cfg.validation_prompts:
            held_out = data.take(target, "validation", cfg.validation_prompts, cfg.max_new_tokens)
            validation = cached_corpus(target, held_out.inputs, cfg.max_new_tokens, ctx.home,
                                       shorten="fewer validation_prompts= or max_new_tokens=")
            searched = selection.candidate.shape.label
            selection, rows = reshape(selection, extract_selection(superdraft, selection),
                                      meta.shapes, validation)
            refinement["shapes"] = [asdict(row) for row in rows]
            print(f"refined draft: decoding {selection.candidate.shape.label} (the search's "
                  f"{searched}), tau {selection.predicted['tau']:.3f} measured on "
                  f"{len(validation)} held-out prompts, predicted speedup "
                  f"{selection.predicted['speedup']:.3f}", flush=True)
    draft = extract_selection(superdraft, selection, refinement)
    draft_dir = draft.save_pretrained(Path(cfg.run_dir) / "draft")
    eagle3_dir = None
    if cfg.format == "eagle3":
        eagle3_dir = str(write_eagle3(draft, Path(cfg.run_dir) / "eagle3"))
    return Result(draft=str(draft_dir), eagle3=eagle3_dir, format=cfg.format,
                  trial=selection.trial, arch=selection.candidate.to_dict(),
                  predicted=selection.predicted, target=target.spec,
                  target_fingerprint=target.fingerprint, supernet=str(selection.supernet),
                  refinement=refinement,
                  parameters=sum(param.numel() for param in draft.parameters()),
                  data=data.report() if data else None)


def check_config(cfg: Config) -> None:
    if not cfg.search:
        raise ExportError("search: not given; use search=<the run directory of draftnas search>")
    if cfg.format not in FORMATS:
        raise ExportError(f"format: '{cfg.format}'; use one of {', '.join(FORMATS)}")
    if cfg.refine and (cfg.refine_steps < 1 or cfg.prompts < 1 or cfg.max_new_tokens < 1
                       or cfg.validation_prompts < 0 or cfg.refinement.checkpoint_every < 0):
        raise ExportError(f"refine_steps={cfg.refine_steps}, prompts={cfg.prompts}, "
                          f"max_new_tokens={cfg.max_new_tokens}, validation_prompts="
                          f"{cfg.validation_prompts}, refinement.checkpoint_every="
                          f"{cfg.refinement.checkpoint_every}: use positive numbers with "
                          "refine=true (validation_prompts and checkpoint_every may be 0)")
    if cfg.threads < 0:
        raise ExportError(f"threads: {cfg.threads}; use 0 (torch's default) or a positive number")
