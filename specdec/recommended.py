"""The decoding shape a draft runs with: its recommended one, unless the user says otherwise.

A draft made by `draftnas search` + `export` records the shape found fastest for it on one
hardware (DraftConfig.decode). `draftnas decode` and `draftnas bench` decode with it; shape keys
given on the command line (`ShapeKeys`: mode, k, depth, top_k, total_tokens; unset = None) go on
top. A draft without a recommended shape, or a `mode` other than its shape's, takes the default
shape's values (a chain of 4, the tree 6/4/32) for the keys not given.
"""

from dataclasses import dataclass, fields
from typing import Any

from specdec.decoder import DecodeConfig
from specdec.errors import DraftError
from specdec.shape import DEFAULT_SHAPE, DecodeShape

MODES = ("chain", "tree")
DEFAULTS = {"mode": "tree", "k": 4, **DEFAULT_SHAPE.to_dict()}


@dataclass(kw_only=True)
class ShapeKeys:
    """A decoding shape as a command line gives it, key by key; None: not given."""

    mode: str | None = None  # chain | tree
    k: int | None = None  # a chain's draft tokens
    depth: int | None = None  # a tree's: longest path,
    top_k: int | None = None  # children per expanded node,
    total_tokens: int | None = None  # nodes verified with the root

    def on(self, recommended: DecodeShape | None) -> tuple[DecodeShape, str]:
        """The shape these keys make on top of `recommended`, and where it came from
        ("recommended", "command line", "recommended + command line" or "default")."""
        keys = (key.name for key in fields(ShapeKeys))  # a command's config holds more keys
        given = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if given.get("mode", "tree") not in MODES:
            raise DraftError(f"decode mode {given['mode']!r}: use one of {list(MODES)}")
        base = {}
        if recommended and given.get("mode", recommended.to_dict()["mode"]) == \
                recommended.to_dict()["mode"]:
            base = recommended.to_dict()
        sources = [name for name, used in (("recommended", base), ("command line", given)) if used]
        shaped = {**DEFAULTS, **base, **given}
        if shaped["mode"] == "chain":
            shape = DecodeShape.chain(shaped["k"])
        else:
            shape = DecodeShape(shaped["depth"], shaped["top_k"], shaped["total_tokens"])
        return shape, " + ".join(sources) or "default"


def shaped_config(recommended: DecodeShape | None, keys: ShapeKeys,
                  **settings: Any) -> tuple[DecodeConfig, str]:
    """The DecodeConfig of `keys` on top of a draft's `recommended` shape, and where its shape
    came from; `settings`: the other DecodeConfig fields."""
    shape, source = keys.on(recommended)
    return DecodeConfig(shape, **settings), source
