"""The one forward of `Target` against transformers itself, for every tiny family.

Each check is what the rest of draftnas relies on: taps are `output_hidden_states`, a tree mask
verifies all branches in one call, crop/select continue like a fresh prefill, and the adapter's own
greedy loop is `generate`.
"""

import pytest
import torch

from targets import PreparedInputs, Target, crop_cache, select_cache
from targets.tiny import TINY_FAMILIES, tiny_inputs, tiny_target

# Keys whose length follows the token sequence; they are zero (text) for tokens added after it.
PER_TOKEN_KEYS = ("token_type_ids", "mm_token_type_ids")
TOLERANCE = {"atol": 2e-5, "rtol": 1e-4}


def tiny(family: str) -> tuple[Target, PreparedInputs]:
    target = tiny_target(family, seed=0)
    return target, tiny_inputs(target, n_text=6, seed=1)


def extended_kwargs(prepared: PreparedInputs, total: int) -> dict:
    """The prompt's model_kwargs for a sequence that continues it with text up to `total` tokens."""
    kwargs = dict(prepared.model_kwargs)
    for key in PER_TOKEN_KEYS:
        if key in kwargs:
            kwargs[key] = torch.nn.functional.pad(kwargs[key], (0, total - kwargs[key].shape[1]))
    return kwargs


def fresh_logits(target: Target, prepared: PreparedInputs, extra: list[int]) -> torch.Tensor:
    """Last-position logits of transformers' own forward over the prompt followed by `extra`."""
    ids = torch.cat([prepared.input_ids, torch.tensor([extra], dtype=torch.long)], dim=1)
    with torch.no_grad():
        out = target.model(input_ids=ids, **extended_kwargs(prepared, ids.shape[1]))
    return out.logits[:, -1]


def prefill(target: Target, prepared: PreparedInputs, **kwargs):
    cache = target.new_cache()
    out = target.forward(
        prepared.input_ids, cache=cache, model_kwargs=prepared.model_kwargs, **kwargs
    )
    return cache, out


def greedy_tokens(target: Target, prepared: PreparedInputs, steps: int) -> list[int]:
    """The adapter's own greedy loop: one prefill, then one token per forward."""
    cache, out = prefill(target, prepared, logits="last")
    tokens = []
    for _ in range(steps):
        token = int(out.logits[0, -1].argmax())
        tokens.append(token)
        if token in target.eos_token_ids:
            break
        out = target.forward(torch.tensor([[token]]), cache=cache, logits="last")
    return tokens


# A real branching tree after the prompt: parents of each node (-1 = child of the prompt's last
# token). Branches: 0-2-5, 0-3, 1-4.
TREE_PARENTS = [-1, -1, 0, 0, 1, 2]


def tree_paths(parents: list[int]) -> list[list[int]]:
    """For each node, the nodes from the root down to it."""
    paths = []
    for node in range(len(parents)):
        path = [node]
        while parents[path[0]] >= 0:
            path.insert(0, parents[path[0]])
        paths.append(path)
    return paths


