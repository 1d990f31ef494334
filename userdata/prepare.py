"""Records as a target's inputs: images read, chat template and processor applied, and with
`data.responses=given` the given answer as token ids. What cannot be used is a RowProblem naming
the field: an unreadable image, images for a text-only target, a prompt that leaves the answer no
room in the target's context."""

from typing import Any

from PIL import Image

from targets import PreparedInputs
from targets.errors import TargetError
from targets.images import read_image
from userdata.records import ImageSource, Record, RowProblem


def prepare_record(target: Any, record: Record, room: int,
                   given: bool) -> tuple[PreparedInputs, list[int] | None]:
    """The record as `target` takes it, with `room` tokens left for its answer; and its given
    answer's tokens (at most `room`, ending in EOS) when `given`."""
    if record.images and not target.is_vlm:
        raise RowProblem(record.image_field, f"images, but target '{target.spec}' is text-only; "
                         "use data without images, or a vision-language target")
    images = [image_of(image, record.image_field) for image in record.images]
    try:
        if record.prompt is not None:
            prepared = target.prepare(prompt=record.prompt, images=images or None)
        else:
            prepared = target.prepare(messages=list(record.messages), images=images or None)
    except TargetError as error:
        raise RowProblem(record.text_field, str(error)) from None
    length = prepared.input_ids.shape[1]
    if length + room > target.max_positions:
        raise RowProblem(record.text_field, f"{length} tokens, and {room} for the answer, exceed "
                         f"the target's context of {target.max_positions}; shorten it")
    return prepared, answer_ids(target, record.response or "", room) if given else None


def image_of(image: ImageSource, field_name: str | None) -> Image.Image:
    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        return read_image(image)
    except TargetError as error:
        raise RowProblem(field_name or "image", str(error)) from None


def answer_ids(target: Any, text: str, room: int) -> list[int]:
    """A given answer as the target would end it: its tokens, then EOS (what its own answers end
    with), cut to `room` tokens."""
    ids = target.tokenizer(text, add_special_tokens=False)["input_ids"]
    return (list(ids) + target.eos_token_ids[:1])[:room]
