"""Grounded multi-sentence descriptions of easy-vqa images, with seeded varied wording and order.

Every description opens with a sentence naming the shape and its colour, then says 4 more
things, each of a different kind, measured from the pixels (4 of: position, size, background,
proportions, edges, a fact about the shape), in a per-image random order and wording. The randomness is seeded by the image's split and
id, so the training data is the same on every build.
"""

import random

from targets.embedded.shapes.pixels import ImageFacts

# Sentences after the opening one, each of a different kind (4 of the 6 kinds below). Always 4:
# with 2 to 4 (weights 0.1/0.3/0.6) the greedy descriptions averaged 39.5 tokens; a fixed count
# gives 42 to 62 tokens (mean ~52) in the training data (experiments/targets.md).
EXTRA_SENTENCES = 4

OPENINGS = (
    "The image shows a {colour} {shape} and nothing else.",
    "There is exactly one {colour} {shape} in this picture.",
    "A single {colour} {shape} appears in the image.",
    "This small picture contains one {colour} {shape}.",
)
SHAPE_FACTS = {
    "circle": ("A circle is perfectly round and has no corners.", "Its outline is a smooth curve."),
    "rectangle": ("A rectangle has four straight sides.", "Its four corners are right angles."),
    "triangle": ("A triangle has three straight sides.", "It has three pointed corners."),
}


def _position(facts: ImageFacts, rng: random.Random) -> str:
    return rng.choice((
        "It is located in the {position} of the image.",
        "The {shape} sits in the {position} of the picture.",
        "You can find it in the {position} of the frame.",
    )).format(position=facts.position, shape=facts.shape)


def _size(facts: ImageFacts, rng: random.Random) -> str:
    return rng.choice((
        "The {shape} is {size} and covers about {percent} percent of the image.",
        "It is {size}, filling roughly {percent} percent of the picture.",
        "At about {percent} percent of the area, the {shape} is {size}.",
    )).format(shape=facts.shape, size=facts.size, percent=facts.area_percent)


def _background(facts: ImageFacts, rng: random.Random) -> str:
    return rng.choice((
        "The background is a plain {background} colour.",
        "It is drawn on a flat {background} background.",
        "Behind the {shape}, the background is {background}.",
    )).format(shape=facts.shape, background=facts.background)


def _aspect(facts: ImageFacts, rng: random.Random) -> str:
    return rng.choice((
        "The {shape} is {aspect}.",
        "Measured by its bounding box, it is {aspect}.",
    )).format(shape=facts.shape, aspect=facts.aspect)


def _edges(facts: ImageFacts, rng: random.Random) -> str:
    if not facts.touched_edges:
        return rng.choice((
            "It does not touch any edge of the picture.",
            "There is space between the {shape} and every edge.",
        )).format(shape=facts.shape)
    edges = " and ".join(facts.touched_edges)
    return rng.choice((
        "It touches the {edges} edge of the picture.",
        "The {shape} reaches all the way to the {edges} edge.",
    )).format(shape=facts.shape, edges=edges)


def _shape_fact(facts: ImageFacts, rng: random.Random) -> str:
    return rng.choice(SHAPE_FACTS[facts.shape])


SENTENCE_KINDS = (_position, _size, _background, _aspect, _edges, _shape_fact)


def describe(facts: ImageFacts, seed: str) -> str:
    """A 5 sentence description of the image with `facts`; the same `seed` gives the same text."""
    rng = random.Random(seed)
    opening = rng.choice(OPENINGS).format(colour=facts.colour, shape=facts.shape)
    kinds = rng.sample(SENTENCE_KINDS, EXTRA_SENTENCES)  # distinct kinds: no fact said twice
    return " ".join([opening] + [kind(facts, rng) for kind in kinds])
