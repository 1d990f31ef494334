"""`DecodeShape`: how a draft decodes: the one type of a decoding shape, and its one validator.

Held by `DecodeConfig` (how the decoder drafts), by `DraftConfig.decode` (a draft's recommended
shape) and by a search's trials (a draft and the shape it decodes with). Frozen and torch-free: a
search space file lists shapes, and search_spaces imports this module alone of specdec.

A decoding step drafts a tree under the newest token and verifies it in one target forward:
- a chain of k draft tokens (`chain k`) is the tree of depth k, one child per node, k + 1 nodes;
- an EAGLE-2 dynamic tree (`tree D/K/N`) expands the top K children of the best K frontier nodes
  for D levels and keeps the N best nodes, the root included.
Small shapes cost little to verify and draft (a CPU, where verifying 32 tokens costs several plain
steps); big trees accept more per step (a GPU, where verifying them is nearly free). So the shape
is searched with the draft, on the latency table of the hardware that serves it.

In a space file a shape is written as its label (`chain 3`, `tree 6/4/32`); in a draft's
config.json and a search's best.json as a dict (`{"mode": "chain", "k": 3}`, `{"mode": "tree",
"depth": 6, "top_k": 4, "total_tokens": 32}`), the keys a command line gives too
(specdec.recommended).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specdec.errors import DraftError

CHAIN_LABEL = re.compile(r"chain (\d+)")
TREE_LABEL = re.compile(r"tree (\d+)/(\d+)/(\d+)")


@dataclass(frozen=True)
class DecodeShape:
    depth: int  # draft tokens on the longest path (a chain's k)
    top_k: int  # children per expanded node (1: a chain)
    total_tokens: int  # nodes verified, the root included

    def __post_init__(self) -> None:
        for name in ("depth", "top_k", "total_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DraftError(f"decode shape {name} = {value!r}: use a positive integer")
        # build_tree drafts top_k candidates at depth 1 and top_k^2 at each deeper level.
        candidates = self.top_k + (self.depth - 1) * self.top_k ** 2
        if not self.depth < self.total_tokens <= candidates + 1:
            raise DraftError(
                f"decode shape depth {self.depth}, top_k {self.top_k}: total_tokens = "
                f"{self.total_tokens}, the nodes it verifies, must be between depth + 1 = "
                f"{self.depth + 1} (root and a full path) and {candidates + 1} (every candidate "
                "the tree drafts); change total_tokens")

    @classmethod
    def chain(cls, k: int) -> "DecodeShape":
        """k draft tokens in a row: the tree of depth k with one child per node."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise DraftError(f"decode shape k = {k!r}: use a positive integer")
        return cls(k, 1, k + 1)

    @property
    def is_chain(self) -> bool:
        return self.top_k == 1

    @property
    def size_key(self) -> tuple[int, int, int]:
        """Orders shapes from the cheapest to verify: tokens verified, then depth, then top_k."""
        return self.total_tokens, self.depth, self.top_k

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
        raise DraftError(f"{key}={label!r} is not a decoding shape; write 'chain K' or "
                         "'tree DEPTH/TOP_K/TOTAL_TOKENS', e.g. 'chain 3' or 'tree 6/4/32'")

    def to_dict(self) -> dict[str, Any]:
        """The shape as config.json and best.json write it."""
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
        raise DraftError(f"decode {data!r} is not a decoding shape; use {{'mode': 'chain', 'k': K}}"
                         " or {'mode': 'tree', 'depth': D, 'top_k': K, 'total_tokens': N}")


# What every draft decoded with before shapes were searched (DREAM's and EAGLE-2's tree): the
# decoder's default, and the shape of a space without a `decode` dimension.
DEFAULT_SHAPE = DecodeShape(6, 4, 32)
