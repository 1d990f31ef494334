"""Turning a user's prompt (+ images) or a processor's output dict into model inputs.

A prompt goes through the chat template when the processor or tokenizer has one (otherwise it is
tokenized as is). A ready-made `inputs` dict is taken as is: `input_ids` plus whatever the family
needs (pixel_values, image_sizes, image_grid_thw, token_type_ids, ...); a 2D padding mask of ones
is dropped because the adapter builds its own masks.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from targets.errors import TargetError
from targets.images import read_image


def prepare_inputs(target, *, prompt=None, images=None, inputs=None) -> tuple[torch.Tensor, dict]:
    if inputs is not None:
        if prompt is not None or images is not None:
            raise TargetError("prepare: pass either inputs or prompt/images, not both")
        return _from_inputs(inputs)
    if prompt is None:
        raise TargetError("prepare: give a prompt (and images for a VLM) or a processor's inputs")
    image_list = _load_images(images)
    if image_list and not target.is_vlm:
        raise TargetError(f"images: target {target.spec!r} is a text-only model; drop the images")
    if image_list or (target.processor is not None and target.is_vlm):
        if target.processor is None:
            raise TargetError(
                f"target {target.spec!r} has no processor; pass ready-made inputs= instead of a prompt"
            )
        return _from_inputs(_process(target.processor, prompt, image_list))
    if target.tokenizer is None:
        raise TargetError(
            f"target {target.spec!r} has no tokenizer; pass ready-made inputs= instead of a prompt"
        )
    return _from_inputs(_tokenize(target.tokenizer, prompt))


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


def _chat(processor_or_tokenizer, prompt: str, num_images: int) -> str | None:
    if getattr(processor_or_tokenizer, "chat_template", None) is None:
        return None
    content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    return processor_or_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )


def _process(processor, prompt: str, images: list) -> Mapping:
    text = _chat(processor, prompt, len(images)) or prompt
    kwargs = {"images": images} if images else {}
    return processor(text=text, return_tensors="pt", **kwargs)


def _tokenize(tokenizer, prompt: str) -> Mapping:
    if getattr(tokenizer, "chat_template", None) is not None:
        messages = [{"role": "user", "content": prompt}]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(text, return_tensors="pt", add_special_tokens=False)
    return tokenizer(prompt, return_tensors="pt")
