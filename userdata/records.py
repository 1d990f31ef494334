"""`Record`: one row of the user's data, normalised: chat turns, images, an optional given answer.

A row holds a prompt (a string) or chat turns (`messages`: a list of {role, content}, the content a
string or a list of parts as chat templates take them, multi-turn allowed), optional images (file
paths relative to the data file, encoded bytes as `datasets` keeps them, or PIL images) and an
optional response. `record_of` checks a row and names its first problem (`RowProblem`: the field
and what is wrong); the caller adds the file and row. A record's `digest` (its turns, its answer
and its images' bytes) is what the splits are drawn and kept disjoint by.
"""

import hashlib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from userdata.config import DataConfig

ROLES = ("system", "user", "assistant")
IMAGE_COLUMNS = ("image", "images")

ImageSource = Path | bytes | Image.Image


class RowProblem(Exception):
    """What is wrong with one field of one row."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field '{field_name}': {problem}")
        self.field, self.problem = field_name, problem


@dataclass(frozen=True)
class Record:
    row: int  # index in its source split (or file), from 0
    source_split: str | None  # the data set's split it came from; None: a file or embedded pool
    messages: tuple[dict[str, Any], ...]  # turns {role, content: [parts]}, images as parts
    images: tuple[ImageSource, ...]
    response: str | None
    text_field: str  # the column the turns came from, named when the text cannot be used
    image_field: str | None

    @property
    def prompt(self) -> str | None:
        """The text of a one-turn record (prepared exactly as a plain prompt is); else None."""
        if len(self.messages) != 1 or self.messages[0]["role"] != "user":
            return None
        texts = [part["text"] for part in self.messages[0]["content"] if part["type"] == "text"]
        return texts[0] if len(texts) == 1 else None

    @cached_property
    def digest(self) -> str:
        hashed = hashlib.sha256(json.dumps([self.messages, self.response]).encode())
        for image in self.images:
            hashed.update(image_digest(image).encode())
        return hashed.hexdigest()


@dataclass
class Columns:
    """The columns a row is read from (DataConfig's names) and the folder its paths start in."""

    prompt: str
    messages: str
    image: str | None
    response: str
    base: Path | None  # image paths are relative to this (the data file's folder)
    given: bool  # responses=given: every row needs an answer

    @classmethod
    def of(cls, cfg: DataConfig, base: Path | None) -> "Columns":
        return cls(cfg.prompt_column, cfg.messages_column, cfg.image_column,
                   cfg.response_column, base, cfg.responses == "given")


def record_of(row: Mapping[str, Any], index: int, split: str | None, columns: Columns) -> Record:
    """The row as a Record; RowProblem names its first bad field."""
    image_field = columns.image or next((name for name in IMAGE_COLUMNS if present(row, name)),
                                        None)
    images = images_of(row.get(image_field) if image_field else None, image_field, columns.base)
    response = row.get(columns.response) if present(row, columns.response) else None
    if response is not None and not isinstance(response, str):
        raise RowProblem(columns.response, f"a {type(response).__name__}, not a string")
    if present(row, columns.messages):
        text_field = columns.messages
        messages = turns_of(row[columns.messages], text_field)
    elif present(row, columns.prompt):
        text_field, prompt = columns.prompt, row[columns.prompt]
        if not isinstance(prompt, str) or not prompt.strip():
            raise RowProblem(columns.prompt, "empty" if isinstance(prompt, str) else
                             f"a {type(prompt).__name__}, not a string")
        messages = ({"role": "user", "content": [{"type": "text", "text": prompt}]},)
    else:
        raise RowProblem(columns.prompt, f"missing (the row has neither '{columns.prompt}' nor "
                         f"'{columns.messages}'; name your columns with data.prompt_column= or "
                         "data.messages_column=)")
    if messages[-1]["role"] == "assistant":  # the last answer is the row's response
        response = response if response is not None else text_of(messages[-1])
        messages = messages[:-1]
    if not any(turn["role"] == "user" for turn in messages):
        raise RowProblem(text_field, "no user turn before the answer")
    messages = with_image_parts(messages, len(images), image_field, text_field)
    if columns.given and not (response or "").strip():
        raise RowProblem(columns.response, "missing; data.responses=given needs an answer in "
                         "every row (or chat turns that end with the assistant's)")
    return Record(index, split, messages, images, response, text_field, image_field)


def present(row: Mapping[str, Any], name: str) -> bool:
    """The row has a value in column `name`."""
    return not missing(row.get(name))


def missing(value: Any) -> bool:
    """None, or NaN: a CSV's or a data frame's empty cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def turns_of(value: Any, name: str) -> tuple[dict[str, Any], ...]:
    """Chat turns with their content as a list of parts; a CSV cell holds them as JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowProblem(name, "not a list of chat turns (nor JSON text of one)") from None
    if not isinstance(value, list) or not value:
        raise RowProblem(name, "not a non-empty list of {role, content} turns")
    turns = []
    for number, turn in enumerate(value):
        if not isinstance(turn, Mapping) or turn.get("role") not in ROLES:
            raise RowProblem(name, f"turn {number} needs a role of {', '.join(ROLES)}")
        content = turn.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list) and all(isinstance(part, Mapping) and
                                               part.get("type") in ("text", "image")
                                               for part in content):
            parts = [{"type": "image"} if part["type"] == "image" else
                     {"type": "text", "text": str(part.get("text", ""))} for part in content]
        else:
            raise RowProblem(name, f"turn {number}'s content is neither text nor a list of text "
                             "and image parts")
        if not any(part["type"] == "image" or part["text"].strip() for part in parts):
            raise RowProblem(name, f"turn {number} is empty")
        turns.append({"role": turn["role"], "content": parts})
    return tuple(turns)


