"""Acceptance of a verified draft tree: greedy and multi-candidate rejection sampling.

Both walk down from the root. At a node, the target's logits there give the distribution of the
next token; greedy accepts the child equal to the argmax. Sampling (EAGLE-2 / SpecInfer with a
deterministic top-k draft, i.e. q = 1): try the children best-first, accept child x with
probability p(x); on rejection set p(x) = 0 and renormalise; if no child is accepted, the bonus
token is sampled from what remains. The emitted tokens are then distributed exactly as plain
sampling from the target's p (temperature and top-p applied), which the tests check.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from specdec.tree import DraftTree


@dataclass
class Acceptance:
    path: list[int]  # accepted draft nodes, root excluded, in order
    bonus: int  # the target's own next token after the path


class TokenSampler:
    """The target's next-token choice: argmax at temperature 0, else seeded sampling from
    softmax(logits / temperature) restricted to the top-p nucleus (transformers' semantics)."""

    def __init__(self, temperature: float, top_p: float, seed: int | None, device: torch.device):
        self.temperature, self.top_p = temperature, top_p
        self.generator = torch.Generator(device=device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            # As transformers: drop the ascending-sorted tokens whose cumulative mass <= 1 - top_p.
            sorted_probs, order = probs.sort(dim=-1)
            drop_sorted = sorted_probs.cumsum(-1) <= 1.0 - self.top_p
            drop_sorted[..., -1] = False
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            probs = probs.masked_fill(drop, 0.0)
            probs = probs / probs.sum(-1, keepdim=True)
        return probs

    def pick(self, logits: torch.Tensor) -> int:
        """The next token from one row of logits [V]."""
        if self.greedy:
            return int(logits.argmax())
        return self.draw(self.probs(logits))

    def draw(self, probs: torch.Tensor) -> int:
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.generator, device=self.generator.device))


class NodeLogits:
    """The target's logits at tree nodes, computed from its final hidden states [N, H] only where
    acceptance looks: the `first` nodes in one batch (the draft's best path), others on demand.
    A tree of N nodes otherwise pays the vocabulary projection N times, though at most depth + 1
    nodes are visited."""

    def __init__(self, hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                 first: list[int]):
        self.hidden, self.head = hidden, head
        self.rows: dict[int, torch.Tensor] = {}
        self._compute(first)

    def _compute(self, nodes: list[int]) -> None:
        logits = self.head(self.hidden[torch.tensor(nodes, device=self.hidden.device)])
        self.rows.update(zip(nodes, logits))

    def __getitem__(self, node: int) -> torch.Tensor:
        if node not in self.rows:
            self._compute([node])
        return self.rows[node]


def accept(tree: DraftTree, logits: NodeLogits | torch.Tensor, sampler: TokenSampler) -> Acceptance:
    """Walk the verified tree; logits[i] is the target's logits row [V] at node i."""
    if tree.size == 1:
        return Acceptance([], sampler.pick(logits[0]))
    if sampler.greedy:
        return _accept_greedy(tree, logits)
    return _accept_sampling(tree, logits, sampler)


def _accept_greedy(tree: DraftTree, logits: NodeLogits | torch.Tensor) -> Acceptance:
    tokens, children = tree.tokens.tolist(), tree.children()
    node, path = 0, []
    while True:
        predicted = int(logits[node].argmax())
        match = next((child for child in children[node] if tokens[child] == predicted), None)
        if match is None:
            return Acceptance(path, predicted)
        path.append(match)
        node = match


def _accept_sampling(tree: DraftTree, logits: NodeLogits | torch.Tensor,
                     sampler: TokenSampler) -> Acceptance:
    tokens, children = tree.tokens.tolist(), tree.children()
    node, path = 0, []
    while True:
        probs = sampler.probs(logits[node])
        for child in children[node]:
            token = tokens[child]
            if sampler.uniform() < float(probs[token]):
                path.append(child)
                node = child
                break
            probs[token] = 0.0
            probs = probs / probs.sum()
        else:
            return Acceptance(path, sampler.draw(probs))
