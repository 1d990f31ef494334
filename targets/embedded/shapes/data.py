"""easy-vqa as (image, question, answer) records: what `shapes` learns and what drafts and benches use.

The `easy_vqa` package ships 64x64 PNGs (4000 train, 1000 test) and single-word-answer questions
(yes/no, a shape, a colour). A description record asks `DESCRIBE_PROMPT` and answers with the
grounded description of `describe.py`, seeded by split and image id.
"""

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import easy_vqa
from PIL import Image

from targets.embedded.shapes.describe import describe
from targets.embedded.shapes.pixels import measure

SPLITS = ("train", "test")
DESCRIBE_PROMPT = "describe the image."
# Bump when the description text changes: it is part of the recipe hash, so the target rebuilds.
DESCRIPTION_VERSION = 3
DATA_VERSION = f"easy-vqa-{version('easy-vqa')}-descriptions-{DESCRIPTION_VERSION}"


@dataclass(frozen=True)
class VqaRecord:
    """One prompt about one image and the answer the target should give."""

    split: str
    image_id: int
    image: Image.Image
    question: str
    answer: str


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not an easy-vqa split; use one of {SPLITS}")


def image_paths(split: str) -> dict[int, Path]:
    """Image id -> PNG path, ids ascending."""
    _check_split(split)
    paths = easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()
    return {image_id: Path(paths[image_id]) for image_id in sorted(paths)}


def load_images(split: str, limit: int | None = None) -> dict[int, Image.Image]:
    """The first `limit` images of `split` (all by default), decoded to RGB in memory."""
    ids = list(image_paths(split).items())[:limit]
    images = {}
    for image_id, path in ids:
        with Image.open(path) as image:
            images[image_id] = image.convert("RGB")
    return images


def questions(split: str) -> list[tuple[str, str, int]]:
    """(question, answer, image id) of every easy-vqa question of `split`, in file order."""
    _check_split(split)
    asked = easy_vqa.get_train_questions() if split == "train" else easy_vqa.get_test_questions()
    return list(zip(*asked))


def qa_records(split: str, images: dict[int, Image.Image] | None = None) -> list[VqaRecord]:
    """easy-vqa's questions about `images` (default: every image of `split`), in file order."""
    images = images if images is not None else load_images(split)
    return [
        VqaRecord(split, image_id, images[image_id], question, answer)
        for question, answer, image_id in questions(split)
        if image_id in images
    ]


def description_records(
    split: str, images: dict[int, Image.Image] | None = None
) -> list[VqaRecord]:
    """One `DESCRIBE_PROMPT` record per image, answered by its grounded, seeded description."""
    images = images if images is not None else load_images(split)
    return [
        VqaRecord(split, image_id, image, DESCRIBE_PROMPT,
                  describe(measure(image), seed=f"{split}-{image_id}"))
        for image_id, image in images.items()
    ]
