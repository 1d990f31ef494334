"""What an easy-vqa image shows, measured from its pixels: the ground truth of the descriptions.

easy-vqa draws one flat-coloured shape (eight pure palette colours) on a flat, lightly tinted
background, with anti-aliased edges. So the background is the mode of the border pixels, the
shape's colour is the palette colour nearest to the off-background pixels, and the shape mask is
the set of pixels nearer to the shape's colour than to the background.
"""

import colorsys
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image

# easy-vqa's palette (its generator draws with these RGB values).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "teal": (0, 128, 128),
    "brown": (165, 42, 42),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
SHAPES = ("circle", "rectangle", "triangle")
# Background tints by hue sector (60 degrees each, starting at red); none of them is a palette
# colour word, so a description's colour words always refer to the shape.
BACKGROUND_TINTS = ("rosy", "cream", "mint", "icy", "lilac", "pinkish")
NEUTRAL_BACKGROUNDS = ("white", "silvery")
BACKGROUNDS = BACKGROUND_TINTS + NEUTRAL_BACKGROUNDS
POSITIONS = (
    "upper left corner", "top middle", "upper right corner",
    "left side", "center", "right side",
    "lower left corner", "bottom middle", "lower right corner",
)
SIZES = ("small", "medium-sized", "large")
ASPECTS = ("wider than it is tall", "taller than it is wide", "about as wide as it is tall")


@dataclass(frozen=True)
class ImageFacts:
    """Everything a description may say about one image, all measured from pixels."""

    shape: str
    colour: str
    background: str
    position: str
    size: str
    aspect: str
    area_percent: int
    touched_edges: tuple[str, ...]  # subset of ("left", "top", "right", "bottom")


def _background_rgb(pixels: np.ndarray) -> np.ndarray:
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.array(Counter(map(tuple, border.tolist())).most_common(1)[0][0])


def _shape_colour(pixels: np.ndarray, background: np.ndarray) -> str:
    far = np.abs(pixels - background).sum(-1) > 60
    core = Counter(map(tuple, pixels[far].tolist())).most_common(1)[0][0]
    return min(PALETTE, key=lambda name: np.abs(np.array(PALETTE[name]) - core).sum())


def _background_word(rgb: np.ndarray) -> str:
    r, g, b = (rgb / 255.0).tolist()
    hue, lightness, _ = colorsys.rgb_to_hls(r, g, b)
    if max(rgb) - min(rgb) < 6:
        return "white" if lightness > 0.96 else "silvery"
    return BACKGROUND_TINTS[int((hue * 360 + 30) % 360 // 60)]


def _shape_from_fill(mask: np.ndarray) -> str:
    """Area over bounding-box area: ~1 for a rectangle, pi/4 for a circle, ~1/2 for a triangle."""
    ys, xs = np.nonzero(mask)
    box = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    fill = mask.sum() / box
    return "rectangle" if fill > 0.94 else "circle" if fill > 0.65 else "triangle"


def _analyse(image: Image.Image) -> tuple[np.ndarray, str, np.ndarray]:
    """(background RGB, shape colour name, shape mask) of an image."""
    pixels = np.asarray(image.convert("RGB")).astype(np.int64)
    background = _background_rgb(pixels)
    colour = _shape_colour(pixels, background)
    shape_rgb = np.array(PALETTE[colour])
    mask = np.abs(pixels - shape_rgb).sum(-1) < np.abs(pixels - background).sum(-1)
    return background, colour, mask


def shape_mask(image: Image.Image) -> np.ndarray:
    """Boolean (height, width) mask of the shape's pixels."""
    return _analyse(image)[2]


def measure(image: Image.Image) -> ImageFacts:
    background, colour, mask = _analyse(image)
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    column = min(int(xs.mean() * 3 // width), 2)
    row = min(int(ys.mean() * 3 // height), 2)
    area = mask.mean()
    box_w, box_h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    aspect = ASPECTS[0] if box_w > 1.2 * box_h else ASPECTS[1] if box_h > 1.2 * box_w else ASPECTS[2]
    edges = (
        ("left", xs.min() == 0), ("top", ys.min() == 0),
        ("right", xs.max() == width - 1), ("bottom", ys.max() == height - 1),
    )
    return ImageFacts(
        shape=_shape_from_fill(mask),
        colour=colour,
        background=_background_word(background),
        position=POSITIONS[row * 3 + column],
        size=SIZES[0] if area < 0.05 else SIZES[1] if area < 0.11 else SIZES[2],
        aspect=aspect,
        area_percent=max(1, round(area * 100)),
        touched_edges=tuple(name for name, touched in edges if touched),
    )
