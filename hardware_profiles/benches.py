"""What each table entry runs: the decoder's real calls, on the target and on DraftModel modules.

`PartBenches(target, image_tokens).prepare(key)` returns `(call, reset)`: `call()` is the timed work,
`reset()` (untimed) puts the caches back as they were before it, so every repeat starts from the
same context length. Caches are restored from a snapshot rather than cropped: cropping copies.
Expensive setups (a prefilled target cache, a draft layer's KV at a context, a draft model) are
kept for the keys that follow, which `parts.required_keys` orders context by context.
"""

import time
from collections.abc import Callable
from typing import Any

import torch

from hardware_profiles.parts import parse_key
from hardware_profiles.timing import CLOCKS, TimingConfig
from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.model import DraftCache, DraftModel, DraftOutput, KVCache
from specdec.stats import DecodeStats
from specdec.tree import DraftTree, build_tree
from specdec.verify import TokenSampler, accept
from specdec.vision import select_kept_positions
from targets import PreparedInputs, Target, TargetCache, crop_cache, select_cache

Call = Callable[[], object]

# Token ids drawn for synthetic inputs stay clear of special and image ids at both ends.
LOW_ID = 3
# A draft whose first layer is of each `layer` part kind (parts.layer_kinds).
LAYER_KIND_INTERACTION = {"self": "add", "cross": "cross_attention", "concat": "concat"}
# New tokens of one timed plain generation; its prompt is ctx - PLAIN_TOKENS / 2 long, so that
# its steps run around a context of ctx.
PLAIN_TOKENS = 16


def generation_step_ms(decoder: SpeculativeDecoder, inputs: PreparedInputs, new_tokens: int,
                       clock: str) -> tuple[float, DecodeStats]:
    """(ms per step, stats) of one generation of new_tokens tokens, its prefill excluded. Wall
    clock: the decoder's own stopwatch (time after its prefill / steps). CPU time (`clock`
    "cpu"), which that stopwatch does not keep: (the whole generation - a one-token generation,
    the prefill alone) / steps, whose two prefills cancel out only on average."""
    if clock == "wall":
        stats = decoder.generate(inputs=inputs, max_new_tokens=new_tokens).stats
        return (stats.time_total - stats.time_prefill) / stats.steps * 1e3, stats
    now = CLOCKS[clock]
    started = now()
    decoder.generate(inputs=inputs, max_new_tokens=1)
    prefill = now() - started
    started = now()
    stats = decoder.generate(inputs=inputs, max_new_tokens=new_tokens).stats
    return (now() - started - prefill) / stats.steps * 1e3, stats


