"""The speculative decoder: one loop for vanilla, chain and dynamic-tree decoding.

State between steps: the target cache holds the verified prefix (positions 0 .. P-1); the root,
the newest emitted token at position P, is not yet in it. The draft has been fed the slots up to
the root's (see specdec.model for the slot alignment) but those still waiting in
`_DraftState.pending`; the draft's output at the newest slot fed is kept.
One step: draft a tree under the root -> one target forward over root + tree (4D ancestor mask)
-> accept a path and a bonus token -> keep only prefix + root + path in the target cache -> feed
the draft the accepted tokens with the target's real features -> the bonus token is the new root.
With draft=None the tree is the root alone, which is plain autoregressive decoding.

Adaptive drafting (DecodeConfig.adaptive, specdec.adaptive): a step may also skip the draft and
verify the root alone (a plain step) when drafting does not pay on this hardware. A plain step
does not run the draft: its slot (the bonus token, the target's taps at the root) waits in
`_DraftState.pending`, as the prompt's slots do after the prefill, and the next drafted step
first feeds all waiting slots in one forward.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from specdec.adaptive import AdaptiveDrafting, AlwaysDraft, DraftPolicy
from specdec.errors import DraftError
from specdec.model import DraftCache, DraftModel
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from specdec.stats import DecodeStats, Stopwatch
from specdec.tree import DraftTree, build_tree
from specdec.verify import NodeLogits, TokenSampler, accept
from specdec.vision import select_kept_positions
from targets import MERGED_INPUT_TAP, PreparedInputs, crop_cache, select_cache


@dataclass
class DecodeConfig:
    """shape: what a step drafts, a chain or an EAGLE-2 dynamic tree (specdec.shape).
    eos_token_ids None = the target's. adaptive: skip drafting while it measures slower than
    plain steps and probe it again with exponential back-off (see specdec.adaptive); False drafts
    every step, which is what measuring a draft's tau needs. stop_below: a step's tree stops
    growing once its best frontier node's cumulative draft probability is below it
    (specdec.tree.build_tree); 0 drafts the whole shape, which is what a latency table and a
    shape's measured tau assume."""

    shape: DecodeShape = DEFAULT_SHAPE
    eos_token_ids: list[int] | None = None
    adaptive: bool = True
    stop_below: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.shape, DecodeShape):
            raise DraftError(f"decode shape {self.shape!r}: use a DecodeShape, e.g. "
                             "DecodeShape.chain(4) or DecodeShape(depth=6, top_k=4, "
                             "total_tokens=32)")
        if not (isinstance(self.stop_below, int | float) and 0 <= self.stop_below < 1):
            raise DraftError(f"stop_below = {self.stop_below!r}: use a probability in [0, 1) "
                             "(0 drafts the whole shape)")


@dataclass
class Generation:
    token_ids: list[int]
    text: str | None
    stats: DecodeStats = field(default_factory=DecodeStats)


@dataclass
class _PendingSlots:
    """Slots the target verified that the draft has not been fed yet, oldest first; the last is
    the root's. Per chunk (the prefill, a step): tokens [n], the target's taps {layer: [1, n, H]}
    at the slots' parents, rotary positions [n] (the prefill's skip the dropped image positions),
    and, for a draft with image_input 'features', the prefill's merged input embeddings at the
    slots' tokens [1, n, H] (None for a step's chunk: it holds no image)."""

    tokens: list[torch.Tensor] = field(default_factory=list)
    hidden: list[dict[int, torch.Tensor]] = field(default_factory=list)
    positions: list[torch.Tensor] = field(default_factory=list)
    merged: list[torch.Tensor | None] = field(default_factory=list)

    def add(self, tokens: torch.Tensor, hidden: dict[int, torch.Tensor],
            positions: torch.Tensor, merged: torch.Tensor | None = None) -> None:
        self.tokens.append(tokens)
        self.hidden.append(hidden)
        self.positions.append(positions)
        self.merged.append(merged)

    def take(self, embed: Any) -> tuple[torch.Tensor, dict[int, torch.Tensor], torch.Tensor,
                                         torch.Tensor | None]:
        """All waiting slots joined (tokens [N], taps [1, N, H], positions [N], merged input
        embeddings [1, N, H] or None); none wait after. A chunk without merged embeddings gets
        `embed` of its tokens (the target's input there too) when another chunk has some."""
        tokens, positions = torch.cat(self.tokens), torch.cat(self.positions)
        hidden = {tap: torch.cat([chunk[tap] for chunk in self.hidden], dim=1)
                  for tap in self.hidden[0]}
        merged = None
        if any(chunk is not None for chunk in self.merged):
            merged = torch.cat([embed(ids[None]) if chunk is None else chunk
                                for ids, chunk in zip(self.tokens, self.merged)], dim=1)
        self.tokens, self.hidden, self.positions, self.merged = [], [], [], []
        return tokens, hidden, positions, merged

    def __bool__(self) -> bool:
        return bool(self.tokens)


