"""Turning a user's prompt or chat turns (+ images), or a processor's output dict, into model inputs.

A prompt or chat turns go through the chat template when the processor or tokenizer has one
(otherwise a prompt is tokenized as is, and turns one line each). A ready-made `inputs` dict is taken as is: `input_ids` plus whatever the family
needs (pixel_values, image_sizes, image_grid_thw, token_type_ids, ...); a 2D padding mask of ones
is dropped because the adapter builds its own masks.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from targets.errors import TargetError
from targets.images import read_image


def prepare_inputs(target, *, prompt=None, images=None, inputs=None,
                   messages=None) -> tuple[torch.Tensor, dict]:
    """`messages`: chat turns {role, content}, the content a string or a list of text and image
    parts (one image part per image); a prompt is one user turn with the images before its text."""
    if inputs is not None:
        if prompt is not None or images is not None or messages is not None:
            raise TargetError("prepare: pass either inputs or prompt/messages/images, not several")
        return _from_inputs(inputs)
    if (prompt is None) == (messages is None):
        raise TargetError("prepare: give a prompt or chat messages (and images for a VLM), or a "
                          "processor's inputs")
    image_list = _load_images(images)
    if image_list and not target.is_vlm:
        raise TargetError(f"images: target {target.spec!r} is a text-only model; drop the images")
    if image_list or (target.processor is not None and target.is_vlm):
        if target.processor is None:
            raise TargetError(
                f"target {target.spec!r} has no processor; pass ready-made inputs= instead of a prompt"
            )
        turns = messages if messages is not None else _one_turn(prompt, len(image_list))
        return _from_inputs(_process(target.processor, turns, prompt, image_list))
    if target.tokenizer is None:
        raise TargetError(
            f"target {target.spec!r} has no tokenizer; pass ready-made inputs= instead of a prompt"
        )
    return _from_inputs(_tokenize(target.tokenizer, prompt, messages))


def _from_inputs(inputs: Mapping) -> tuple[torch.Tensor, dict]:
    if "input_ids" not in inputs:
        raise TargetError("inputs: no 'input_ids'; pass the processor's output dict as is")
    input_ids = torch.as_tensor(inputs["input_ids"]).long()
    if input_ids.ndim == 1:
        input_ids = input_ids[None]
    model_kwargs = {}
    for key, value in inputs.items():
        if key == "input_ids":
            continue
        if key == "attention_mask":
            if not torch.as_tensor(value).bool().all():
                raise TargetError("inputs: attention_mask has padding; pass one unpadded prompt")
            continue
        model_kwargs[key] = value
    return input_ids, model_kwargs


def _load_images(images) -> list:
    if images is None:
        return []
    if isinstance(images, (str, Path)) or not isinstance(images, Sequence):
        images = [images]
    return [read_image(image) if isinstance(image, (str, Path)) else image for image in images]


def _one_turn(prompt: str, num_images: int) -> list[dict]:
    content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": prompt}]
    return [{"role": "user", "content": content}]


def _chat(processor_or_tokenizer, messages: list[dict]) -> str | None:
    if getattr(processor_or_tokenizer, "chat_template", None) is None:
        return None
    return processor_or_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )


def _process(processor, messages: list[dict], prompt: str | None, images: list) -> Mapping:
    text = _chat(processor, messages) or prompt or _plain(messages)
    kwargs = {"images": images} if images else {}
    return processor(text=text, return_tensors="pt", **kwargs)


def _tokenize(tokenizer, prompt: str | None, messages: list[dict] | None) -> Mapping:
    if getattr(tokenizer, "chat_template", None) is not None:
        # A text model's template takes each turn's content as one string.
        turns = [{"role": "user", "content": prompt}] if messages is None else [
            {"role": turn["role"], "content": _text(turn["content"])} for turn in messages]
        return tokenizer(_chat(tokenizer, turns), return_tensors="pt", add_special_tokens=False)
    return tokenizer(prompt if messages is None else _plain(messages), return_tensors="pt")


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _plain(messages: list[dict]) -> str:
    """Turns as text for a model without a chat template: one line per turn."""
    return "\n".join(f"{turn['role']}: {_text(turn['content'])}" for turn in messages)
