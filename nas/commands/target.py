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
from dataclasses import dataclass
from typing import Any

from PIL import Image

from nas.commands import CommandConfig
from nas.greedy import greedy_generate
from nas.target_loading import load_configured_target
from nas.user_errors import UserError
from targets import Target
from targets.images import read_image


@dataclass(kw_only=True)
class Config(CommandConfig):
    target: str
    name: str | None
    device: str
    dtype: str
    prompt: str | None
    image: str | None
    max_new_tokens: int


def run(cfg: Config) -> dict[str, Any]:
    check_generation_request(cfg)
    image = read_image(cfg.image) if cfg.image else None
    spec = cfg.name or cfg.target
    started = time.perf_counter()
    target = load_configured_target(spec, cfg.device, cfg.dtype)
    facts = target_facts(target)
    facts["load_seconds"] = round(time.perf_counter() - started, 3)
    print_facts(facts)
    if cfg.prompt is None:
        return facts
    if image is not None and not target.is_vlm:
        raise UserError(f"image: target '{spec}' is text-only; drop image= or pick a VLM target")
    generation = generate(target, cfg.prompt, image, cfg.max_new_tokens)
    print(f"prompt: {cfg.prompt}")
    print(f"output: {generation['text']}")
    return facts | generation


def check_generation_request(cfg: Config) -> None:
    if cfg.image is not None and cfg.prompt is None:
        raise UserError("image: given without prompt=; add prompt='<question about the image>'")
    if cfg.max_new_tokens < 1:
        raise UserError(f"max_new_tokens: {cfg.max_new_tokens}; use a positive number")


def target_facts(target: Target) -> dict[str, Any]:
    return {
        "spec": target.spec,
        "family": target.family,
        "is_vlm": target.is_vlm,
        "num_layers": target.num_layers,
        "hidden_size": target.hidden_size,
        "num_heads": target.num_heads,
        "vocab_size": target.vocab_size,
        "max_positions": target.max_positions,
        "parameters": sum(p.numel() for p in target.model.parameters()),
        "fingerprint": target.fingerprint,
        "path": str(target.path),
    }


def print_facts(facts: dict[str, Any]) -> None:
    width = max(map(len, facts))
    for key, value in facts.items():
        print(f"{key.ljust(width)}  {value}")


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
