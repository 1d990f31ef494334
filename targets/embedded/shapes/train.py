"""Train the `shapes` target from scratch and save it as a LLaVA model directory.

Setup (data, tokenizer, processor, model), stage 1 (vision tower + probe on the image facts),
stage 2 (whole model on descriptions and question conversations, probe loss kept), save. Seeded
throughout, on a fixed thread count so that a rebuild gives the same weights.
"""

import argparse
import itertools
import json
import math
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import LlavaForConditionalGeneration

from targets.embedded.shapes import data
from targets.embedded.shapes.architecture import build_model, build_processor, image_token_count
from targets.embedded.shapes.examples import ExampleEncoder, collate, example_stream
from targets.embedded.shapes.probe import VisionProbe, probe_targets
from targets.embedded.shapes.recipe import ShapesRecipe, recipe_for
from targets.embedded.shapes.tokenizer import build_tokenizer

# Float reductions depend on the thread count; fix it for reproducible weights.
BUILD_THREADS = 2
NUMBERS_IN_DESCRIPTIONS = " ".join(str(n) for n in range(1, 101))


def _patch_features(model: LlavaForConditionalGeneration, pixel_values: torch.Tensor) -> torch.Tensor:
    """The tower features the projector reads (layer -1, CLS dropped)."""
    outputs = model.model.vision_tower(pixel_values, output_hidden_states=True)
    return outputs.hidden_states[model.config.vision_feature_layer][:, 1:]


def _schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))


def train(recipe: ShapesRecipe, out_dir: Path) -> dict[str, float]:
    """Build the target into `out_dir`; returns the final training metrics."""
    threads = torch.get_num_threads()
    torch.set_num_threads(BUILD_THREADS)
    try:
        return _train(recipe, out_dir)
    finally:
        torch.set_num_threads(threads)


def _train(recipe: ShapesRecipe, out_dir: Path) -> dict[str, float]:
    torch.manual_seed(recipe.seed)
    images = data.load_images("train", recipe.train_images)
    descriptions = data.description_records("train", images)
    questions = data.qa_records("train", images)
    test_questions = data.qa_records("test", data.load_images("test"))
    tokenizer = build_tokenizer(itertools.chain(
        (r.question for r in questions + test_questions),
        (r.answer for r in questions + descriptions),
        [data.DESCRIBE_PROMPT, NUMBERS_IN_DESCRIPTIONS],
    ))
    processor = build_processor(recipe, tokenizer)
    model = build_model(recipe, tokenizer)
    probe = VisionProbe(recipe.vision_hidden)

    image_list = list(images.values())
    pixel_values = processor.image_processor(image_list, return_tensors="pt")["pixel_values"]
    targets = probe_targets(image_list, recipe.patch_size)
    image_index = {image_id: row for row, image_id in enumerate(images)}
    generator = torch.Generator().manual_seed(recipe.seed)
    progress = tqdm(total=recipe.vision_steps + recipe.steps, desc="building shapes", unit="step")
    metrics: dict[str, float] = {}

    # Stage 1: the tower learns the image facts on its own.
    vision_params = list(model.model.vision_tower.parameters()) + list(probe.parameters())
    optimizer = torch.optim.AdamW(vision_params, lr=recipe.vision_lr, weight_decay=recipe.weight_decay)
    for step in range(recipe.vision_steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.vision_lr * _schedule(step, recipe.vision_steps, recipe.warmup_steps)
        index = torch.randint(len(image_list), (recipe.vision_batch,), generator=generator)
        loss = probe.loss(_patch_features(model, pixel_values[index]), targets, index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        metrics["probe_loss"] = loss.item()
        progress.set_postfix(stage="vision", probe=f"{loss.item():.3f}")
        progress.update()

    # Stage 2: everything, language loss plus the probe loss.
    encoder = ExampleEncoder(tokenizer, image_token_count(recipe))
    stream = example_stream(encoder, descriptions, questions, image_index,
                            recipe.questions_per_conversation, recipe.seed)
    params = list(model.parameters()) + list(probe.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, betas=(0.9, 0.95),
                                  weight_decay=recipe.weight_decay)
    model.train()
    for step in range(recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * _schedule(step, recipe.steps, recipe.warmup_steps)
        examples = list(itertools.islice(stream, recipe.batch_size))
        index = torch.tensor([example.image_index for example in examples])
        batch = collate(examples, tokenizer.pad_token_id)
        language_loss = model(pixel_values=pixel_values[index], **batch).loss
        probe_loss = probe.loss(_patch_features(model, pixel_values[index]), targets, index)
        loss = language_loss + recipe.aux_weight * probe_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        metrics.update(language_loss=language_loss.item(), probe_loss=probe_loss.item())
        progress.set_postfix(stage="joint", lm=f"{language_loss.item():.3f}",
                             probe=f"{probe_loss.item():.3f}")
        progress.update()
    progress.close()

    model.eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    recipe_record = {"recipe": asdict(recipe), "hash": recipe.hash(), "final_metrics": metrics}
    (out_dir / "recipe.json").write_text(json.dumps(recipe_record, indent=2, sort_keys=True))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the shapes target into a directory.")
    parser.add_argument("--budget", default="full")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    train(recipe_for(arguments.budget), arguments.out)


if __name__ == "__main__":
    main()
