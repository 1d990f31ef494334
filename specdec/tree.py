"""EAGLE-2 dynamic draft tree: expansion by cumulative log-probability, reranking, ancestor mask.

Node 0 is the root: the newest token, already emitted but not yet run through the target.
Nodes 1 .. N-1 are draft tokens, ordered so that parents come before children. A node at depth d
is verified at position prefix_len + d and sees the prefix plus its ancestors (`ancestor_mask`).
A chain of k tokens is the tree with top_k = 1, depth = k, total_tokens = k + 1.
"""

import math
from dataclasses import dataclass

import torch

from specdec.model import DraftCache, DraftModel


@dataclass
class DraftTree:
    tokens: torch.Tensor  # [N] target ids, tokens[0] = root
    parents: torch.Tensor  # [N] node index of the parent, -1 for the root
    depths: torch.Tensor  # [N] 0 for the root
    scores: torch.Tensor  # [N] cumulative draft log-probability, 0 for the root

    @classmethod
    def root_only(cls, root: torch.Tensor) -> "DraftTree":
        zero = torch.zeros(1, device=root.device)
        return cls(root.reshape(1), torch.full((1,), -1, device=root.device), zero.long(), zero)

    @property
    def size(self) -> int:
        return self.tokens.shape[0]

    @property
    def is_chain(self) -> bool:
        """True when node i's parent is i - 1 for all i: plain causal attention suffices."""
        expected = torch.arange(-1, self.size - 1, device=self.parents.device)
        return bool(torch.equal(self.parents, expected))

    def ancestor_mask(self) -> torch.Tensor:
        """Bool [N, N]: entry (i, j) is True when node j is node i or one of its ancestors."""
        n = self.size
        mask = torch.eye(n, dtype=torch.bool, device=self.parents.device)
        rows = torch.arange(n, device=self.parents.device)
        ancestor = self.parents.clone()
        # One hop up per round; a tree of depth d needs d rounds.
        for _ in range(int(self.depths.max())):
            has = ancestor >= 0
            mask[rows[has], ancestor[has]] = True
            ancestor = torch.where(has, self.parents[ancestor.clamp(min=0)], ancestor)
        return mask

    def best_path(self) -> list[int]:
        """The root and then, level by level, the best-scored child: the path most likely
        accepted, whose target logits the decoder computes up front in one batch."""
        children, path = self.children(), [0]
        while children[path[-1]]:
            path.append(children[path[-1]][0])
        return path

    def children(self) -> list[list[int]]:
        """For each node, its children ordered by draft score, best first."""
        result: list[list[int]] = [[] for _ in range(self.size)]
        order = torch.sort(self.scores, descending=True, stable=True).indices.tolist()
        parents = self.parents.tolist()
        for node in order:
            if parents[node] >= 0:
                result[parents[node]].append(node)
        return result


@torch.no_grad()
def build_tree(draft: DraftModel, cache: DraftCache, root: torch.Tensor, root_hidden: torch.Tensor,
               root_logits: torch.Tensor, root_position: int, depth: int, top_k: int,
               total_tokens: int, stop_below: float = 0.0) -> DraftTree:
    """Grow the tree from the root's draft output; returns at most `total_tokens` nodes.

    root: the root's target id (0-d); root_hidden [D] and root_logits [V'] are the draft's output
    at the root's slot. The frontier nodes of depths 1 .. depth-1 are run through the draft and
    appended to `cache`; the caller crops it back afterwards.

    stop_below: the tree stops growing once even its best frontier node's cumulative draft
    probability is below it (0: always `depth` levels). That node stays in the tree, but its
    children would be accepted less often than that, and drafting them costs a draft forward
    and verifying them target rows: on a CPU, where both are dear, a draft that is unsure stops
    early (experiments/early_stop.md).
    """
    device = root_logits.device
    prefix_len = cache.length
    top_k = min(top_k, root_logits.shape[-1])
    scores, ids = torch.log_softmax(root_logits.float(), -1).topk(top_k)
    cand_scores, cand_ids = [scores], [ids]
    cand_parents = [torch.full((top_k,), -1, device=device)]
    cand_depths = [torch.ones(top_k, dtype=torch.long, device=device)]
    frontier = torch.arange(top_k, device=device)  # candidate indices of the frontier
    frontier_features = root_hidden.expand(top_k, -1)
    # Ancestor rows of the frontier over the tree slots already in the cache (none yet).
    parent_rows = torch.zeros(top_k, 0, dtype=torch.bool, device=device)
    n_candidates = top_k
    for step in range(1, depth):
        if stop_below > 0 and float(scores.max()) < math.log(stop_below):
            break
        rows = torch.cat((parent_rows, torch.eye(top_k, dtype=torch.bool, device=device)), dim=1)
        mask = torch.cat((torch.ones(top_k, prefix_len, dtype=torch.bool, device=device), rows), 1)
        tokens = draft.to_target_ids(ids)
        positions = torch.full((1, top_k), root_position + step, device=device)
        out = draft(tokens[None], frontier_features[None], positions, cache, mask[None])
        child_scores, child_ids = torch.log_softmax(out.logits[0].float(), -1).topk(top_k)
        cumulative = (scores[:, None] + child_scores).flatten()  # [k*k]
        cand_scores.append(cumulative)
        cand_ids.append(child_ids.flatten())
        cand_parents.append(frontier.repeat_interleave(top_k))
        cand_depths.append(torch.full((top_k * top_k,), step + 1, device=device))
        best = cumulative.topk(top_k).indices
        chosen_parent = best // top_k
        frontier = n_candidates + best
        n_candidates += top_k * top_k
        scores, ids = cumulative[best], child_ids.flatten()[best]
        frontier_features, parent_rows = out.hidden[0][chosen_parent], rows[chosen_parent]
    return _rerank(root, torch.cat(cand_scores), torch.cat(cand_ids), torch.cat(cand_parents),
                   torch.cat(cand_depths), draft, total_tokens)


def _rerank(root: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor, parents: torch.Tensor,
            depths: torch.Tensor, draft: DraftModel, total_tokens: int) -> DraftTree:
    """Keep the best total_tokens - 1 candidates. A child's cumulative score never exceeds its
    parent's and the parent was created first, so a stable sort keeps every kept node's parent."""
    device = scores.device
    keep = torch.sort(-scores, stable=True).indices[: total_tokens - 1].sort().values
    new_index = torch.full((scores.shape[0],), -1, dtype=torch.long, device=device)
    new_index[keep] = torch.arange(1, keep.shape[0] + 1, device=device)
    kept_parents = parents[keep]
    node_parents = torch.where(kept_parents >= 0, new_index[kept_parents.clamp(min=0)], 0)
    tokens = torch.cat((root.reshape(1), draft.to_target_ids(ids[keep])))
    all_parents = torch.cat((torch.full((1,), -1, device=device), node_parents))
    all_depths = torch.cat((torch.zeros(1, dtype=torch.long, device=device), depths[keep]))
    all_scores = torch.cat((torch.zeros(1, device=device), scores[keep]))
    return DraftTree(tokens, all_parents.long(), all_depths, all_scores)
