"""Build or load a target and print its facts: family, sizes, layers, fingerprint, cache path.

With prompt= (and image= for a vision-language target) it also generates greedily through the
target adapter (prefill, then one token per forward) and prints the text.

keys:
  target          shapes | smollm2 | a Hugging Face model id | a local model directory
  name            alias of target (as in `draftnas target name=smollm2`); wins when set
  device, dtype   where and in which precision to load it (cpu, cuda; float32, bfloat16, float16)
  prompt          text to answer (the chat template is applied when the target has one)
  image           an image file for a vision-language target; needs prompt=
  max_new_tokens  how many tokens to generate at most
"""

import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from PIL import Image

from nas.commands import CommandConfig
from nas.greedy import greedy_generate
from nas.run_context import RunContext, ServeConfig
from nas.user_errors import UserError
from targets import Target
from targets.images import read_image


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig):
    name: str | None
    prompt: str | None
    image: Path | None
    max_new_tokens: int


@dataclass(kw_only=True)
class Result:
    spec: str  # with its build for an embedded target (shapes:full), absolute for a directory
    family: str
    is_vlm: bool
    num_layers: int
    hidden_size: int
    num_heads: int
    vocab_size: int
    max_positions: int
    parameters: int
    quantize: str  # the runtime it serves with (targets.runtime), `auto` resolved
    fingerprint: str
    path: str
    load_seconds: float  # 0 for a target this process had loaded already
    # With prompt=: the greedy generation.
    prompt: str | None = None
    prompt_tokens: int | None = None
    token_ids: list[int] | None = None
    text: str | None = None
    generate_seconds: float | None = None
    tokens_per_second: float | None = None


# What every run prints: the fields without a default (the generation's have one).
FACTS = [field.name for field in fields(Result) if field.default is MISSING]


def run(cfg: Config, ctx: RunContext) -> Result:
    check_generation_request(cfg)
    image = read_image(cfg.image) if cfg.image else None
    started = time.perf_counter()
    target = ctx.target(cfg, cfg.name)
    result = Result(**target_facts(target), load_seconds=round(time.perf_counter() - started, 3))
    print_facts(result)
    if cfg.prompt is None:
        return result
    if image is not None and not target.is_vlm:
        raise UserError(f"image: target '{target.spec}' is text-only; drop image= or pick a VLM "
                        "target")
    generation = generate(target, cfg.prompt, image, cfg.max_new_tokens)
    print(f"prompt: {cfg.prompt}")
    print(f"output: {generation['text']}")
    return Result(**{**asdict(result), **generation})


def check_generation_request(cfg: Config) -> None:
    if cfg.image is not None and cfg.prompt is None:
        raise UserError("image: given without prompt=; add prompt='<question about the image>'")
    if cfg.max_new_tokens < 1:
        raise UserError(f"max_new_tokens: {cfg.max_new_tokens}; use a positive number")


def target_facts(target: Target) -> dict[str, str | int | bool]:
    return {
        "spec": target.spec,
        "family": target.family,
        "is_vlm": target.is_vlm,
        "num_layers": target.num_layers,
        "hidden_size": target.hidden_size,
        "num_heads": target.num_heads,
        "vocab_size": target.vocab_size,
        "max_positions": target.max_positions,
        "parameters": target.num_parameters,
        "quantize": target.quantize,
        "fingerprint": target.fingerprint,
        "path": str(target.path),
    }


def print_facts(result: Result) -> None:
    width = max(map(len, FACTS))
    for key in FACTS:
        print(f"{key.ljust(width)}  {getattr(result, key)}")


def generate(target: Target, prompt: str, image: Image.Image | None, max_new_tokens: int) -> dict:
    prepared = target.prepare(prompt=prompt, images=[image] if image is not None else None)
    prompt_tokens = prepared.input_ids.shape[1]
    if prompt_tokens + max_new_tokens > target.max_positions:
        raise UserError(
            f"prompt: {prompt_tokens} tokens + max_new_tokens={max_new_tokens} exceed the "
            f"target's context of {target.max_positions}; shorten the prompt or lower max_new_tokens"
        )
    started = time.perf_counter()
    token_ids = greedy_generate(target, prepared, max_new_tokens)
    seconds = time.perf_counter() - started
    tokenizer = target.tokenizer
    return {
        "prompt": prompt,
        "prompt_tokens": prompt_tokens,
        "token_ids": token_ids,
        "text": tokenizer.decode(token_ids, skip_special_tokens=True),
        "generate_seconds": round(seconds, 3),
        "tokens_per_second": round(len(token_ids) / seconds, 2) if seconds > 0 else None,
    }
