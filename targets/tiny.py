"""Tiny random targets of every family, built offline from configs (tests of every package use them).

Each is fp32 with sdpa attention, 2 decoder layers of width 32, a 128-token vocabulary and a
16x16 image, small enough that the whole test suite stays fast on 2 CPU cores. There is no
tokenizer or processor: `tiny_inputs` builds the processor-style dict a real processor would give.
Gemma3 and Mistral get a short sliding window (8) so that windowed attention is exercised.
"""

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    Gemma3Config,
    Gemma3TextConfig,
    Idefics3Config,
    Idefics3VisionConfig,
    LlamaConfig,
    LlavaConfig,
    Mistral3Config,
    MistralConfig,
    PixtralVisionConfig,
    PretrainedConfig,
    Qwen2_5_VLConfig,
    Qwen2Config,
    Qwen2VLConfig,
    SiglipVisionConfig,
)

from targets.errors import TargetError
from targets.target import PreparedInputs, Target

TINY_FAMILIES = (
    "llava_clip",
    "llava_pixtral",
    "mistral3",
    "idefics3",
    "gemma3",
    "qwen2_vl",
    "qwen2_5_vl",
    "llama",
    "mistral",
    "qwen2",
)

HIDDEN = 32
IMAGE_SIZE = 16
PATCH = 4
SLIDING_WINDOW = 8
BOS, EOS, PAD = 1, 2, 0
# Ids of the last vocabulary entries are reserved for image placeholders (see `_image_token`).
_RESERVED = 4

_TEXT = {
    "hidden_size": HIDDEN,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "bos_token_id": BOS,
    "eos_token_id": EOS,
    "pad_token_id": PAD,
}
_VISION = {
    "hidden_size": HIDDEN,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": IMAGE_SIZE,
    "patch_size": PATCH,
}


def _image_token(vocab_size: int) -> int:
    return vocab_size - 1


