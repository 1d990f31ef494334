"""A trained supernet serves every decoding shape: its weights do not depend on how a draft decodes.

So a search may try shapes the supernet's space did not list (a supernet trained before shapes
were searched has the default tree alone), and export may extract a draft with the shape the
search chose: only the other dimensions must be the ones the supernet was trained for.
"""

from dataclasses import replace
from typing import Any

from search_spaces import DecodeShape


def serve_shapes(superdraft: Any, shapes: tuple[DecodeShape, ...]) -> None:
    """Let `superdraft` activate and extract its archs with any of `shapes`."""
    superdraft.space = replace(superdraft.space, decode_shapes=tuple(shapes))