class PartBenches:
    def __init__(self, target: Target, image_tokens: int, seed: int = 0):
        self.target, self.image_tokens = target, image_tokens
        self.generator = torch.Generator().manual_seed(seed)
        self.models: dict[tuple, DraftModel] = {}
        self.target_caches: dict[int, TargetCache] = {}
        self.layer_kv: dict[tuple, tuple[KVCache, KVCache]] = {}

    # -- inputs --------------------------------------------------------------------------------
    def ids(self, count: int) -> torch.Tensor:
        high = max(self.target.vocab_size - 8, LOW_ID + 1)
        ids = torch.randint(LOW_ID, high, (1, count), generator=self.generator)
        return ids.to(self.target.device)

    def hidden(self, count: int, width: int | None = None) -> torch.Tensor:
        width = width or self.target.hidden_size
        values = torch.randn(1, count, width, generator=self.generator)
        return values.to(self.target.device, self.target.dtype)

    def positions(self, start: int, count: int) -> torch.Tensor:
        return torch.arange(start, start + count, device=self.target.device)[None]

    # -- entry points ----------------------------------------------------------------------------
    def prepare(self, key: str) -> tuple[Call, Call | None]:
        part, fields = parse_key(key)
        return getattr(self, f"bench_{part}")(**fields)

    def release(self, keep_ctx: int | None) -> None:
        """Drop the caches of other contexts (memory stays bounded on large targets)."""
        self.target_caches = {c: v for c, v in self.target_caches.items() if c == keep_ctx}
        self.layer_kv = {k: v for k, v in self.layer_kv.items() if k[-1] == keep_ctx}

    # -- the target side -----------------------------------------------------------------------
    def plain_samples(self, ctx: int, timing: TimingConfig, passes: int) -> list[float]:
        """One of `passes` passes of T_target(1) samples, the per-step times of whole plain
        generations (SpeculativeDecoder without a draft, no EOS stop) as the bench's vanilla pays
        them: one untimed warm-up generation, then repeats / passes timed ones (at least 2; no
        more once budget_s / passes is spent, for a slow target)."""
        ids = self.ids(max(ctx - PLAIN_TOKENS // 2, 1))
        inputs = PreparedInputs(ids, {}, self.target.image_mask(ids))
        decoder = SpeculativeDecoder(self.target, None, DecodeConfig(eos_token_ids=[]))
        generation_step_ms(decoder, inputs, PLAIN_TOKENS, timing.clock)
        samples, began = [], time.perf_counter()
        while len(samples) < max(-(-timing.repeats // passes), 2) and (
                len(samples) < 2 or time.perf_counter() - began < timing.budget_s / passes):
            samples.append(generation_step_ms(decoder, inputs, PLAIN_TOKENS, timing.clock)[0])
        return samples

    def target_cache(self, ctx: int) -> TargetCache:
        if ctx not in self.target_caches:
            cache = self.target.new_cache()
            self.target.forward(self.ids(ctx), cache=cache, logits="none")
            self.target_caches[ctx] = cache
        return self.target_caches[ctx]

    def bench_target(self, tree: int, q: int, ctx: int) -> tuple[Call, Call]:
        """A chain's verification (causal, the top tap) or a tree's (tree = 1: the additive tree
        mask, the top tap), as SpeculativeDecoder calls it."""
        target, cache = self.target, self.target_cache(ctx)
        ids = self.ids(q)
        positions = self.positions(ctx, q)
        mask = None if not tree else additive_mask(torch.ones(q, ctx + q, dtype=torch.bool,
                                                              device=target.device), target.dtype)
        taps = (target.num_layers,)

        def call() -> object:
            return target.forward(ids, positions=positions, attention_mask=mask, cache=cache,
                                  taps=taps, logits="all")

        return call, snapshot(cache)

    def bench_step_overhead(self, depth: int, top_k: int, total: int, ctx: int
                            ) -> tuple[Call, Call]:
        """The decoder's work around the verification of one decoding shape (depth 0: plain
        decoding): tree mask, acceptance, keeping prefix + root + path in the target cache (a crop
        for chains and plain decoding)."""
        target, cache = self.target, self.target_cache(ctx)
        device = target.device
        tree = synthetic_tree(total, depth, top_k, device)
        logits = torch.randn(total, target.vocab_size, generator=self.generator).to(device)
        sampler = TokenSampler(0.0, 1.0, 0, device)

        def call() -> object:
            if tree.size > 1 and not tree.is_chain:
                visible = torch.cat((torch.ones(tree.size, ctx, dtype=torch.bool, device=device),
                                     tree.ancestor_mask()), dim=1)
                additive_mask(visible, target.dtype)
            result = accept(tree, logits, sampler)
            kept = [0] + result.path
            if kept == list(range(len(kept))):
                crop_cache(cache, ctx - total + len(kept))
            else:
                keep = torch.arange(ctx - total, device=device)
                select_cache(cache, torch.cat((keep, ctx - total + torch.tensor(kept, device=device))))
            return result

        return call, snapshot(cache)

    def bench_prefill(self, scores: int, ctx: int) -> tuple[Call, None]:
        """A prefill of ctx tokens holding the image's placeholders; with scores, the eager pass
        that scores image positions for vision_keep_ratio < 1, and the keep selection."""
        target = self.target
        ids = self.ids(ctx)
        n_image = min(self.image_tokens, ctx - 2)
        if target.image_token_id is not None and n_image > 0:
            ids[0, 1:1 + n_image] = target.image_token_id
        image_mask = target.image_mask(ids)

        def call() -> object:
            out = target.forward(ids, cache=target.new_cache(), taps=(target.num_layers,),
                                 logits="last", image_scores=bool(scores))
            if scores:
                select_kept_positions(image_mask[0], out.image_scores[0], 0.5)
            return out

        return call, None

    # -- the draft side ------------------------------------------------------------------------
    def model(self, **arch: Any) -> DraftModel:
        key = tuple(sorted((name, str(value)) for name, value in arch.items()))
        if key not in self.models:
            cfg = DraftConfig.for_target(self.target, **arch)
            self.models[key] = DraftModel.random(cfg, self.target)
        return self.models[key]

    def bench_input(self, interaction: str, q: int) -> tuple[Call, None]:
        taps = [] if interaction == "none" else [self.target.num_layers]
        model = self.model(interaction=interaction, injected_layers=taps)
        ids, features = self.ids(q), self.hidden(q)
        return (lambda: model.embed_input(ids, features)), None

    def bench_fusion(self, taps: int, q: int) -> tuple[Call, None]:
        layers = list(range(self.target.num_layers - taps + 1, self.target.num_layers + 1))
        model = self.model(interaction="add", injected_layers=layers)
        hidden = {tap: self.hidden(q) for tap in layers}
        return (lambda: model.fuse(hidden)), None

    def bench_head(self, vocab: int, q: int) -> tuple[Call, None]:
        model = self.model(draft_vocab_size=vocab or None)
        hidden = self.hidden(q)
        return (lambda: model.logits(hidden)), None

    def bench_tree_overhead(self, vocab: int, depth: int, top_k: int, total: int
                            ) -> tuple[Call, None]:
        """`build_tree` of one decoding shape with the draft's forwards replayed from memory: what
        is left is its own top-k, cumulative scores, masks and rerank over the draft vocabulary."""
        model = self.model(draft_vocab_size=vocab or None)
        width = model.config.draft_vocab_size or self.target.vocab_size
        k = min(top_k, width)
        output = DraftOutput(self.hidden(k), torch.randn(1, k, width, generator=self.generator)
                             .to(self.target.device, self.target.dtype))
        replay = ReplayDraft(model, output)
        root = torch.tensor(LOW_ID, device=self.target.device)
        root_hidden, root_logits = self.hidden(1)[0, 0], output.logits[0, 0]

        def call() -> object:
            return build_tree(replay, DraftCache(1, cross=False), root, root_hidden, root_logits,
                              0, depth, top_k, total)

        return call, None

    def bench_layer(self, kind: str, heads: int, head_dim: int, ffn: int, q: int,
                    ctx: int) -> tuple[Call, Call]:
        """One draft layer of `kind` over q new slots after ctx cached ones (tree steps pass a
        mask; one slot sees everything cached, as DraftModel does)."""
        model = self.model(interaction=LAYER_KIND_INTERACTION[kind], num_heads=heads,
                           head_dim=head_dim, intermediate_size=ffn)
        layer, cross = model.layers[0], kind == "cross"
        kv_key = (kind, heads, head_dim, ffn, ctx)
        if kv_key not in self.layer_kv:
            self_kv, cross_kv = KVCache(), KVCache()
            layer(self.hidden(ctx), self.hidden(ctx), self.positions(0, ctx), None, self_kv,
                  cross_kv if cross else None)
            self.layer_kv[kv_key] = (self_kv, cross_kv)
        self_kv, cross_kv = self.layer_kv[kv_key]
        x, memory, positions = self.hidden(q), self.hidden(q), self.positions(ctx, q)
        mask = None if q == 1 else torch.ones(1, q, ctx + q, dtype=torch.bool,
                                              device=self.target.device)

        def call() -> object:
            return layer(x, memory, positions, mask, self_kv, cross_kv if cross else None)

        def reset() -> None:
            self_kv.crop(ctx)
            cross_kv.crop(ctx)

        return call, reset


class ReplayDraft:
    """Stands in for a DraftModel inside `build_tree`: same vocabulary maps, no computation."""

    def __init__(self, model: DraftModel, output: DraftOutput):
        self.model, self.output = model, output

    def to_target_ids(self, draft_ids: torch.Tensor) -> torch.Tensor:
        return self.model.to_target_ids(draft_ids)

    def __call__(self, *args: Any, **kwargs: Any) -> DraftOutput:
        return self.output


def additive_mask(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The decoder's 4D additive mask [1, 1, N, S] from a bool [N, S] visibility."""
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    return mask.masked_fill(~visible, torch.finfo(dtype).min)[None, None]


def synthetic_tree(size: int, depth: int, top_k: int, device: torch.device) -> DraftTree:
    """A tree of `size` nodes shaped like EAGLE-2's: top_k children per node, depth-limited
    (top_k = 1: a chain, which the decoder verifies causally and keeps with a crop)."""
    parents, depths = [-1], [0]
    for node in range(1, size):
        parent = (node - 1) // max(top_k, 1)
        while depths[parent] >= depth:
            parent -= 1
        parents.append(parent)
        depths.append(depths[parent] + 1)
    tokens = torch.arange(LOW_ID, LOW_ID + size, device=device)
    scores = -torch.arange(size, device=device, dtype=torch.float32)
    return DraftTree(tokens, torch.tensor(parents, device=device),
                     torch.tensor(depths, device=device), scores)


def snapshot(cache: TargetCache) -> Call:
    """A reset that puts the cache's tensors back (restoring references is free; cropping copies)."""
    layers = [(layer, layer.keys, layer.values) for layer in cache.hf.layers]
    positions, length = cache.positions, cache.length

    def restore() -> None:
        for layer, keys, values in layers:
            layer.keys, layer.values = keys, values
        cache.positions, cache.length = positions, length

    return restore
