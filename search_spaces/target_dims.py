"""`TargetDims`: the few sizes of a target that a symbolic space is resolved against.

Kept here (not imported from `targets`) because `search_spaces` sits at the bottom of the
layering; callers build it from their `Target` (hidden size, decoder layers, attention heads,
vocabulary size).
"""

from dataclasses import dataclass, fields
from typing import Any

from search_spaces.errors import SpaceError


@dataclass(frozen=True)
class TargetDims:
    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int

    @classmethod
    def of(cls, sized: Any) -> "TargetDims":
        """The dims of anything with these four attributes, such as a `targets.Target`."""
        return cls(*(getattr(sized, field.name) for field in fields(cls)))

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpaceError(
                    f"target dims {field.name}={value!r} is invalid; give a positive integer"
                )