def text_of(turn: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in turn["content"])


def with_image_parts(messages: tuple[dict[str, Any], ...], count: int, image_field: str | None,
                     text_field: str) -> tuple[dict[str, Any], ...]:
    """The turns with one image part per image: where the turns place them, else before the text
    of the first user turn (where a plain prompt's images go)."""
    placed = sum(part["type"] == "image" for turn in messages for part in turn["content"])
    if placed == 0 and count:
        first = next(i for i, turn in enumerate(messages) if turn["role"] == "user")
        turn = messages[first]
        images = [{"type": "image"}] * count
        messages = (*messages[:first], {"role": "user", "content": images + turn["content"]},
                    *messages[first + 1:])
    elif placed != count:
        raise RowProblem(image_field or text_field, f"{count} image(s) but the turns hold "
                         f"{placed} image part(s); give one image per image part")
    return messages


def images_of(value: Any, name: str | None, base: Path | None) -> tuple[ImageSource, ...]:
    """A row's images: a path, encoded bytes, a `datasets` {bytes, path} dict or a PIL image,
    or a list of them (a CSV cell may hold the list as JSON)."""
    if missing(value):
        return ()
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowProblem(name, "neither an image path nor a JSON list of paths") from None
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(image_source(item, name, base) for item in values)


def image_source(value: Any, name: str | None, base: Path | None) -> ImageSource:
    if isinstance(value, Image.Image | bytes):
        return value
    if isinstance(value, Mapping) and (value.get("bytes") or value.get("path")):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value["path"]
    if not isinstance(value, str) or not value.strip():
        raise RowProblem(name, f"{value!r} is not an image path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() or base is None else base / path
    if not path.is_file():
        where = f" (relative to {base})" if base is not None and not Path(value).is_absolute() \
            else ""
        raise RowProblem(name, f"image '{value}' does not exist{where}")
    return path


def image_digest(image: ImageSource) -> str:
    if isinstance(image, Path):
        return file_digest(image)
    if isinstance(image, bytes):
        return hashlib.sha256(image).hexdigest()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@lru_cache(maxsize=65536)
def file_digest(path: Path) -> str:
    """An image file's digest (cached: several records, such as an image's prompts, share it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
