"""Writes this folder's example data set: 12 small PNGs of coloured shapes drawn with PIL and
prompts.jsonl, 48 rows about them (a prompt or chat turns, an image path relative to the file, a
given response). `python examples/own_data/make.py` rewrites them identically."""

import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "blue": (40, 70, 220), "green": (40, 160, 60),
          "yellow": (230, 200, 30)}
PLACES = ("top left", "bottom right", "center")


def draw(shape: str, color: tuple[int, int, int], place: str) -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    x, y = {"top left": (6, 6), "bottom right": (30, 30), "center": (18, 18)}[place]
    pen = ImageDraw.Draw(image)
    if shape == "triangle":
        pen.polygon([(x + 14, y), (x, y + 28), (x + 28, y + 28)], fill=color)
    else:
        outline = pen.ellipse if shape == "circle" else pen.rectangle
        outline((x, y, x + 28, y + 28), fill=color)
    return image


def rows() -> list[dict]:
    written = []
    for index, (shape, color) in enumerate((s, c) for s in SHAPES for c in COLORS):
        place = PLACES[index % len(PLACES)]
        image = f"images/{color}-{shape}.png"
        draw(shape, COLORS[color], place).save(HERE / image, optimize=True)
        written += [
            {"prompt": "describe the image.", "image": image,
             "response": f"a {color} {shape} in the {place} on a white background."},
            {"prompt": "what shape is in the image?", "image": image, "response": f"{shape}."},
            {"prompt": "what color is the shape?", "image": image, "response": f"{color}."},
            {"messages": [{"role": "user", "content": "what shape is in the image?"},
                          {"role": "assistant", "content": f"a {shape}."},
                          {"role": "user", "content": "where is it?"}],
             "image": image, "response": f"in the {place}."},
        ]
    return written


if __name__ == "__main__":
    (HERE / "images").mkdir(exist_ok=True)
    lines = [json.dumps(row) for row in rows()]
    (HERE / "prompts.jsonl").write_text("\n".join(lines) + "\n")
