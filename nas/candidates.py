"""What a search tries: a draft of the supernet's space, and the shape it decodes with.

A supernet's weights do not depend on how a draft decodes, so its space (`ResolvedSpace`) holds
drafts only; a search pairs each draft with a decoding shape (`specdec.shape`) of the space file's
`decode` list. `Candidate` is one pair; `CandidateSpace` all of them, with what searchers use:
categorical choices and params (Optuna's: the shape as its label under "decode", after the
draft's dimensions), uniform sampling, iteration and size. Written out (trials.csv, best.json, a
study's user attributes) a candidate is its arch's dict with the shape under "decode".
"""

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces import DraftArch, ResolvedSpace, SpaceError
from search_spaces.resolved import CategoricalValue
from specdec.shape import DEFAULT_SHAPE, DecodeShape

DECODE = "decode"  # the shape's key beside the arch's dimensions


@dataclass(frozen=True)
class Candidate:
    arch: DraftArch
    shape: DecodeShape

    def to_dict(self) -> dict[str, Any]:
        return {**self.arch.to_dict(), DECODE: self.shape.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Candidate":
        """`to_dict`'s form; without "decode" (a search from before shapes were searched) the
        default tree."""
        fields = dict(data)
        shape = fields.pop(DECODE, None)
        return cls(DraftArch.from_dict(fields),
                   DEFAULT_SHAPE if shape is None else DecodeShape.from_dict(shape))

    @property
    def key(self) -> str:
        """One string per distinct candidate (what "a search repeats none" compares)."""
        data = self.to_dict()
        return ";".join(f"{name}={data[name]}" for name in sorted(data))


@dataclass(frozen=True)
class CandidateSpace:
    space: ResolvedSpace
    shapes: tuple[DecodeShape, ...]  # the cheapest to verify first

    @property
    def name(self) -> str:
        return self.space.name

    def size(self) -> int:
        return self.space.size() * len(self.shapes)

    def __iter__(self) -> Iterator[Candidate]:
        for arch in self.space:
            for shape in self.shapes:
                yield Candidate(arch, shape)

    def sample(self, rng: random.Random) -> Candidate:
        return Candidate(self.space.sample(rng), rng.choice(self.shapes))

    def categorical_choices(self) -> dict[str, list[CategoricalValue]]:
        return {**self.space.categorical_choices(),
                DECODE: [shape.label for shape in self.shapes]}

    def from_params(self, params: Mapping[str, CategoricalValue]) -> Candidate:
        """The candidate of an Optuna trial's params (as `categorical_choices()` gives them)."""
        if DECODE not in params:
            raise SpaceError("params lack 'decode'; suggest every dimension of the space")
        candidate = Candidate(self.space.from_params(params), parse_label(params[DECODE]))
        self.validate(candidate)
        return candidate

    def to_params(self, candidate: Candidate) -> dict[str, CategoricalValue]:
        self.validate(candidate)
        return {**self.space.to_params(candidate.arch), DECODE: candidate.shape.label}

    def validate(self, candidate: Candidate) -> None:
        self.space.validate(candidate.arch)
        if candidate.shape not in self.shapes:
            listed = ", ".join(shape.label for shape in self.shapes)
            raise SpaceError(f"decode={candidate.shape.label!r} is not a shape of space "
                             f"{self.name!r}; pick one of {listed}")


def parse_label(label: object) -> DecodeShape:
    try:
        return DecodeShape.parse(label, "params decode")
    except ValueError as error:
        raise SpaceError(str(error)) from None
