"""Quality of a built `shapes` target on easy-vqa's test split, by greedy `model.generate`.

- question accuracy: the greedy answer equals easy-vqa's answer exactly;
- the same with every image swapped for another test image (must fall towards chance: the
  answers depend on the image, not on the question alone);
- descriptions: the share that name the right shape and colour and no other shape or colour,
  their mean and shortest length in tokens (end token excluded), the share with 4 or more
  sentences and the share that say one sentence twice.
Prompts of equal token length are batched together, so no row is padded.
"""

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoProcessor, LlavaForConditionalGeneration, ProcessorMixin

from targets.embedded.shapes import data
from targets.embedded.shapes.pixels import PALETTE, SHAPES, measure


@dataclass
class Generated:
    text: str
    tokens: int


def _prompt(processor: ProcessorMixin, question: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


@torch.inference_mode()
def generate_greedy(
    model: LlavaForConditionalGeneration,
    processor: ProcessorMixin,
    records: list[data.VqaRecord],
    max_new_tokens: int,
    batch_size: int = 128,
) -> list[Generated]:
    """Greedy answers to `records`, in order."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for position, record in enumerate(records):
        length = len(processor.tokenizer(_prompt(processor, record.question)).input_ids)
        by_length[length].append(position)
    results: list[Generated | None] = [None] * len(records)
    end_id = processor.tokenizer.eos_token_id
    for positions in by_length.values():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start:start + batch_size]
            inputs = processor(
                images=[records[p].image for p in chunk],
                text=[_prompt(processor, records[p].question) for p in chunk],
                return_tensors="pt",
            )
            output = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            for position, row in zip(chunk, new_tokens.tolist()):
                row = row[: row.index(end_id)] if end_id in row else row
                text = processor.tokenizer.decode(row, skip_special_tokens=True)
                results[position] = Generated(text.strip(), len(row))
    return results  # type: ignore[return-value]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def names_shape_and_colour(description: str, shape: str, colour: str) -> bool:
    """Right shape and colour named, and no other shape or palette colour."""
    words = _words(description)
    return words & set(SHAPES) == {shape} and words & set(PALETTE) == {colour}


def _sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in text.split(".") if sentence.strip()]


def _swap_images(records: list[data.VqaRecord], seed: int) -> list[data.VqaRecord]:
    rng = random.Random(seed)
    images = [record.image for record in records]
    rng.shuffle(images)
    return [data.VqaRecord(r.split, r.image_id, image, r.question, r.answer)
            for r, image in zip(records, images)]


def evaluate(model_dir: Path, image_limit: int | None = None, swapped_questions: int = 2000,
             seed: int = 0) -> dict[str, float]:
    """Figures on the first `image_limit` test images (all by default) and their questions; the
    swapped-image check runs on a seeded sample of `swapped_questions` of them."""
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, trust_remote_code=False).eval()
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=False)
    images = data.load_images("test", image_limit)
    questions = data.qa_records("test", images)
    # One answer word and the end token; anything longer is wrong anyway.
    answers = generate_greedy(model, processor, questions, max_new_tokens=2)
    sample = random.Random(seed).sample(questions, min(swapped_questions, len(questions)))
    swapped = generate_greedy(model, processor, _swap_images(sample, seed), max_new_tokens=2)
    descriptions = generate_greedy(model, processor, data.description_records("test", images),
                                   max_new_tokens=96)
    facts = [measure(image) for image in images.values()]
    return {
        "questions": len(questions),
        "question_accuracy": sum(a.text == r.answer for a, r in zip(answers, questions))
        / len(questions),
        "swapped_image_questions": len(sample),
        "swapped_image_accuracy": sum(a.text == r.answer for a, r in zip(swapped, sample))
        / len(sample),
        "images": len(images),
        "description_shape_colour_accuracy": sum(
            names_shape_and_colour(d.text, f.shape, f.colour) for d, f in zip(descriptions, facts)
        ) / len(images),
        "description_mean_tokens": sum(d.tokens for d in descriptions) / len(descriptions),
        "description_min_tokens": min(d.tokens for d in descriptions),
        "descriptions_with_4_or_more_sentences": sum(
            len(_sentences(d.text)) >= 4 for d in descriptions) / len(descriptions),
        "descriptions_repeating_a_sentence": sum(
            len(set(_sentences(d.text))) < len(_sentences(d.text)) for d in descriptions
        ) / len(descriptions),
        "example_description": descriptions[0].text,
    }
