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
  drafts          draft checkpoint directories made for this target, e.g. drafts=[a,b]; each
                  row names a draft by its directory (by the folder above a `draft/`)
  data            the prompts: data=<source> (null: the embedded target's own set), data.* keys
                  (userdata.DataConfig); the bench uses its test split, the assistant trains on
                  its train split
  n_prompts       how many test prompts; max_new_tokens, temperature (0 = greedy), top_p, seed
  mode, k, depth, top_k, total_tokens   how our decoder drafts (tree: EAGLE-2 dynamic tree);
                  null: each draft's recommended shape (else tree 6/4/32), given keys on top
  adaptive        true: skip drafting while it measures slower than plain steps (probing it
                  again with back-off); false: draft every step
  stop_below      a step's tree stops growing once its best frontier node's cumulative draft
                  probability is below it; 0: always the whole shape
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
    draft_names,
    prompt_lookup_method,
    vanilla_method,
)
from specdec.bench.report import write_report
from specdec.bench.runner import BenchSettings, run_bench
from specdec.recommended import ShapeKeys
from userdata import DataConfig, UserData

BASELINES = ("assisted", "prompt_lookup")


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig, ShapeKeys):
    adaptive: bool
    stop_below: float
    drafts: list[Path]
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
    data: DataConfig = field(default_factory=DataConfig)


@dataclass(kw_only=True)
class Result:
    target: str
    target_fingerprint: str
    prompt_set: str  # the data's name: an embedded set, a file's or a data set's
    prompts: int
    threads: int
    quantize: str  # the runtime every method ran (targets.runtime), `auto` resolved
    # Timings on a shared machine are only as good as its idle time: keep the load with them.
    load_average_1m: dict[str, float]  # before and after
    files: dict[str, str]  # csv, md, png
    rows: list[dict[str, Any]]  # one per method (specdec.bench.runner)
    data: dict[str, Any]  # the test rows benched, the assistant's train rows (userdata)


def run(cfg: Config, ctx: RunContext) -> Result:
    check_request(cfg)
    sampling = Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
    data = UserData(cfg.data, ctx.spec(cfg.target))  # bad data fails before the target loads
    target = ctx.target(cfg)
    # The test prompts and the drafts first: bad rows, or a checkpoint for another target, fail
    # before the assistant trains.
    prompts = data.take(target, "test", cfg.n_prompts, cfg.max_new_tokens).inputs
    methods: list[Method] = [vanilla_method(target)]
    drafts = [draft_method(target, str(directory), cfg, cfg.adaptive, cfg.stop_below, name)
              for directory, name in zip(cfg.drafts, draft_names(cfg.drafts), strict=True)]
    if "assisted" in cfg.baselines:
        train = data.take(target, "train", cfg.assistant.train_prompts,
                          cfg.assistant.response_tokens).inputs
        assistant = ensure_assistant(target, train, cfg.assistant, ctx.home)
        methods.append(assisted_method(target, assistant, cfg.assistant_tokens))
    if "prompt_lookup" in cfg.baselines:
        methods.append(prompt_lookup_method(target, cfg.prompt_lookup_tokens))
    methods += drafts
    load_before = os.getloadavg()
    rows = run_bench(methods, prompts, BenchSettings(sampling, cfg.threads, cfg.warmup,
                                                              repeats=cfg.repeats))
    title = (f"draftnas bench: {target.spec}, {len(prompts)} {data.name} test prompts, "
             f"{cfg.max_new_tokens} new tokens, temperature {cfg.temperature}, "
             f"threads={cfg.threads}, quantize={target.quantize}")
    files = write_report(rows, Path(cfg.run_dir), title)
    for path in files.values():
        print(path)
    print(files["md"].read_text())
    return Result(target=target.spec, target_fingerprint=target.fingerprint,
                  prompt_set=data.name, prompts=len(prompts), threads=cfg.threads,
                  quantize=target.quantize,
                  load_average_1m={"before": load_before[0], "after": os.getloadavg()[0]},
                  files={kind: str(path) for kind, path in files.items()}, rows=rows,
                  data=data.report())


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