@dataclass
class _DraftState:
    cache: DraftCache
    pending: _PendingSlots = field(default_factory=_PendingSlots)  # verified, not yet fed
    hidden: torch.Tensor | None = None  # [D] the draft's output at the newest slot fed
    logits: torch.Tensor | None = None  # [V'] its logits there
    peak_length: int = 0  # the longest the draft cache got (prefix slots + one tree)


class SpeculativeDecoder:
    def __init__(self, target: Any, draft: DraftModel | None = None,
                 config: DecodeConfig | None = None, policy: DraftPolicy | None = None):
        """policy: whether a step drafts; None = from config.adaptive (tests pass scripted ones).
        It lives as long as the decoder: what drafting costs and gains with this draft on this
        hardware carries over from one generation to the next, so each short generation does
        not pay the first probes again."""
        if draft is not None:
            draft.attach(target)
        self.target, self.draft, self.config = target, draft, config or DecodeConfig()
        self.taps = tuple(draft.config.injected_layers) if draft is not None else ()
        self.policy = policy or (AdaptiveDrafting() if self.config.adaptive else AlwaysDraft())

    @torch.inference_mode()
    def generate(self, prompt: str | None = None, images: Any = None, inputs: Any = None,
                 max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None) -> Generation:
        """Generate up to max_new_tokens tokens, stopping after an EOS token (kept)."""
        check_sampling(max_new_tokens, temperature, top_p)
        target, stats = self.target, DecodeStats()
        clock = Stopwatch(target.device)
        start = clock.now()
        prepared = _prepare(target, prompt, images, inputs)
        eos = set(self.config.eos_token_ids if self.config.eos_token_ids is not None
                  else target.eos_token_ids)
        sampler = TokenSampler(temperature, top_p, seed, target.device)
        cache = target.new_cache()
        emitted: list[int] = []

        def finished() -> bool:
            return len(emitted) >= max_new_tokens or (bool(emitted) and emitted[-1] in eos)

        prefix_len = prepared.input_ids.shape[1]
        if prefix_len + max_new_tokens > target.max_positions:
            raise DraftError(f"prompt: {prefix_len} tokens + max_new_tokens={max_new_tokens} "
                             f"exceed the target's context of {target.max_positions}; shorten "
                             "the prompt or lower max_new_tokens")
        stats.prompt_tokens = prefix_len
        with clock.measure(stats, "time_prefill"):
            with clock.measure(stats, "time_target"):
                out = target.forward(
                    prepared.input_ids, positions=_positions(0, prefix_len, target.device),
                    attention_mask=None, cache=cache, taps=self._prefill_taps(prepared),
                    model_kwargs=prepared.model_kwargs, logits="last",
                    image_scores=self._needs_image_scores(prepared))
            emitted.append(sampler.pick(out.logits[0, -1]))
            root = emitted[-1]
            state = None
            if not finished() and self.draft is not None:
                # The draft runs its prefill slots only when it first drafts: a decoder whose
                # policy is pausing the draft leaves it idle for the whole generation.
                with clock.measure(stats, "time_draft"):
                    state = _DraftState(self.draft.new_cache())
                    self._hold_prefill_slots(state, prepared, out, root)
        stats.max_target_cache = cache.length
        policy = self.policy
        while not finished():
            # Decided before this step draws anything: see specdec.adaptive on lossless sampling.
            drafting = state is not None and policy.draft_next()
            if drafting and state.pending:
                # The prefill's and plain steps' slots, in one forward. Left out of the step's time
                # that the policy sees: it is paid once per resume (the back-off bounds how
                # often), not per step.
                with clock.measure(stats, "time_draft"):
                    self._draft_catch_up(state)
            step_start = clock.now()
            tree = DraftTree.root_only(torch.tensor(root, device=target.device))
            if drafting:
                with clock.measure(stats, "time_draft"):
                    tree = self._draft_tree(state, root, prefix_len)
            with clock.measure(stats, "time_target"):
                out, logits = self._verify(tree, prefix_len, cache)
            stats.max_target_cache = max(stats.max_target_cache, cache.length)
            # Logits of nodes off the draft's best path, if visited, are computed in here.
            result = accept(tree, logits, sampler)
            tokens = tree.tokens.tolist()
            new = [tokens[node] for node in result.path] + [result.bonus]
            new = _truncate(new, eos, max_new_tokens - len(emitted))
            emitted.extend(new)
            stats.record_step(len(result.path), len(new), tree.size - 1)
            if finished():
                break
            kept = [0] + result.path
            _keep_path(cache, prefix_len, kept, target.device)
            prefix_len += len(kept)
            root = result.bonus
            if state is not None:
                self._hold_slots(state, out, tree, kept, root, prefix_len)
                if drafting:  # a drafting run feeds its slots at once, inside the step's time
                    with clock.measure(stats, "time_draft"):
                        self._draft_catch_up(state)
                policy.record(len(new), clock.now() - step_start, drafting)
        stats.new_tokens = len(emitted)
        stats.max_draft_cache = state.peak_length if state is not None else 0
        stats.time_total = clock.now() - start
        text = target.tokenizer.decode(emitted, skip_special_tokens=True) if target.tokenizer else None
        return Generation(emitted, text, stats)

    def _verify(self, tree: DraftTree, prefix_len: int, cache: Any) -> tuple[Any, NodeLogits]:
        """One target forward over root + tree; logits only where acceptance will look."""
        target = self.target
        mask = None if tree.is_chain else _tree_mask(tree, prefix_len, target.dtype)
        out = target.forward(tree.tokens[None], positions=(prefix_len + tree.depths)[None],
                             attention_mask=mask, cache=cache, taps=self.taps, logits="none")
        return out, NodeLogits(out.last_hidden[0], target.lm_head, tree.best_path())

    # -- the draft's side ----------------------------------------------------------------------
    def _reads_image_features(self, prepared: Any) -> bool:
        return (self.draft is not None and self.draft.config.image_input == "features"
                and bool(prepared.image_mask.any()))

    def _prefill_taps(self, prepared: Any) -> tuple[int, ...]:
        """The draft's taps, and tap 0 (the target's merged input embeddings: what its first
        layer receives, image features included) for a draft that reads image features."""
        if self._reads_image_features(prepared) and MERGED_INPUT_TAP not in self.taps:
            return (*self.taps, MERGED_INPUT_TAP)
        return self.taps

    def _needs_image_scores(self, prepared: Any) -> bool:
        return (self.draft is not None and self.draft.config.vision_keep_ratio < 1.0
                and bool(prepared.image_mask.any()))

    def _hold_prefill_slots(self, state: _DraftState, prepared: Any, out: Any, root: int) -> None:
        """Slots (x_{j+1}, g_j) for j = 0 .. T-1, the root being x_T; dropped images left out."""
        ids = prepared.input_ids[0]
        tokens = torch.cat((ids[1:], torch.tensor([root], device=ids.device)))
        positions = torch.arange(1, ids.shape[0] + 1, device=ids.device)
        hidden = {tap: out.hidden[tap] for tap in self.taps}
        merged = None
        if self._reads_image_features(prepared):  # slot j holds token j + 1: its input there
            root_embed = self.target.embed_tokens(tokens[-1:][None])
            merged = torch.cat((out.hidden[MERGED_INPUT_TAP][:, 1:], root_embed), dim=1)
        if out.image_scores is not None:
            keep = select_kept_positions(prepared.image_mask[0], out.image_scores[0],
                                         self.draft.config.vision_keep_ratio)
            keep[-1] = True  # the root's slot gives the first draft prediction
            tokens, positions = tokens[keep], positions[keep]
            hidden = {tap: states[:, keep] for tap, states in hidden.items()}
            merged = None if merged is None else merged[:, keep]
        state.pending.add(tokens, hidden, positions, merged)

    def _draft_tree(self, state: _DraftState, root: int, prefix_len: int) -> DraftTree:
        shape, before = self.config.shape, state.cache.length
        tree = build_tree(self.draft, state.cache, torch.tensor(root, device=state.logits.device),
                          state.hidden, state.logits, prefix_len, shape.depth, shape.top_k,
                          shape.total_tokens, self.config.stop_below)
        state.peak_length = max(state.peak_length, state.cache.length)
        state.cache.crop(before)  # the tree's slots carry stand-in features: recompute them
        return tree

    def _hold_slots(self, state: _DraftState, out: Any, tree: DraftTree, kept: list[int],
                    bonus: int, root_position: int) -> None:
        """Slots (path token, target taps at its parent) ... (bonus, taps at the last accepted
        node), the bonus at root_position: the target's real features replace the draft's
        stand-ins when fed."""
        device = tree.tokens.device
        if kept == list(range(len(kept))):  # a prefix of the nodes (plain steps, chains): views
            path, hidden = tree.tokens[1 : len(kept)], {
                tap: out.hidden[tap][:, : len(kept)] for tap in self.taps}
        else:
            index = torch.tensor(kept, device=device)
            path, hidden = tree.tokens[index[1:]], {tap: out.hidden[tap][:, index]
                                                    for tap in self.taps}
        tokens = torch.cat((path, torch.tensor([bonus], device=device)))
        positions = torch.arange(root_position - len(kept) + 1, root_position + 1, device=device)
        state.pending.add(tokens, hidden, positions)

    def _draft_catch_up(self, state: _DraftState) -> None:
        """Feed every waiting slot in one forward."""
        tokens, hidden, positions, merged = state.pending.take(self.target.embed_tokens)
        result = self.draft(tokens[None], self.draft.fuse(hidden), positions[None], state.cache,
                            logits="last", merged_embeds=merged)
        state.hidden, state.logits = result.hidden[0, -1], result.logits[0, -1]
        state.peak_length = max(state.peak_length, state.cache.length)


