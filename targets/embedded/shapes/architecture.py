"""The `shapes` model and processor: transformers' own LLaVA (CLIP tower + Llama), sized by a recipe."""

from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from targets.embedded.shapes.recipe import ShapesRecipe
from targets.embedded.shapes.tokenizer import CHAT_TEMPLATE, IMAGE

# Longest description plus prompt is ~150 tokens; leave room for multi-turn use.
MAX_POSITIONS = 512
MAX_NEW_TOKENS = 96


def image_token_count(recipe: ShapesRecipe) -> int:
    return (recipe.image_size // recipe.patch_size) ** 2


def build_processor(recipe: ShapesRecipe, tokenizer: PreTrainedTokenizerFast) -> LlavaProcessor:
    # The PIL image processor: the torchvision one is not installed (and must not be).
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": recipe.image_size},
        crop_size={"height": recipe.image_size, "width": recipe.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=recipe.patch_size,
        vision_feature_select_strategy="default",  # drop CLS: one token per patch
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE,
    )


def build_model(recipe: ShapesRecipe, tokenizer: PreTrainedTokenizerFast) -> LlavaForConditionalGeneration:
    """A randomly initialised model (seed torch first for reproducible weights)."""
    vision = CLIPVisionConfig(
        hidden_size=recipe.vision_hidden,
        intermediate_size=4 * recipe.vision_hidden,
        num_hidden_layers=recipe.vision_layers,
        num_attention_heads=recipe.vision_heads,
        image_size=recipe.image_size,
        patch_size=recipe.patch_size,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.text_hidden,
        intermediate_size=recipe.text_intermediate,
        num_hidden_layers=recipe.text_layers,
        num_attention_heads=recipe.text_heads,
        num_key_value_heads=recipe.text_heads,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        image_seq_length=image_token_count(recipe),
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    return model
