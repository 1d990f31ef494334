"""`ResolvedSpace`: a space resolved against one target, with concrete integer choices.

This is what the supernet, the profiler and the searchers work with:
- `choices()`: dimension -> tuple of concrete values, each sorted from the smallest to the
  largest draft (interaction in `INTERACTIONS` order, injected sets by size then taps, a
  reduced vocabulary before the full one, None).
- genes: a flat tuple of ints, one per dimension in `DIMENSIONS` order, each the index of the
  chosen value in `choices()`; `gene_sizes()` bounds them. Larger genes mean larger drafts.
- `categorical_choices()` / `from_params()` / `to_params()`: the same choices as Optuna-compatible
  values (None, int, float, str; an injected set is written "2,15,27") for `suggest_categorical`.
- `sample(rng)` (uniform per dimension, `random.Random`), `largest()`, `smallest()`,
  `validate(arch)`, `size()` (the product of the choice counts) and iteration over every point.
- `to_dict()` / `from_dict()`: JSON form recorded with supernet checkpoints so that a resume
  against another space or target is caught.
A resolved space is the supernet's: it never holds decoding shapes, which do not change a
draft's weights (the search's trials pair an arch with a shape: nas.candidates).

A tokens-only draft (`interaction="none"`) reads no target layer, so its `injected_layers` is
always () (as specdec's `DraftConfig` requires): such points do not multiply by the injected
choices. `size()` counts distinct points, iteration yields each once, `decode` ignores the
injected gene of a "none" point and `encode` writes 0 there, and `from_params` ignores the
injected param. Every gene vector in range still decodes, so searchers need no special case.
"""

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from search_spaces.arch import DIMENSIONS, IMAGE_INPUTS, INTERACTIONS, DraftArch
from search_spaces.errors import SpaceError
from search_spaces.target_dims import TargetDims

CategoricalValue = None | int | float | str

NO_FEATURES = "none"  # the interaction of a tokens-only draft


def capacity_key(dimension: str, value: Any) -> tuple:
    """Sort key that orders a dimension's values from the smallest to the largest draft."""
    if dimension == "interaction":
        return (INTERACTIONS.index(value),)
    if dimension == "image_input":
        return (IMAGE_INPUTS.index(value),)
    if dimension == "injected_layers":
        return (len(value), value)
    if dimension == "draft_vocab_size":
        return (value is None, value or 0)
    return (value,)


