"""An image file given on the command line, read as RGB or refused in one line."""

from pathlib import Path

from PIL import Image

from nas.user_errors import UserError


def read_image(path: Path) -> Image.Image:
    try:
        with Image.open(Path(path)) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        reason = type(error).__name__ if not str(error) else str(error).splitlines()[0]
        raise UserError(f"image: cannot read '{path}' ({reason}); give a PNG or JPEG file")
