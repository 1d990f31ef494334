"""A model directory's processor, or its tokenizer: optional, but files that are there must load.

transformers' processors of some families (Qwen2-VL, Qwen2.5-VL) hold a video processor that needs
torchvision, so `AutoProcessor` fails with an ImportError on an install without it. draftnas
reads images only: then the family's processor is built from its image processor and tokenizer
alone, with no video processor. Any other failure is a TargetError that says its cause.
"""

import json
from pathlib import Path

import transformers
from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

from targets.errors import TargetError

_CLASS_FILES = ("processor_config.json", "preprocessor_config.json")
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, ImportError, AttributeError)


def load_processor(path: Path):
    try:
        return AutoProcessor.from_pretrained(path, trust_remote_code=False)
    except ImportError as error:
        if "VideoProcessor" not in str(error):
            raise unusable(path, "processor", error) from None
        try:
            return image_only_processor(path)
        except _LOAD_ERRORS as second:
            raise unusable(path, "processor", error, also=second) from None
    except _LOAD_ERRORS as error:
        raise unusable(path, "processor", error) from None


def load_tokenizer(path: Path):
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except _LOAD_ERRORS as error:
        raise unusable(path, "tokenizer", error) from None


def image_only_processor(path: Path):
    """The directory's processor class, built with no video processor."""
    name = next((json.loads((path / file).read_text()).get("processor_class")
                 for file in _CLASS_FILES if (path / file).is_file()), None)
    family_class = getattr(transformers, name or "", None)
    if family_class is None or "video_processor" not in family_class.get_attributes():
        raise ImportError(f"processor class {name!r} has no video processor to leave out")

    class ImageOnlyProcessor(family_class):
        def check_argument_for_proper_class(self, argument_name, argument):
            # No video processor: the class check would look up torchvision's video classes.
            if argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    return ImageOnlyProcessor(
        image_processor=AutoImageProcessor.from_pretrained(path, trust_remote_code=False),
        tokenizer=tokenizer, video_processor=None,
        chat_template=tokenizer.chat_template or chat_template(path))


def chat_template(path: Path) -> str | None:
    """The chat template a processor directory keeps beside its tokenizer, if any."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text()).get("chat_template")
    return None


def unusable(path: Path, what: str, error: BaseException,
             also: BaseException | None = None) -> TargetError:
    cause = f"{type(error).__name__}: {first_line(error)}"
    if also is not None:
        cause += f"; without the video processor: {type(also).__name__}: {first_line(also)}"
    fix = ("install torchvision for this torch, or remove the video processor's files"
           if "torchvision" in cause.lower() else "fix them")
    return TargetError(f"{path}: its {what} files cannot be loaded ({cause}); {fix}, or remove "
                       "them to pass ready-made inputs")


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else "no message"
