"""The recipe of the `shapes` target: model sizes, training schedule and data; its hash names the cache.

`full` is the real target (the default); `test` is a tiny, quick build for the test suite: a working,
loadable LLaVA directory whose quality is not the point; `smoke` is `test` with the full target's 4
text layers (a space with entropy-chosen layers needs intermediate layers to rank), built in
seconds for `draftnas pipeline budget=smoke`.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from targets.embedded.shapes.data import DATA_VERSION
from targets.errors import TargetError

# Bump when the training code changes what a recipe builds.
CODE_VERSION = 2


@dataclass(frozen=True)
class ShapesRecipe:
    # Vision tower (CLIP, from scratch): 64x64 images in 16x16 patches -> 16 image tokens (8x8
    # patches, 64 tokens, made training 2x slower: over the 10-minute budget on 2 shared cores).
    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    # Language model (Llama, from scratch).
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate: int = 688
    # Stage 1: the vision tower alone learns the image facts through auxiliary heads, because
    # the language loss alone leaves a from-scratch tower ignored (answers stay at the prior).
    # Shape is the slow fact: test accuracy ~50% until step ~500, then 92% by step 1200.
    vision_steps: int = 1500
    vision_batch: int = 64
    vision_lr: float = 3e-3
    # Stage 2: the whole model on descriptions and question conversations, auxiliary loss kept.
    # 600 steps left answers at 86% and descriptions repeating sentences: the language stage was
    # the bottleneck (probe loss already 0.09), so it runs 1000 steps.
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    aux_weight: float = 0.5
    questions_per_conversation: int = 4
    train_images: int | None = None  # None: all 4000
    seed: int = 0
    data_version: str = DATA_VERSION
    code_version: int = CODE_VERSION

    def hash(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


RECIPES: dict[str, ShapesRecipe] = {
    "full": ShapesRecipe(),
    "test": replace(
        ShapesRecipe(),
        vision_hidden=32, vision_layers=1, vision_heads=2,
        text_hidden=64, text_layers=2, text_heads=2, text_intermediate=128,
        vision_steps=20, vision_batch=32, steps=30, batch_size=8, warmup_steps=3,
        train_images=64,
    ),
}
RECIPES["smoke"] = replace(RECIPES["test"], text_layers=4, steps=60)


def recipe_for(budget: str) -> ShapesRecipe:
    if budget not in RECIPES:
        raise TargetError(f"shapes budget={budget!r} is unknown; use one of {sorted(RECIPES)}")
    return RECIPES[budget]
