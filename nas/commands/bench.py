"""Benchmark decoding methods on the same prompts: the plain target, transformers' assisted
generation and prompt lookup decoding, and every draft checkpoint given.

Per method: tokens/s, speedup over vanilla, tau (tokens per target forward after the prefill,
bonus token included), acceptance by depth, draft / target / overhead seconds, whether the
output equals vanilla token for token (greedy only), peak RSS and, for our drafts, the
efficiency ratio speedup / (tau x T_target(1) / T_step). Writes bench.csv, bench.md and
bench.png in the run directory; result.json holds the same table, with the machine's load.
On a CPU shared with other jobs, start it with OMP_WAIT_POLICY=PASSIVE and threads=1: spinning
OpenMP threads that wait for a busy core made decoding several times slower there.

keys:
  target          shapes | smollm2 | a Hugging Face model id | a local model directory
  drafts          draft checkpoint directories made for this target, e.g. drafts=[a,b]
  prompts         which prompt set: auto (the embedded target's own), shapes (easy-vqa images
                  and questions) or smollm2 (instructions); the bench uses its test split, the
                  assistant trains on its train split
  n_prompts       how many test prompts; max_new_tokens, temperature (0 = greedy), top_p, seed
  mode, k, depth, top_k, total_tokens   how our decoder drafts (tree: EAGLE-2 dynamic tree);
                  null: each draft's recommended shape (else tree 6/4/32), given keys on top
  adaptive        true: skip drafting while it measures slower than plain steps (probing it
                  again with back-off); false: draft every step
  baselines       any of assisted, prompt_lookup (vanilla always runs: speedups are over it)
  assistant_tokens, prompt_lookup_tokens   candidates per step of the transformers baselines
  assistant.*     the distilled assistant LM (layers, width, training steps...), cached per target
  threads         torch threads while timing; warmup: one untimed run per method first
  repeats         timed rounds per method; the round of median time is reported
  device, dtype   where and in which precision to load the target
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.commands import CommandConfig
from nas.run_context import RunContext, ServeConfig
from nas.user_errors import UserError
from specdec.bench.assistant import AssistantConfig, ensure_assistant
from specdec.bench.methods import (
    Method,
    Sampling,
    assisted_method,
    draft_method,
    prompt_lookup_method,
    vanilla_method,
)
from specdec.bench.report import write_report
from specdec.bench.runner import BenchSettings, run_bench
from specdec.recommended import ShapeKeys
from targets import PreparedInputs, Target
from targets.embedded import EMBEDDED_TARGETS, split_spec
from targets.embedded.prompts import prompt_set

BASELINES = ("assisted", "prompt_lookup")


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig, ShapeKeys):
    adaptive: bool
    drafts: list[Path]
    prompts: str
    n_prompts: int
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    baselines: list[str]
    assistant_tokens: int
    prompt_lookup_tokens: int
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    threads: int
    warmup: bool
    repeats: int


@dataclass(kw_only=True)
class Result:
    target: str
    target_fingerprint: str
    prompt_set: str
    prompts: int
    threads: int
    quantize: str  # the runtime every method ran (targets.runtime), `auto` resolved
    # Timings on a shared machine are only as good as its idle time: keep the load with them.
    load_average_1m: dict[str, float]  # before and after
    files: dict[str, str]  # csv, md, png
    rows: list[dict[str, Any]]  # one per method (specdec.bench.runner)


def run(cfg: Config, ctx: RunContext) -> Result:
    check_request(cfg)
    sampling = Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
    target = ctx.target(cfg)
    set_name = prompt_set_name(cfg, target.spec)
    methods: list[Method] = [vanilla_method(target)]
    # Drafts load first: a checkpoint for another target fails before the assistant trains.
    drafts = [draft_method(target, str(directory), cfg, cfg.adaptive)
              for directory in cfg.drafts]
    if "assisted" in cfg.baselines:
        train = prepare(target, prompt_set(set_name, "train", cfg.assistant.train_prompts))
        assistant = ensure_assistant(target, train, cfg.assistant, ctx.home)
        methods.append(assisted_method(target, assistant, cfg.assistant_tokens))
    if "prompt_lookup" in cfg.baselines:
        methods.append(prompt_lookup_method(target, cfg.prompt_lookup_tokens))
    methods += drafts
    prompts = prepare(target, prompt_set(set_name, "test", cfg.n_prompts))
    load_before = os.getloadavg()
    rows = run_bench(methods, prompts, BenchSettings(sampling, cfg.threads, cfg.warmup,
                                                              repeats=cfg.repeats))
    title = (f"draftnas bench: {target.spec}, {len(prompts)} {set_name} prompts, "
             f"{cfg.max_new_tokens} new tokens, temperature {cfg.temperature}, "
             f"threads={cfg.threads}, quantize={target.quantize}")
    files = write_report(rows, Path(cfg.run_dir), title)
    for path in files.values():
        print(path)
    print(files["md"].read_text())
    return Result(target=target.spec, target_fingerprint=target.fingerprint, prompt_set=set_name,
                  prompts=len(prompts), threads=cfg.threads, quantize=target.quantize,
                  load_average_1m={"before": load_before[0], "after": os.getloadavg()[0]},
                  files={kind: str(path) for kind, path in files.items()}, rows=rows)


def check_request(cfg: Config) -> None:
    unknown = sorted(set(cfg.baselines) - set(BASELINES))
    if unknown:
        raise UserError(f"baselines: unknown {unknown}; use any of {list(BASELINES)}")
    for name in ("n_prompts", "max_new_tokens", "threads", "repeats", "assistant_tokens",
                 "prompt_lookup_tokens"):
        if getattr(cfg, name) < 1:
            raise UserError(f"{name}: {getattr(cfg, name)}; use a positive number")
    for name in ("steps", "train_prompts", "batch_size", "response_tokens"):
        if getattr(cfg.assistant, name) < 1:
            raise UserError(f"assistant.{name}: {getattr(cfg.assistant, name)}; "
                            "use a positive number")
    for directory in cfg.drafts:
        if not Path(directory).is_dir():
            raise UserError(f"drafts: '{directory}' is not a directory; give draft checkpoint "
                            "directories (config.json + model.safetensors)")


def prompt_set_name(cfg: Config, spec: str) -> str:
    if cfg.prompts != "auto":
        if cfg.prompts not in EMBEDDED_TARGETS:
            raise UserError(f"prompts: unknown set '{cfg.prompts}'; use auto or one of "
                            f"{list(EMBEDDED_TARGETS)}")
        return cfg.prompts
    name, _ = split_spec(spec)
    if name not in EMBEDDED_TARGETS:
        raise UserError(f"prompts: target '{spec}' has no prompt set of its own; set "
                        "prompts=smollm2 (instructions) or prompts=shapes (easy-vqa images)")
    return name


def prepare(target: Target, prompts: list[tuple[str, Any]]) -> list[PreparedInputs]:
    """Chat template and processor once per prompt: every method gets the very same tensors."""
    if not target.is_vlm and any(image is not None for _, image in prompts):
        raise UserError(f"prompts: this set has images but target '{target.spec}' is text-only; "
                        "use prompts=smollm2")
    return [target.prepare(prompt=text, images=[image] if image is not None else None)
            for text, image in prompts]
