"""`DraftArch`: one point of a search space, the architecture half of specdec's `DraftConfig`.

A plain frozen dataclass so that `search_spaces` imports nothing from the rest of draftnas:
the supernet and export copy these fields into a `DraftConfig` one to one.

Units are concrete (already resolved against one target):
- `interaction`: one of `INTERACTIONS`.
- `injected_layers`: sorted, unique target tap ids in transformers' `output_hidden_states`
  indexing (0 = embeddings, l = output of decoder layer l-1, num_layers = the last layer).
  Always () for `interaction="none"`: a tokens-only draft reads no target layer.
- `num_layers`, `num_heads`, `intermediate_size`: the draft's depth, attention heads (they divide
  the draft hidden size, which is the target's hidden size) and FFN width.
- `vision_keep_ratio`: fraction of image positions kept in the draft's context, in (0, 1].
- `draft_vocab_size`: size of a reduced draft vocabulary, or None for the target's full one.
- `image_input`: what the draft reads at image positions, one of `IMAGE_INPUTS`: `placeholder`
  (the image token's embedding) or `features` (the target's merged image embeddings there).
  Last, with a default, so that archs written before it existed read as `placeholder`.
How a draft decodes is not part of it: its weights do not depend on the decoding shape
(`specdec.shape.DecodeShape`), which a search tries beside the arch.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from search_spaces.errors import SpaceError

# Ordered from the least to the most draft-side capacity: `largest()` and `smallest()` and the
# gene order of a resolved space follow this order.
INTERACTIONS = ("none", "add", "concat", "cross_attention")
IMAGE_INPUTS = ("placeholder", "features")


@dataclass(frozen=True)
class DraftArch:
    interaction: str
    injected_layers: tuple[int, ...]
    num_layers: int
    num_heads: int
    intermediate_size: int
    vision_keep_ratio: float
    draft_vocab_size: int | None
    image_input: str = "placeholder"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (taps as a list), for reports, `best.json`, provenance and
        `DraftConfig.for_target`."""
        data = asdict(self)
        data["injected_layers"] = list(self.injected_layers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DraftArch":
        unknown = sorted(set(data) - set(DIMENSIONS))
        if unknown:
            raise SpaceError(
                f"arch key {unknown[0]!r} is unknown; use only {', '.join(DIMENSIONS)}"
            )
        missing = [name for name in DIMENSIONS if name not in data and name != "image_input"]
        if missing:
            raise SpaceError(f"arch lacks key {missing[0]!r}; give all of {', '.join(DIMENSIONS)}")
        return cls(**{**data, "injected_layers": tuple(data["injected_layers"])})


# The dimensions of every space, in gene order.
DIMENSIONS: tuple[str, ...] = tuple(field.name for field in fields(DraftArch))
