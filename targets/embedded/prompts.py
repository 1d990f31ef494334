"""Fixed offline prompt sets of the embedded targets: what drafts train on and what benches run.

`prompt_set(name, split, limit)` -> [(text, image or None)], deterministic, no network;
`prepared_prompts(target, split, limit)`: the set a target trains and is searched on, as the
target's inputs.
- `shapes`: easy-vqa images of the split; per image, the description prompt (the target answers
  with several grounded sentences: most of what a draft can speed up) then one of its questions
  (one-word answers, rotating through the image's questions by image id).
- `smollm2`: instruction prompts composed from templates x topics; the splits are disjoint
  (every fifth composition is `test`) and each is shuffled with a fixed seed so that any prefix
  mixes templates and topics.
"""

import random
from typing import Any

from PIL import Image

from targets.embedded import split_spec
from targets.errors import TargetError

SPLITS = ("train", "test")

TEMPLATES = (
    "Explain {topic} to a curious ten-year-old.",
    "Write a short paragraph about {topic}.",
    "What are three interesting facts about {topic}?",
    "Give me a step-by-step guide to getting started with {topic}.",
    "Summarize the history of {topic} in a few sentences.",
    "What are the pros and cons of {topic}?",
    "Write a haiku about {topic}.",
    "How would you describe {topic} to someone who has never heard of it?",
    "List five common misconceptions about {topic}.",
    "Why is {topic} important today?",
    "Write a friendly email inviting a colleague to learn about {topic}.",
    "Compare {topic} with something from everyday life.",
    "What questions should a beginner ask about {topic}?",
    "Tell a short story that involves {topic}.",
    "Give a one-sentence definition of {topic}, then expand on it.",
    "What skills does someone need to work with {topic}?",
    "Describe a typical day for a person whose job involves {topic}.",
    "What might {topic} look like in fifty years?",
    "Write a short dialogue between two friends discussing {topic}.",
    "What are the main ideas behind {topic}?",
)
TOPICS = (
    "photosynthesis", "the water cycle", "volcanoes", "black holes", "the human heart",
    "machine learning", "recycling", "the Roman Empire", "honeybees", "electric cars",
    "the internet", "gardening", "chess", "the moon landing", "climate change",
    "healthy sleep", "bread baking", "rainbows", "the stock market", "renewable energy",
    "dinosaurs", "public libraries", "ocean tides", "vaccines", "the guitar",
    "mountain hiking", "bicycles", "coffee", "the solar system", "learning a new language",
)


def prompt_set(name: str, split: str, limit: int | None = None) -> list[tuple[str, Image.Image | None]]:
    """The first `limit` prompts (all by default) of embedded target `name`'s `split`."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; use one of {SPLITS}")
    if name == "shapes":
        return _shapes_prompts(split, limit)
    if name == "smollm2":
        return _instruction_prompts(split)[:limit]
    raise ValueError(f"no prompt set for target {name!r}; use 'shapes' or 'smollm2'")


def own_prompt_set(target: Any) -> str:
    """An embedded target's own set; any other target's: shapes for a VLM, smollm2 for text."""
    name = split_spec(target.spec)[0]
    if name in ("shapes", "smollm2"):
        return name
    return "shapes" if target.is_vlm else "smollm2"


def prepared_prompts(target: Any, split: str, limit: int) -> list[Any]:
    """The first `limit` prompts of the target's own set (`own_prompt_set`), chat template and
    processor applied: `PreparedInputs` the target takes as they are."""
    if target.tokenizer is None:
        raise TargetError(f"target '{target.spec}' has no tokenizer or processor, so prompts "
                          "cannot be encoded; add its tokenizer files to the model directory")
    return [target.prepare(prompt=text, images=[image] if image is not None else None)
            for text, image in prompt_set(own_prompt_set(target), split, limit)]


def _shapes_prompts(split: str, limit: int | None) -> list[tuple[str, Image.Image | None]]:
    from targets.embedded.shapes.data import DESCRIBE_PROMPT, load_images, qa_records

    images = load_images(split, None if limit is None else (limit + 1) // 2)
    questions: dict[int, list[str]] = {}
    for record in qa_records(split, images):
        questions.setdefault(record.image_id, []).append(record.question)
    prompts: list[tuple[str, Image.Image | None]] = []
    for image_id, image in images.items():
        prompts.append((DESCRIBE_PROMPT, image))
        asked = questions.get(image_id)
        if asked:
            prompts.append((asked[image_id % len(asked)], image))
    return prompts[:limit]


def _instruction_prompts(split: str) -> list[tuple[str, Image.Image | None]]:
    composed = [template.format(topic=topic) for topic in TOPICS for template in TEMPLATES]
    chosen = [text for i, text in enumerate(composed) if (i % 5 == 4) == (split == "test")]
    random.Random(f"smollm2-prompts-{split}").shuffle(chosen)
    return [(text, None) for text in chosen]
