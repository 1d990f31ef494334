"""Fixed offline prompt sets of the embedded targets: what drafts train on and what benches run.

`prompt_set(name, split, limit)` -> [(text, image or None)], deterministic, no network;
`prepared_prompts(target, split, limit)`: the set a target trains and is searched on, as the
target's inputs.
- `shapes`: easy-vqa images of the split; per image, the description prompt (the target answers
  with several grounded sentences: most of what a draft can speed up) then one of its questions
  (one-word answers, rotating through the image's questions by image id).
- `smollm2`: instruction prompts of five kinds composed from phrasings and subjects
  (targets.embedded.instructions); the splits are disjoint (every fifth composition is `test`)
  and each is shuffled with a fixed seed.
"""

from typing import Any

from PIL import Image

from targets.embedded import split_spec
from targets.embedded.instructions import instruction_prompts
from targets.errors import TargetError

SPLITS = ("train", "test")

def prompt_set(name: str, split: str, limit: int | None = None) -> list[tuple[str, Image.Image | None]]:
    """The first `limit` prompts (all by default) of embedded target `name`'s `split`."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; use one of {SPLITS}")
    if name == "shapes":
        return _shapes_prompts(split, limit)
    if name == "smollm2":
        return [(text, None) for text in instruction_prompts(split)][:limit]
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
