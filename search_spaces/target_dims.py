"""`TargetDims`: the few sizes of a target that a symbolic space is resolved against.

Kept here (not imported from `targets`) because `search_spaces` sits at the bottom of the
layering; callers build it from their `Target` (hidden size, decoder layers, attention heads,
vocabulary size, whether it reads images).
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
    # Whether the target reads images: a text-only target's drafts keep every position (its
    # space's vision_keep_ratio resolves to 1.0 alone).
    images: bool = True

    @classmethod
    def of(cls, sized: Any) -> "TargetDims":
        """The dims of a `targets.Target` (or anything with its four sizes and `is_vlm`)."""
        return cls(sized.hidden_size, sized.num_layers, sized.num_heads, sized.vocab_size,
                   bool(sized.is_vlm))

    def __post_init__(self) -> None:
        for field in fields(self)[:4]:  # the sizes
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpaceError(
                    f"target dims {field.name}={value!r} is invalid; give a positive integer"
                )
