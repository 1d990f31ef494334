"""`SearchSpace`: a named space as written in YAML, relative to the target it will serve.

One named space must fit targets of very different sizes, so a space file states widths
relative to the target and injected layers symbolically; `resolve()` turns it into a
`ResolvedSpace` of concrete integers for one target. A file has the keys `name` (optional,
defaults to the file name), `description` (optional) and `dimensions`, which lists the choices
of every dimension of `DraftArch`:

    num_layers:        draft decoder layers, positive ints
    num_heads:         fractions in (0, 1] of the target's heads; rounded half up, then lowered
                       until they split the hidden size into even head sizes (the draft is as
                       wide as the target; rotary embeddings need even heads)
    intermediate_size: FFN width as a positive multiple of the target's hidden size
    interaction:       none, add, concat, cross_attention
    injected_layers:   a list of choices, each a list of tap tokens (see `search_spaces.taps`):
                       top, eagle3, entropy:N or a tap id
    vision_keep_ratio: fractions in (0, 1]
    draft_vocab_size:  full, or a fraction in (0, 1) of the target's vocabulary
    image_input:       placeholder, features (what the draft reads at image positions);
                       optional: without it, placeholder alone
    decode:            decoding shapes, `chain K` or `tree DEPTH/TOP_K/TOTAL_TOKENS`
                       (specdec.shape); optional: without it, the default tree alone. Not a
                       dimension of the drafts (`resolve` leaves it out: a supernet's weights do
                       not depend on it) but of what a search tries with them (`SearchSpace.decode`)

Choices that coincide after resolution (two head fractions rounding alike, two injected sets
naming the same taps) collapse into one.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from search_spaces.arch import DIMENSIONS, IMAGE_INPUTS, INTERACTIONS
from search_spaces.errors import SpaceError
from search_spaces.resolved import ResolvedSpace
from search_spaces.taps import TapToken, parse_tap_token, resolve_taps, uses_calibration
from search_spaces.target_dims import TargetDims
from specdec.errors import DraftError
from specdec.shape import DEFAULT_SHAPE, DecodeShape

FULL_VOCAB = "full"


class RankedTaps(Protocol):
    """What `resolve` needs of a calibration: intermediate tap ids, lowest entropy first."""

    candidate_taps: tuple[int, ...]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    num_layers: tuple[int, ...]
    num_heads: tuple[float, ...]
    intermediate_size: tuple[float, ...]
    interaction: tuple[str, ...]
    injected_layers: tuple[tuple[TapToken, ...], ...]
    vision_keep_ratio: tuple[float, ...]
    draft_vocab_size: tuple[float | None, ...]
    image_input: tuple[str, ...]
    decode: tuple[DecodeShape, ...]  # the shapes a search tries, the cheapest to verify first

    @property
    def needs_calibration(self) -> bool:
        """True when some injected choice names entropy-ranked layers."""
        return any(uses_calibration(t) for choice in self.injected_layers for t in choice)

    @classmethod
    def from_dict(cls, data: Any, default_name: str) -> "SearchSpace":
        if not isinstance(data, Mapping):
            raise SpaceError(f"space {default_name!r} must be a mapping with a 'dimensions' key")
        unknown = sorted(set(data) - {"name", "description", "dimensions"})
        if unknown:
            raise SpaceError(
                f"space key {unknown[0]!r} is unknown; use name, description and dimensions"
            )
        name = str(data.get("name", default_name))
        dimensions = data.get("dimensions")
        if not isinstance(dimensions, Mapping):
            raise SpaceError(f"space {name!r} needs a 'dimensions' mapping of choice lists")
        unknown = sorted(set(dimensions) - {*DIMENSIONS, "decode"})
        if unknown:
            raise SpaceError(f"space {name!r} dimension {unknown[0]!r} is unknown; use "
                             f"{', '.join(DIMENSIONS)}, decode")
        parsed = {}
        for dimension in (*DIMENSIONS, "decode"):
            values = dimensions.get(dimension)
            if dimension == "decode" and values is None:  # spaces from before shapes were searched
                values = [DEFAULT_SHAPE.label]
            if dimension == "image_input" and values is None:  # and before image inputs were
                values = [IMAGE_INPUTS[0]]
            if not isinstance(values, list) or not values:
                raise SpaceError(
                    f"space {name!r} dimension {dimension!r} needs a non-empty list of choices"
                )
            parse = PARSERS[dimension]
            parsed[dimension] = tuple(
                parse(value, f"{dimension}[{index}]") for index, value in enumerate(values)
            )
        parsed["decode"] = tuple(sorted(set(parsed["decode"]), key=lambda shape: shape.size_key))
        return cls(name=name, description=str(data.get("description", "")).strip(), **parsed)

    def resolve(self, target: TargetDims, calibration: RankedTaps | None = None) -> ResolvedSpace:
        """Concrete choices for `target`; `calibration` is needed when `needs_calibration`."""
        ranked = None if calibration is None else tuple(calibration.candidate_taps)
        for tap in ranked or ():
            if not 1 <= tap < target.num_layers:
                raise SpaceError(
                    f"calibration candidate tap {tap} is not an intermediate tap of a "
                    f"{target.num_layers}-layer target; calibrate on this target"
                )
        hidden = target.hidden_size
        return ResolvedSpace(
            name=self.name,
            target=target,
            interaction=self.interaction,
            injected_layers=tuple(
                resolve_taps(choice, target.num_layers, ranked) for choice in self.injected_layers
            ),
            num_layers=self.num_layers,
            num_heads=tuple(
                heads_at_most(hidden, round_half_up(f * target.num_heads))
                for f in self.num_heads
            ),
            intermediate_size=tuple(
                max(1, round_half_up(m * hidden)) for m in self.intermediate_size
            ),
            # Image positions to keep mean nothing to a target without images.
            vision_keep_ratio=self.vision_keep_ratio if target.images else (1.0,),
            draft_vocab_size=tuple(
                reduced_vocab_size(f, target.vocab_size) for f in self.draft_vocab_size
            ),
            # A target without images has no image features to read.
            image_input=self.image_input if target.images else (IMAGE_INPUTS[0],),
        )


def round_half_up(value: float) -> int:
    # Python's round() goes to even (round(4.5) == 4); half up is what a reader expects.
    return math.floor(value + 0.5)


def reduced_vocab_size(fraction: float | None, vocab_size: int) -> int | None:
    # A fraction that rounds to the whole vocabulary of a small target is the full one.
    if fraction is None:
        return None
    size = max(1, round_half_up(fraction * vocab_size))
    return None if size >= vocab_size else size


def heads_at_most(hidden_size: int, limit: int) -> int:
    """The most heads <= limit that split hidden_size into even head sizes.

    Even, because rotary embeddings rotate pairs of channels (specdec's DraftConfig asks it).
    """
    for heads in range(max(limit, 1), 0, -1):
        if hidden_size % heads == 0 and (hidden_size // heads) % 2 == 0:
            return heads
    raise SpaceError(f"target hidden_size={hidden_size} is odd; no head count gives even heads")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpaceError(f"{key}={value!r} is invalid; use a positive integer")
    return value


def parse_fraction(value: object, key: str) -> float:
    if not is_number(value) or not 0 < value <= 1:
        raise SpaceError(f"{key}={value!r} is not a ratio; use a number in (0, 1]")
    return float(value)


def parse_multiple(value: object, key: str) -> float:
    if not is_number(value) or not value > 0 or not math.isfinite(value):
        raise SpaceError(f"{key}={value!r} is invalid; use a positive multiple of the hidden size")
    return float(value)


def parse_interaction(value: object, key: str) -> str:
    if value not in INTERACTIONS:
        listed = ", ".join(INTERACTIONS)
        raise SpaceError(f"{key}={value!r} is not an interaction; use one of {listed}")
    return str(value)


def parse_tap_choice(value: object, key: str) -> tuple[TapToken, ...]:
    if not isinstance(value, list) or not value:
        raise SpaceError(f"{key}={value!r} must be a non-empty list of taps, e.g. [top]")
    return tuple(parse_tap_token(token, f"{key}[{i}]") for i, token in enumerate(value))


def parse_vocab(value: object, key: str) -> float | None:
    if value == FULL_VOCAB:
        return None
    if not is_number(value) or not 0 < value < 1:
        raise SpaceError(f"{key}={value!r} is invalid; use 'full' or a fraction in (0, 1)")
    return float(value)


def parse_image_input(value: object, key: str) -> str:
    if value not in IMAGE_INPUTS:
        raise SpaceError(f"{key}={value!r} is not an image input; use one of "
                         f"{', '.join(IMAGE_INPUTS)}")
    return str(value)


def parse_shape(value: object, key: str) -> DecodeShape:
    try:
        return DecodeShape.parse(value, key)
    except DraftError as error:
        raise SpaceError(str(error)) from None


PARSERS: dict[str, Callable[[object, str], Any]] = {
    "num_layers": parse_positive_int,
    "num_heads": parse_fraction,
    "intermediate_size": parse_multiple,
    "interaction": parse_interaction,
    "injected_layers": parse_tap_choice,
    "vision_keep_ratio": parse_fraction,
    "draft_vocab_size": parse_vocab,
    "image_input": parse_image_input,
    "decode": parse_shape,
}
