"""Pieces of specdec that need no target: vision keep selection, vocab maps, tree masks,
acceptance rules, decode settings."""

import pytest
import torch

from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, _truncate
from specdec.errors import DraftError
from specdec.model import DraftModel
from specdec.recommended import ShapeKeys
from specdec.tree import DraftTree, build_tree
from specdec.verify import TokenSampler, accept
from specdec.vision import select_kept_positions
from specdec.vocab import most_frequent_tokens, vocab_maps
from targets.tiny import tiny_target


def test_vision_keeps_text_and_best_scored_fraction_of_images():
    image_mask = torch.tensor([[0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0]], dtype=torch.bool)
    scores = torch.tensor([[9.0, 0.1, 0.5, 0.4, 0.3, 9.0, 0.9, 0.2, 0.6, 0.0, 9.0]])
    keep = select_kept_positions(image_mask, scores, 0.5)
    # 8 image positions, keep 4: scores 0.9, 0.6, 0.5, 0.4 (positions 6, 8, 2, 3).
    assert keep[0].nonzero().flatten().tolist() == [0, 2, 3, 5, 6, 8, 10]
    assert select_kept_positions(image_mask, scores, 1.0).all()
    # Rounds up: 0.1 of 8 image positions keeps one.
    assert int((keep := select_kept_positions(image_mask, scores, 0.1))[image_mask].sum()) == 1
    assert keep[0, 6]


def test_vocab_maps_follow_eagle3_convention():
    d2t, t2d = vocab_maps([7, 2, 5], target_vocab_size=10)
    draft_ids = torch.arange(3)
    assert (draft_ids + d2t).tolist() == [2, 5, 7]
    assert t2d.nonzero().flatten().tolist() == [2, 5, 7]
    with pytest.raises(DraftError, match="distinct"):
        vocab_maps([1, 1], 10)
    with pytest.raises(DraftError, match="0..9"):
        vocab_maps([10], 10)
    stream = torch.tensor([3, 3, 3, 1, 1, 4, 0])
    assert most_frequent_tokens(stream, 3, target_vocab_size=6) == [3, 1, 0]


def _tree(parents: list[int], tokens: list[int], scores: list[float] | None = None) -> DraftTree:
    depths = [0] * len(parents)
    for node, parent in enumerate(parents[1:], start=1):
        depths[node] = depths[parent] + 1
    return DraftTree(torch.tensor(tokens), torch.tensor(parents), torch.tensor(depths),
                     torch.tensor(scores or [-float(i) for i in range(len(parents))]))


def test_ancestor_mask_and_chain_detection():
    tree = _tree([-1, 0, 0, 1, 3, 2], [9, 1, 2, 3, 4, 5])
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0],
        [1, 1, 0, 1, 1, 0],
        [1, 0, 1, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(tree.ancestor_mask(), expected)
    assert not tree.is_chain
    assert _tree([-1, 0, 1, 2], [0, 1, 2, 3]).is_chain


def test_greedy_accepts_longest_matching_path():
    # root 0 -> children tokens 1 (node 1), 2 (node 2); node 2 -> token 3 (node 3)
    tree = _tree([-1, 0, 0, 2], [0, 1, 2, 3])
    logits = torch.full((4, 5), -5.0)
    logits[0, 2] = logits[2, 3] = logits[3, 4] = 5.0  # target: 2, then 3, then 4
    result = accept(tree, logits, TokenSampler(0.0, 1.0, 0, torch.device("cpu")))
    assert (result.path, result.bonus) == ([2, 3], 4)


def test_sampling_acceptance_is_distributed_as_the_target():
    """One step of multi-candidate rejection with two siblings: P(first token = x) must be p(x)."""
    tree = _tree([-1, 0, 0], [0, 1, 3])  # candidate tokens 1 then 3
    logits = torch.tensor([[0.3, 1.5, -0.2, 0.8, 0.0]] + [[0.0] * 5] * 2)
    sampler = TokenSampler(1.0, 1.0, seed=1234, device=torch.device("cpu"))
    counts = torch.zeros(5)
    n = 20000
    for _ in range(n):
        result = accept(tree, logits, sampler)
        first = tree.tokens[result.path[0]].item() if result.path else result.bonus
        counts[first] += 1
    expected = torch.softmax(logits[0], -1) * n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 4 degrees of freedom; seeded, so deterministic: chi2 = 2.26 here (p = 0.69); 18.5 is p = 0.001.
    assert chi2 < 18.5


def test_top_p_matches_transformers_semantics():
    sampler = TokenSampler(1.0, 0.7, seed=0, device=torch.device("cpu"))
    probs = sampler.probs(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])))
    # Ascending cumulative mass 0.05, 0.2, 0.5 <= 0.3 drops the two smallest tokens.
    assert torch.allclose(probs, torch.tensor([0.625, 0.375, 0.0, 0.0]))


def test_truncate_at_eos_and_budget():
    assert _truncate([5, 2, 7, 2], {2}, budget=10) == [5, 2]
    assert _truncate([5, 6, 7], {2}, budget=2) == [5, 6]


@pytest.mark.parametrize("settings, field", [
    ({"mode": "beam"}, "mode"), ({"depth": 6, "total_tokens": 5}, "total_tokens"),
    ({"top_k": 0}, "top_k"), ({"depth": 4, "total_tokens": 4}, "total_tokens"),
    ({"mode": "chain", "k": 0}, "k"),
    ({"depth": 2, "top_k": 2, "total_tokens": 8}, "total_tokens"),  # more than the tree drafts
])
def test_bad_shape_keys_are_refused_in_one_line(settings, field):
    with pytest.raises(DraftError) as error:
        ShapeKeys(**settings).on(None)
    assert field in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("top_k", [1, 2])
def test_a_tree_stops_growing_below_stop_below(top_k):
    """The tree grows while its best frontier node's cumulative draft probability is at least
    stop_below: that node is kept, its children are not drafted (no draft forward for them)."""
    target = tiny_target("llama", seed=0)
    draft = DraftModel.random(DraftConfig.for_target(target, interaction="none"), target, seed=1)
    root_logits = torch.randn(target.vocab_size, generator=torch.Generator().manual_seed(2))
    root_logits[7] = 8.0  # a confident first level (probability near 0.9), a random draft after

    def grow(stop_below: float) -> tuple[DraftTree, int]:
        cache = draft.new_cache()
        tree = build_tree(draft, cache, torch.tensor(3), torch.zeros(target.hidden_size),
                          root_logits, 0, depth=4, top_k=top_k,
                          total_tokens=1 + top_k + 3 * top_k ** 2,  # every candidate
                          stop_below=stop_below)
        return tree, cache.length

    whole, whole_slots = grow(0.0)
    assert int(whole.depths.max()) == 4 and whole_slots == 3 * top_k
    best = {d: float(whole.scores[whole.depths == d].max().exp()) for d in (1, 2)}
    assert best[1] > 0.5 > best[2]  # so the threshold below falls between levels 1 and 2
    cut, cut_slots = grow((best[1] * best[2]) ** 0.5)
    assert int(cut.depths.max()) == 2 and cut_slots == top_k  # level 2 kept, never expanded
    assert cut.size == 1 + top_k + top_k ** 2  # the root and every candidate of levels 1 and 2
    assert torch.equal(cut.tokens[cut.depths == 1], whole.tokens[whole.depths == 1])
    with pytest.raises(DraftError, match="stop_below"):
        DecodeConfig(stop_below=1.0)
