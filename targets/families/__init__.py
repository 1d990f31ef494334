"""What differs between model families, kept to data plus two small helpers (`masks`, `mrope`).

Every family runs through the same forward in `targets.target`; a family only says how its image
tokens are marked, which prefill inputs it needs, and whether its positions are mrope.
"""

from dataclasses import dataclass

from transformers import PretrainedConfig

VLM_FAMILIES = ("llava", "mistral3", "idefics3", "gemma3", "qwen2_vl", "qwen2_5_vl")
# model_type -> family; SmolVLM is Idefics3's architecture under its own name.
_FAMILY_OF_MODEL_TYPE = {
    "llava": "llava",
    "mistral3": "mistral3",
    "idefics3": "idefics3",
    "smolvlm": "idefics3",
    "gemma3": "gemma3",
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
}


@dataclass(frozen=True)
class FamilyTraits:
    name: str
    is_vlm: bool
    # Qwen2-VL / Qwen2.5-VL rotate by 3D (time, height, width) positions.
    uses_mrope: bool = False
    # Gemma3 lets the tokens of one image attend to each other both ways at prefill.
    bidirectional_images: bool = False


def family_of(config: PretrainedConfig) -> FamilyTraits:
    """The family of a model config; any other model type is served as a plain causal LM."""
    name = _FAMILY_OF_MODEL_TYPE.get(config.model_type, "causal_lm")
    return FamilyTraits(
        name=name,
        is_vlm=name in VLM_FAMILIES,
        uses_mrope=name in ("qwen2_vl", "qwen2_5_vl"),
        bidirectional_images=name == "gemma3",
    )


def image_token_id(config: PretrainedConfig) -> int | None:
    """The placeholder id that the processor repeats once per image feature."""
    for key in ("image_token_id", "image_token_index"):
        value = getattr(config, key, None)
        if value is not None:
            return int(value)
    return None


def layer_windows(text_config: PretrainedConfig) -> list[int | None]:
    """Sliding window of each decoder layer (None = full attention), as transformers applies it."""
    num_layers = text_config.num_hidden_layers
    window = getattr(text_config, "sliding_window", None)
    layer_types = getattr(text_config, "layer_types", None)
    if layer_types is not None:
        return [window if kind == "sliding_attention" else None for kind in layer_types]
    # Families without layer_types (Mistral, Mixtral) slide every layer when a window is set.
    return [window] * num_layers
