"""The embedded prompt sets, fixed and offline: what the embedded targets train, search and bench on
by default (`data=shapes`, `data=smollm2`, or no data= with target=shapes / smollm2).

- `shapes`: easy-vqa images of the split; per image, the description prompt (the target answers
  with several grounded sentences: most of what a draft can speed up) then one of its questions
  (one-word answers, rotating through the image's questions by image id).
- `smollm2`: instruction prompts of five kinds composed from phrasings and subjects
  (userdata.instructions); the splits are disjoint (every fifth composition is `test`) and each
  is shuffled with a fixed seed.
Both have a train and a test split; the validation split is drawn from train (userdata.splits).
"""

from pathlib import Path

from PIL import Image

from targets.images import read_image
from userdata.instructions import instruction_prompts
from userdata.records import Record

EMBEDDED_SETS = ("shapes", "smollm2")
SPLITS = ("train", "test")


def prompt_set(name: str, split: str, limit: int | None = None) -> list[tuple[str, Image.Image | None]]:
    """The first `limit` prompts (all by default) of embedded set `name`'s `split`, images read."""
    pairs = prompt_pairs(name, split)[:limit]
    return [(text, read_image(image) if image is not None else None) for text, image in pairs]


def embedded_pools(name: str) -> dict[str | None, list[Record]]:
    """Split name -> the set's records (images as file paths, read when a command uses them)."""
    pools: dict[str | None, list[Record]] = {}
    for split in SPLITS:
        pools[split] = [
            Record(row, split, ({"role": "user", "content": [
                *([{"type": "image"}] if image is not None else []),
                {"type": "text", "text": text}]},),
                (image,) if image is not None else (), None, "prompt",
                "image" if image is not None else None)
            for row, (text, image) in enumerate(prompt_pairs(name, split))]
    return pools


def prompt_pairs(name: str, split: str) -> list[tuple[str, Path | None]]:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; use one of {SPLITS}")
    if name == "shapes":
        return _shapes_prompts(split)
    if name == "smollm2":
        return [(text, None) for text in instruction_prompts(split)]
    raise ValueError(f"no prompt set {name!r}; use one of {', '.join(EMBEDDED_SETS)}")


def _shapes_prompts(split: str) -> list[tuple[str, Path | None]]:
    from targets.embedded.shapes.data import DESCRIBE_PROMPT, image_paths, questions

    asked: dict[int, list[str]] = {}
    for question, _, image_id in questions(split):
        asked.setdefault(image_id, []).append(question)
    prompts: list[tuple[str, Path | None]] = []
    for image_id, path in image_paths(split).items():
        prompts.append((DESCRIBE_PROMPT, path))
        if asked.get(image_id):
            prompts.append((asked[image_id][image_id % len(asked[image_id])], path))
    return prompts
