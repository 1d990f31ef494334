"""Reading an image file the user names (or an image's encoded bytes, as a data set keeps them):
one line naming the file and the fix when it cannot be used, not a PIL traceback."""

import io
from pathlib import Path

from PIL import Image

from targets.errors import TargetError


def read_image(path: str | Path | bytes) -> Image.Image:
    """The image at `path` (or encoded in these bytes) as RGB. PIL refuses an image of more than
    twice MAX_IMAGE_PIXELS before decoding it (a decompression bomb: a small file that expands to
    gigabytes)."""
    encoded = isinstance(path, bytes)
    source, path = (io.BytesIO(path), f"<{len(path)} bytes>") if encoded else (path, path)
    try:
        with Image.open(source) as image:
            return image.convert("RGB")
    except Image.DecompressionBombError as error:
        raise TargetError(f"image {str(path)!r} is too large to decode safely ({error}); resize "
                          "it to a few megapixels") from None
    except (OSError, ValueError) as error:  # missing, unreadable, not an image, truncated
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TargetError(f"image {str(path)!r} cannot be read ({reason}); pass a readable PNG "
                          "or JPEG file") from None