def ancestor_mask(parents: list[int], prefix: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive [1, 1, k, prefix + k]: the whole prefix, and each node's ancestors and itself."""
    size = len(parents)
    allowed = torch.zeros(size, prefix + size, dtype=torch.bool)
    allowed[:, :prefix] = True
    for node, path in enumerate(tree_paths(parents)):
        allowed[node, [prefix + ancestor for ancestor in path]] = True
    blocked = torch.full((), torch.finfo(dtype).min, dtype=dtype)
    return torch.where(allowed, torch.zeros((), dtype=dtype), blocked)[None, None]


@pytest.fixture(params=TINY_FAMILIES)
def family(request) -> str:
    return request.param


def test_taps_equal_output_hidden_states(family):
    target, prepared = tiny(family)
    taps = tuple(range(target.num_layers + 1))
    cache, out = prefill(target, prepared, taps=taps)
    with torch.no_grad():
        reference = target.model(**_full(prepared), output_hidden_states=True)
    for tap in taps:
        torch.testing.assert_close(out.hidden[tap], reference.hidden_states[tap], **TOLERANCE)
    torch.testing.assert_close(out.logits, reference.logits, **TOLERANCE)
    torch.testing.assert_close(target.lm_head(out.last_hidden), out.logits)

    # A decode step through the cache taps the same layers as a full forward's last position.
    step = target.forward(torch.tensor([[5]]), cache=cache, taps=taps)
    ids = torch.cat([prepared.input_ids, torch.tensor([[5]])], dim=1)
    with torch.no_grad():
        full = target.model(
            input_ids=ids, **extended_kwargs(prepared, ids.shape[1]), output_hidden_states=True
        )
    for tap in taps:
        torch.testing.assert_close(
            step.hidden[tap][:, -1], full.hidden_states[tap][:, -1], **TOLERANCE
        )
    assert cache.length == ids.shape[1]


def test_embed_tokens_is_the_models_input_embedding(family):
    target, prepared = tiny(family)
    _, out = prefill(target, prepared, taps=(0,))
    text = ~prepared.image_mask[0]
    embedded = target.embed_tokens(prepared.input_ids)
    torch.testing.assert_close(embedded[0, text], out.hidden[0][0, text])


def test_tree_mask_verifies_every_branch_at_once(family):
    target, prepared = tiny(family)
    cache, _ = prefill(target, prepared)
    prefix = cache.length
    tokens = torch.randint(3, 100, (len(TREE_PARENTS),), generator=torch.Generator().manual_seed(3))
    paths = tree_paths(TREE_PARENTS)
    depths = torch.tensor([len(path) - 1 for path in paths])
    out = target.forward(
        tokens[None],
        positions=(prefix + depths)[None],
        attention_mask=ancestor_mask(TREE_PARENTS, prefix, target.dtype),
        cache=cache,
    )
    for node, path in enumerate(paths):
        expected = fresh_logits(target, prepared, tokens[path].tolist())
        torch.testing.assert_close(out.logits[:, node], expected, **TOLERANCE)

    # Keep the prefix and the accepted branch 0-2-5, then continue as a fresh prefill would.
    accepted = paths[5]
    select_cache(cache, torch.cat([torch.arange(prefix), prefix + torch.tensor(accepted)]))
    assert cache.length == prefix + len(accepted)
    step = target.forward(torch.tensor([[7]]), cache=cache)
    expected = fresh_logits(target, prepared, tokens[accepted].tolist() + [7])
    torch.testing.assert_close(step.logits[:, -1], expected, **TOLERANCE)


def test_crop_then_continue_equals_fresh_prefill(family):
    target, prepared = tiny(family)
    cache, _ = prefill(target, prepared)
    prefix = cache.length
    target.forward(torch.tensor([[11, 12, 13, 14]]), cache=cache, logits="none")
    crop_cache(cache, prefix + 2)
    step = target.forward(torch.tensor([[15]]), cache=cache)
    torch.testing.assert_close(
        step.logits[:, -1], fresh_logits(target, prepared, [11, 12, 15]), **TOLERANCE
    )


def test_greedy_loop_equals_generate(family):
    target, prepared = tiny(family)
    steps = 8
    with torch.no_grad():
        generated = target.model.generate(
            **_full(prepared), do_sample=False, max_new_tokens=steps, pad_token_id=0
        )
    expected = generated[0, prepared.input_ids.shape[1] :].tolist()
    assert greedy_tokens(target, prepared, steps) == expected


def test_inputs_embeds_equal_input_ids(family):
    target, prepared = tiny(family)
    cache, _ = prefill(target, prepared)
    ids = torch.tensor([[9, 10]])
    by_ids = target.forward(ids, cache=cache)
    crop_cache(cache, cache.length - 2)
    by_embeds = target.forward(inputs_embeds=target.embed_tokens(ids), cache=cache)
    torch.testing.assert_close(by_embeds.logits, by_ids.logits, **TOLERANCE)


def _full(prepared: PreparedInputs) -> dict:
    return {"input_ids": prepared.input_ids, **prepared.model_kwargs}


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2"])
def test_batched_rows_equal_single_rows(family):
    target = tiny_target(family)
    rows = torch.randint(3, 100, (2, 12), generator=torch.Generator().manual_seed(4))
    batched = target.forward(rows, cache=target.new_cache(), taps=(1,))
    for row in range(2):
        single = target.forward(rows[row : row + 1], cache=target.new_cache(), taps=(1,))
        torch.testing.assert_close(batched.logits[row], single.logits[0], **TOLERANCE)
        torch.testing.assert_close(batched.hidden[1][row], single.hidden[1][0], **TOLERANCE)