def _positions(start: int, count: int, device: torch.device) -> torch.Tensor:
    return torch.arange(start, start + count, device=device)[None]


def _tree_mask(tree: DraftTree, prefix_len: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive [1, 1, N, prefix_len + N]: prefix visible to all, tree nodes see their ancestors."""
    visible = torch.cat((torch.ones(tree.size, prefix_len, dtype=torch.bool,
                                    device=tree.tokens.device), tree.ancestor_mask()), dim=1)
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    return mask.masked_fill(~visible, torch.finfo(dtype).min)[None, None]


def _keep_path(cache: Any, prefix_len: int, kept: list[int], device: torch.device) -> None:
    """Keep prefix + the accepted nodes (tree indices, root first) in the target cache."""
    if kept == list(range(len(kept))):  # nodes stored in path order: a crop does it
        crop_cache(cache, prefix_len + len(kept))
        return
    path = prefix_len + torch.tensor(kept, device=device)
    select_cache(cache, torch.cat((torch.arange(prefix_len, device=device), path)))


def _truncate(tokens: list[int], eos: set[int], budget: int) -> list[int]:
    tokens = tokens[:budget]
    for i, token in enumerate(tokens):
        if token in eos:
            return tokens[: i + 1]
    return tokens


def _prepare(target: Any, prompt: str | None, images: Any, inputs: Any) -> PreparedInputs:
    if isinstance(inputs, PreparedInputs):
        return inputs
    return target.prepare(prompt=prompt, images=images, inputs=inputs)


def check_sampling(max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Settings `generate` refuses (commands check them before loading anything)."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise DraftError(f"max_new_tokens = {max_new_tokens!r}: use a positive integer")
    # nan compares false with everything, so it would pass `< 0` and poison every probability.
    if not math.isfinite(temperature) or temperature < 0:
        raise DraftError(f"temperature = {temperature}: use 0 (greedy) or a finite positive value")
    if not 0.0 < top_p <= 1.0:
        raise DraftError(f"top_p = {top_p}: use a value in (0, 1]")
