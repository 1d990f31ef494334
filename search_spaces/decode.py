"""`DecodeShape`: how a draft decodes, a search dimension like its depth or width.

A decoding step drafts a tree under the newest token and verifies it in one target forward:
- a chain of k draft tokens (`chain k`) is the tree of depth k, one child per node, k + 1 nodes;
- an EAGLE-2 dynamic tree (`tree D/K/N`) expands the top K children of the best K frontier nodes
  for D levels and keeps the N best nodes, the root included.
Small shapes cost little to verify and draft (a CPU, where verifying 32 tokens costs several plain
steps); big trees accept more per step (a GPU, where verifying them is nearly free). So the shape
is searched with the draft, on the latency table of the hardware that serves it.

In a space file a shape is written as its label (`chain 3`, `tree 6/4/32`); in a draft's
config.json and in `DraftArch.to_dict()` in specdec's DecodeConfig terms (`{"mode": "chain",
"k": 3}`, `{"mode": "tree", "depth": 6, "top_k": 4, "total_tokens": 32}`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces.errors import SpaceError

CHAIN_LABEL = re.compile(r"chain (\d+)")
TREE_LABEL = re.compile(r"tree (\d+)/(\d+)/(\d+)")


@dataclass(frozen=True)
class DecodeShape:
    depth: int  # draft tokens on the longest path (a chain's k)
    top_k: int  # children per expanded node (1: a chain)
    total_tokens: int  # nodes verified, the root included

    def __post_init__(self) -> None:
        values = (self.depth, self.top_k, self.total_tokens)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise SpaceError(f"decode shape {values} is invalid; use positive integers")
        # build_tree drafts top_k candidates at depth 1 and top_k^2 at each deeper level.
        candidates = self.top_k + (self.depth - 1) * self.top_k ** 2
        if not self.depth < self.total_tokens <= candidates + 1:
            raise SpaceError(
                f"decode shape {self.label} verifies {self.total_tokens} tokens; use between "
                f"depth + 1 = {self.depth + 1} (root and a full path) and {candidates + 1} "
                "(every candidate the tree drafts)")

    @classmethod
    def chain(cls, k: int) -> "DecodeShape":
        return cls(k, 1, k + 1)

    @property
    def is_chain(self) -> bool:
        return self.top_k == 1

    @property
    def label(self) -> str:
        if self.is_chain:
            return f"chain {self.depth}"
        return f"tree {self.depth}/{self.top_k}/{self.total_tokens}"

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, label: object, key: str = "decode") -> "DecodeShape":
        """The shape of a label (`chain 3`, `tree 6/4/32`)."""
        text = label.strip() if isinstance(label, str) else ""
        if match := CHAIN_LABEL.fullmatch(text):
            return cls.chain(int(match[1]))
        if match := TREE_LABEL.fullmatch(text):
            return cls(*(int(group) for group in match.groups()))
        raise SpaceError(f"{key}={label!r} is not a decoding shape; write 'chain K' or "
                         "'tree DEPTH/TOP_K/TOTAL_TOKENS', e.g. 'chain 3' or 'tree 6/4/32'")

    def to_dict(self) -> dict[str, Any]:
        """specdec's DecodeConfig fields of this shape."""
        if self.is_chain:
            return {"mode": "chain", "k": self.depth}
        return {"mode": "tree", "depth": self.depth, "top_k": self.top_k,
                "total_tokens": self.total_tokens}

    @classmethod
    def from_dict(cls, data: object) -> "DecodeShape":
        if isinstance(data, Mapping) and data.get("mode") == "chain" and set(data) == {"mode", "k"}:
            return cls.chain(data["k"])
        if isinstance(data, Mapping) and data.get("mode") == "tree" and \
                set(data) == {"mode", "depth", "top_k", "total_tokens"}:
            return cls(data["depth"], data["top_k"], data["total_tokens"])
        raise SpaceError(f"decode {data!r} is not a decoding shape; use {{'mode': 'chain', 'k': K}}"
                         " or {'mode': 'tree', 'depth': D, 'top_k': K, 'total_tokens': N}")


# What every draft decoded with before shapes were searched (DREAM's and the quality
# bars' tree); spaces without a `decode` dimension, and the hand-designed baselines, use it.
DEFAULT_DECODE = DecodeShape(6, 4, 32)
