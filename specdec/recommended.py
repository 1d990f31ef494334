"""The decoding shape a draft runs with: its recommended one, unless the user says otherwise.

A draft made by `draftnas search` + `export` records the shape found fastest for it on one
hardware (DraftConfig.decode). `draftnas decode` and `draftnas bench` decode with it; shape keys
given on the command line (mode, k, depth, top_k, total_tokens; unset = None) go on top. A draft
without a recommended shape, or a `mode` other than its shape's, takes DecodeConfig's defaults for
the keys not given.
"""

from collections.abc import Mapping
from typing import Any

from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig

SHAPE_KEYS = ("mode", "k", "depth", "top_k", "total_tokens")


def shaped_config(draft: DraftConfig | None, given: Mapping[str, Any],
                  **settings: Any) -> tuple[DecodeConfig, str]:
    """The DecodeConfig for `draft` and where its shape came from ("recommended", "command line",
    "recommended + command line" or "default"); `settings`: the other DecodeConfig fields."""
    given = {key: value for key, value in given.items() if key in SHAPE_KEYS and value is not None}
    recommended = draft.decode if draft is not None else None
    base = {}
    if recommended and given.get("mode", recommended["mode"]) == recommended["mode"]:
        base = dict(recommended)
    sources = [name for name, used in (("recommended", base), ("command line", given)) if used]
    return DecodeConfig(**{**base, **given}, **settings), " + ".join(sources) or "default"


def shape_label(config: DecodeConfig) -> str:
    """`chain 3` or `tree 6/4/32` (depth/top_k/total_tokens), as search spaces write shapes."""
    if config.mode == "chain":
        return f"chain {config.k}"
    return f"tree {config.depth}/{config.top_k}/{config.total_tokens}"
