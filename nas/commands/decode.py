"""Generate with speculative decoding: a target plus a draft checkpoint (or none), and the stats.

Prints the output text and tau (tokens per target forward, the bonus token included), the
acceptance by depth and tokens/s; format=json prints the whole result as one JSON line instead.

keys:
  target          shapes | smollm2 | a Hugging Face model id | a local model directory
  draft           a draft checkpoint directory (config.json + model.safetensors), or none for
                  the plain target through the same decoder (the vanilla baseline)
  prompt          text to answer (the chat template is applied when the target has one)
  image           an image file for a vision-language target
  format          text | json
  mode            chain (k draft tokens per step) | tree (EAGLE-2 dynamic tree)
  k               chain length
  depth, top_k, total_tokens   the tree: longest path, children per expanded node, nodes with root
                  (all five null: the draft's recommended shape, else the defaults tree 6/4/32;
                  any given key goes on top of it: specdec.recommended)
  adaptive        true: plain steps while drafting measures slower (probed again later)
  stop_below      a step's tree stops growing once its best frontier node's cumulative draft
                  probability is below it; 0: always the whole shape
  max_new_tokens, temperature (0 = greedy), top_p, seed
  device, dtype   where and in which precision to load the target (the draft follows)
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nas.commands import CommandConfig
from nas.run_context import RunContext, ServeConfig
from nas.user_errors import UserError
from specdec import DraftModel, SpeculativeDecoder
from specdec.decoder import check_sampling
from specdec.recommended import ShapeKeys, shaped_config
from targets.images import read_image

FORMATS = ("text", "json")


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig, ShapeKeys):
    adaptive: bool
    stop_below: float
    draft: str
    prompt: str | None
    image: Path | None
    format: str
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None


@dataclass(kw_only=True)
class Result:
    target: str
    target_fingerprint: str
    draft: str
    decode: dict[str, str]  # the shape decoded with ("tree 6/4/32") and where it came from
    prompt: str
    text: str
    token_ids: list[int]
    stats: dict[str, Any]  # DecodeStats.to_dict()


def run(cfg: Config, ctx: RunContext) -> Result:
    if cfg.format not in FORMATS:
        raise UserError(f"format: '{cfg.format}'; use one of {', '.join(FORMATS)}")
    if cfg.prompt is None:
        raise UserError("prompt: missing; add prompt='<text to answer>'")
    check_sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p)
    image = read_image(cfg.image) if cfg.image else None
    target = ctx.target(cfg)
    if image is not None and not target.is_vlm:
        raise UserError(f"image: target '{target.spec}' is text-only; drop image= or pick a VLM")
    draft = None if cfg.draft.lower() == "none" else DraftModel.from_pretrained(cfg.draft, target)
    settings, shape_source = shaped_config(draft.config.decode if draft is not None else None,
                                           cfg, adaptive=cfg.adaptive,
                                           stop_below=cfg.stop_below)
    generation = SpeculativeDecoder(target, draft, settings).generate(
        prompt=cfg.prompt, images=[image] if image is not None else None,
        max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
        seed=cfg.seed)
    result = Result(target=target.spec, target_fingerprint=target.fingerprint, draft=cfg.draft,
                    decode={"shape": settings.shape.label, "source": shape_source},
                    prompt=cfg.prompt, text=generation.text, token_ids=generation.token_ids,
                    stats=generation.stats.to_dict())
    if cfg.format == "json":
        print(json.dumps(asdict(result)))
    else:
        print_summary(result)
    return result


def print_summary(result: Result) -> None:
    stats = result.stats
    tau = "n/a (no step after the prefill)" if stats["tau"] is None else f"{stats['tau']:.2f}"
    acceptance = ", ".join(f"{rate:.2f}" for rate in stats["acceptance_by_depth"]) or "none"
    print(f"output: {result.text}")
    print(f"decoding shape: {result.decode['shape']} ({result.decode['source']})")
    print(f"tokens: {stats['new_tokens']} in {stats['time_total']:.3f}s "
          f"({stats['tokens_per_second']:.1f} tokens/s), target forwards: {stats['steps']} "
          f"({stats['drafted_steps']} drafted)")
    print(f"tau (tokens per target forward, bonus token included): {tau}")
    print(f"acceptance by depth (drafted steps): {acceptance}")
    print(f"time: target {stats['time_target']:.3f}s, draft {stats['time_draft']:.3f}s, "
          f"overhead {stats['time_overhead']:.3f}s")