def _config(family: str, vocab_size: int) -> PretrainedConfig:
    text = dict(_TEXT, vocab_size=vocab_size)
    image = _image_token(vocab_size)
    if family == "llama":
        return LlamaConfig(**text)
    if family == "mistral":
        return MistralConfig(**text, sliding_window=SLIDING_WINDOW)
    if family == "qwen2":
        return Qwen2Config(**text)
    if family == "llava_clip":
        vision = CLIPVisionConfig(**_VISION, projection_dim=HIDDEN)
        return LlavaConfig(
            vision_config=vision,
            text_config=LlamaConfig(**text),
            image_token_index=image,
            image_seq_length=(IMAGE_SIZE // PATCH) ** 2,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
    if family == "llava_pixtral":
        vision = PixtralVisionConfig(**_VISION, head_dim=HIDDEN // 2)
        return LlavaConfig(
            vision_config=vision,
            text_config=MistralConfig(**text, sliding_window=None),
            image_token_index=image,
            image_seq_length=(IMAGE_SIZE // PATCH) ** 2,
            vision_feature_layer=-1,
            vision_feature_select_strategy="full",
        )
    if family == "mistral3":
        vision = PixtralVisionConfig(**_VISION, head_dim=HIDDEN // 2)
        return Mistral3Config(
            vision_config=vision,
            text_config=MistralConfig(**text, sliding_window=SLIDING_WINDOW),
            image_token_index=image,
            spatial_merge_size=2,
        )
    if family == "idefics3":
        vision = Idefics3VisionConfig(**_VISION)
        return Idefics3Config(
            vision_config=vision,
            text_config=LlamaConfig(**text),
            image_token_id=image,
            scale_factor=2,
        )
    if family == "gemma3":
        gemma_text = Gemma3TextConfig(
            **text,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=SLIDING_WINDOW,
            layer_types=["sliding_attention", "full_attention"],
        )
        vision = SiglipVisionConfig(**_VISION)
        return Gemma3Config(
            text_config=gemma_text,
            vision_config=vision,
            mm_tokens_per_image=4,
            image_token_index=image,
            boi_token_index=image - 1,
            eoi_token_index=image - 2,
        )
    if family in ("qwen2_vl", "qwen2_5_vl"):
        qwen_text = dict(text, rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2]})
        if family == "qwen2_vl":
            vision = {
                "depth": 2,
                "embed_dim": HIDDEN,
                "hidden_size": HIDDEN,
                "num_heads": 2,
                "patch_size": PATCH,
            }
            config_class = Qwen2VLConfig
        else:
            vision = {
                "depth": 2,
                "hidden_size": HIDDEN,
                "intermediate_size": 64,
                "out_hidden_size": HIDDEN,
                "num_heads": 2,
                "patch_size": PATCH,
                "window_size": 2 * PATCH,
                "fullatt_block_indexes": [1],
            }
            config_class = Qwen2_5_VLConfig
        return config_class(
            text_config=qwen_text,
            vision_config=vision,
            image_token_id=image,
            video_token_id=image - 1,
            vision_start_token_id=image - 2,
            vision_end_token_id=image - 3,
        )
    raise TargetError(f"tiny family {family!r} is unknown; use one of {', '.join(TINY_FAMILIES)}")


def tiny_target(family: str, *, seed: int = 0, vocab_size: int = 128,
                quantize: str = "none") -> Target:
    """A tiny random target of `family` (one of TINY_FAMILIES), deterministic in `seed`, served
    in runtime `quantize` (targets.runtime)."""
    config = _config(family, vocab_size)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    is_vlm = family not in ("llama", "mistral", "qwen2")
    model_class = AutoModelForImageTextToText if is_vlm else AutoModelForCausalLM
    model = model_class.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    return Target(model, spec=f"tiny:{family}", quantize=quantize)


def tiny_inputs(target: Target, n_text: int = 8, seed: int = 0) -> PreparedInputs:
    """A valid prompt of `n_text` random text tokens (>= 3), with one image for a VLM.

    Layout: BOS, two text tokens, the image placeholders, the remaining text tokens.
    """
    if n_text < 3:
        raise TargetError(f"n_text={n_text}; tiny prompts need at least 3 text tokens")
    generator = torch.Generator().manual_seed(seed)
    text = torch.randint(3, target.vocab_size - _RESERVED, (n_text - 1,), generator=generator)
    family = _tiny_family(target)
    if not target.is_vlm:
        ids = torch.cat([torch.tensor([BOS]), text])[None]
        return target.prepare(inputs={"input_ids": ids})
    pixels = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    n_image, extra = _image_inputs(family, target.model.config, pixels)
    placeholders = torch.full((n_image,), _image_token(target.vocab_size))
    ids = torch.cat([torch.tensor([BOS]), text[:2], placeholders, text[2:]])[None]
    image_types = (ids == _image_token(target.vocab_size)).long()
    if family == "gemma3":
        extra["token_type_ids"] = image_types
    if family in ("qwen2_vl", "qwen2_5_vl"):
        extra["mm_token_type_ids"] = image_types
    return target.prepare(inputs={"input_ids": ids, **extra})


def _tiny_family(target: Target) -> str:
    if target.family != "llava":
        return target.family
    is_pixtral = target.model.config.vision_config.model_type == "pixtral"
    return "llava_pixtral" if is_pixtral else "llava_clip"


def _image_inputs(family: str, config: PretrainedConfig, pixels: torch.Tensor) -> tuple[int, dict]:
    """Number of image placeholder tokens and the pixel inputs of one image, as processors give."""
    patches_per_side = IMAGE_SIZE // PATCH
    if family == "llava_clip":
        return patches_per_side**2, {"pixel_values": pixels}
    if family == "llava_pixtral":
        return patches_per_side**2, {
            "pixel_values": pixels,
            "image_sizes": torch.tensor([[IMAGE_SIZE, IMAGE_SIZE]]),
        }
    if family == "mistral3":
        merged = patches_per_side // config.spatial_merge_size
        return merged**2, {
            "pixel_values": pixels,
            "image_sizes": torch.tensor([[IMAGE_SIZE, IMAGE_SIZE]]),
        }
    if family == "idefics3":
        tokens = (patches_per_side // config.scale_factor) ** 2
        return tokens, {
            "pixel_values": pixels[:, None],
            "pixel_attention_mask": torch.ones(1, 1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool),
        }
    if family == "gemma3":
        return config.mm_tokens_per_image, {"pixel_values": pixels}
    # Qwen: flattened patches of temporal_patch_size frames, grouped by spatial merge blocks.
    vision = config.vision_config
    temporal, merge = vision.temporal_patch_size, vision.spatial_merge_size
    frames = pixels.repeat(temporal, 1, 1, 1)  # a still image is repeated over time
    grid = patches_per_side // merge
    patches = frames.reshape(temporal, 3, grid, merge, PATCH, grid, merge, PATCH)
    patches = patches.permute(2, 5, 3, 6, 1, 0, 4, 7)
    flat = patches.reshape(patches_per_side**2, 3 * temporal * PATCH * PATCH)
    thw = torch.tensor([[1, patches_per_side, patches_per_side]])
    return patches_per_side**2 // merge**2, {"pixel_values": flat, "image_grid_thw": thw}