@dataclass(frozen=True)
class ResolvedSpace:
    name: str
    target: TargetDims
    interaction: tuple[str, ...]
    injected_layers: tuple[tuple[int, ...], ...]
    num_layers: tuple[int, ...]
    num_heads: tuple[int, ...]
    intermediate_size: tuple[int, ...]
    vision_keep_ratio: tuple[float, ...]
    draft_vocab_size: tuple[int | None, ...]
    image_input: tuple[str, ...] = (IMAGE_INPUTS[0],)

    def __post_init__(self) -> None:
        for dimension in DIMENSIONS:
            values = self.values(dimension)
            if not values:
                raise SpaceError(f"space {self.name!r} has no choice for {dimension}; list one")
            ordered = tuple(sorted(set(values), key=lambda v, d=dimension: capacity_key(d, v)))
            object.__setattr__(self, dimension, ordered)
        for heads in self.num_heads:
            hidden = self.target.hidden_size
            if hidden % heads or (hidden // heads) % 2:
                raise SpaceError(
                    f"space {self.name!r} num_heads={heads} does not split hidden size {hidden} "
                    "into even head sizes; pick a divisor that does"
                )

    def choices(self) -> dict[str, tuple]:
        return {dimension: self.values(dimension) for dimension in DIMENSIONS}

    def values(self, dimension: str) -> tuple:
        """The choices of one dimension."""
        return getattr(self, dimension)

    def gene_sizes(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.choices().values())

    def size(self) -> int:
        others = math.prod(self.gene_sizes()) // (len(self.interaction) * len(self.injected_layers))
        reading = sum(interaction != NO_FEATURES for interaction in self.interaction)
        tokens_only = len(self.interaction) - reading
        return others * (reading * len(self.injected_layers) + tokens_only)

    def __iter__(self) -> Iterator[DraftArch]:
        first_taps = self.injected_layers[0]
        for point in itertools.product(*self.choices().values()):
            arch = make_arch(point)
            # A tokens-only point is the same for every injected choice: yield it once.
            if arch.interaction != NO_FEATURES or point[1] == first_taps:
                yield arch

    def sample(self, rng: random.Random) -> DraftArch:
        return make_arch([rng.choice(values) for values in self.choices().values()])

    def largest(self) -> DraftArch:
        return make_arch([values[-1] for values in self.choices().values()])

    def smallest(self) -> DraftArch:
        return make_arch([values[0] for values in self.choices().values()])

    def validate(self, arch: DraftArch) -> None:
        if not isinstance(arch, DraftArch):
            raise SpaceError(f"expected a DraftArch, got {type(arch).__name__}; decode genes first")
        if arch.interaction == NO_FEATURES and arch.injected_layers != ():
            raise SpaceError(
                f"arch injected_layers={arch.injected_layers!r} must be () for interaction "
                "'none', which reads no target layer"
            )
        for dimension, values in self.choices().items():
            value = getattr(arch, dimension)
            if dimension == "injected_layers" and arch.interaction == NO_FEATURES:
                continue
            if value not in values:
                listed = ", ".join(str(v) for v in values)
                raise SpaceError(
                    f"arch {dimension}={value!r} is not in space {self.name!r}; "
                    f"pick one of {listed}"
                )

    def encode(self, arch: DraftArch) -> tuple[int, ...]:
        self.validate(arch)
        genes = []
        for dimension, values in self.choices().items():
            value = getattr(arch, dimension)
            genes.append(0 if value == () else values.index(value))  # () only for tokens-only
        return tuple(genes)

    def decode(self, genes: Sequence[int]) -> DraftArch:
        if len(genes) != len(DIMENSIONS):
            raise SpaceError(
                f"genes have {len(genes)} entries; space {self.name!r} needs {len(DIMENSIONS)} "
                f"({', '.join(DIMENSIONS)})"
            )
        point = []
        for gene, (dimension, values) in zip(genes, self.choices().items(), strict=True):
            if isinstance(gene, bool) or not isinstance(gene, int) or not 0 <= gene < len(values):
                raise SpaceError(
                    f"gene {dimension}={gene!r} is out of range; use an int in 0..{len(values) - 1}"
                )
            point.append(values[gene])
        return make_arch(point)

    def categorical_choices(self) -> dict[str, list[CategoricalValue]]:
        return {
            dimension: [to_categorical(value) for value in values]
            for dimension, values in self.choices().items()
        }

    def from_params(self, params: Mapping[str, CategoricalValue]) -> DraftArch:
        """The arch of an Optuna trial's params (as given by `categorical_choices()`)."""
        missing = [dimension for dimension in DIMENSIONS if dimension not in params]
        if missing:
            raise SpaceError(f"params lack {missing[0]!r}; suggest every dimension of the space")
        arch_fields = {dimension: params[dimension] for dimension in DIMENSIONS}
        taps = arch_fields["injected_layers"]
        if not isinstance(taps, str) or not all(tap.isdigit() for tap in taps.split(",")):
            raise SpaceError(f"params injected_layers={taps!r} is not a tap list like '2,15,27'")
        arch_fields["injected_layers"] = tuple(int(tap) for tap in taps.split(","))
        arch = make_arch(list(arch_fields.values()))
        self.validate(arch)
        return arch

    def to_params(self, arch: DraftArch) -> dict[str, CategoricalValue]:
        """The params `from_params` reads back as `arch` (a tokens-only arch gets the first
        injected choice: any means the same draft)."""
        self.validate(arch)
        params = {dimension: to_categorical(getattr(arch, dimension)) for dimension in DIMENSIONS}
        if arch.interaction == NO_FEATURES:
            params["injected_layers"] = to_categorical(self.injected_layers[0])
        return params

    def point(self, arch: DraftArch) -> "ResolvedSpace":
        """The space of `arch` alone (named <name>-point): a supernet of one draft."""
        self.validate(arch)
        values = {dimension: (getattr(arch, dimension),) for dimension in DIMENSIONS}
        return replace(self, name=f"{self.name}-point", **values)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "target": asdict(self.target)}
        for dimension, values in self.choices().items():
            data[dimension] = [list(v) if isinstance(v, tuple) else v for v in values]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ResolvedSpace":
        expected = {"name", "target", *DIMENSIONS}
        if "image_input" not in data:  # saved before image inputs were searched
            data = {**data, "image_input": [IMAGE_INPUTS[0]]}
        unknown = sorted(set(data) - expected)
        missing = sorted(expected - set(data))
        if unknown or missing:
            key = (unknown or missing)[0]
            problem = "is unknown" if unknown else "is missing"
            raise SpaceError(f"resolved space key {key!r} {problem}; write it with to_dict()")
        target_keys = {field.name for field in fields(TargetDims)}
        # Spaces saved before `images` was a dim resolved every target as one with images.
        if isinstance(data["target"], Mapping) and "images" not in data["target"]:
            data = {**data, "target": {**data["target"], "images": True}}
        if not isinstance(data["target"], Mapping) or set(data["target"]) != target_keys:
            listed = ", ".join(sorted(target_keys))
            raise SpaceError(f"resolved space target must have keys {listed}; use to_dict()")
        values = {dimension: tuple(data[dimension]) for dimension in DIMENSIONS}
        values["injected_layers"] = tuple(tuple(taps) for taps in values["injected_layers"])
        return cls(name=data["name"], target=TargetDims(**data["target"]), **values)


def make_arch(point: Sequence[Any]) -> DraftArch:
    """The arch of one value per dimension (in `DIMENSIONS` order), tokens-only taps cleared."""
    arch = DraftArch(*point)
    if arch.interaction == NO_FEATURES:
        return replace(arch, injected_layers=())
    return arch


def to_categorical(value: Any) -> CategoricalValue:
    if isinstance(value, tuple):
        return ",".join(str(tap) for tap in value)
    return value
