"""The parts a latency table times, their keys, and which parts a search space needs.

A decoding step of `specdec.SpeculativeDecoder` is made of these calls (see specdec/decoder.py and
specdec/tree.py), so a table holds one entry per part and per value the space allows:

    plain/ctx                   one step of plain decoding, T_target(1), as the bench's vanilla
                                pays it: SpeculativeDecoder(target, None)'s own generation loop
                                around contexts of ctx, timed per step (its prefill excluded)
    target/tree/q/ctx           the target's forward over q new tokens after ctx cached ones, with
                                the logits of all q (tree = 0: causal, as chains verify, from
                                q = 1 for the verification curve; tree = 1: a tree's
                                verification with its 4D ancestor mask)
    step_overhead/depth/top_k/total/ctx
                                the decoder's work around that forward for one decoding shape
                                (search_spaces.DecodeShape): tree mask, acceptance, keeping
                                prefix + path in the target cache
    input/interaction/q         the draft's token embedding (plus the features for add; concat
                                joins them in its first layer)
    fusion/taps/q               fusing `taps` injected target layers (norm + projection each)
    layer/kind/heads/head_dim/ffn/q/ctx
                                one draft layer over q new slots after ctx cached slots, of a
                                kind (`layer_kinds`): self (plain), cross (with the
                                cross-attention block) or concat (EAGLE-3's: q/k/v read 2D)
    head/vocab/q                the draft's logits for q rows (vocab 0: the target's full head)
    tree_overhead/vocab/depth/top_k/total
                                `build_tree`'s own work (top-k, scores, rerank) around the draft
                                for one decoding shape
    prefill/scores/ctx          a VLM target's prefill of ctx tokens without / with the image
                                scoring that vision_keep_ratio < 1 needs (eager attention)

`image_input` (what a draft reads at image positions) adds no part: images come with the prompt,
so a decoding step's slots never hold one and its parts cost the same either way; the prompt's
slots take the merged embeddings that the target's prefill returns anyway (its tap 0) by one
`torch.where` over the prompt, once per generation.

Keys are `part/name=value/...` in the field order above; `q` and `ctx` (and `heads`, `ffn`
inside the profiled range) are interpolated by the predictor, every other field must match.
One table serves every decoding shape of its space: the target at every q a shape verifies, the
draft's parts at every q a shape drafts (top_k slots per tree level, up to depth + 1 accepted
slots in the advance), the overheads per shape.
"""

from dataclasses import dataclass, replace
from types import SimpleNamespace

from search_spaces import DraftArch, ResolvedSpace, TargetDims
from specdec.config import DraftConfig
from specdec.shape import DecodeShape


@dataclass(frozen=True)
class PartSpec:
    fields: tuple[str, ...]  # in key order
    interpolated: tuple[str, ...]  # numeric fields the predictor may interpolate over


PARTS: dict[str, PartSpec] = {
    "plain": PartSpec(("ctx",), ("ctx",)),
    "target": PartSpec(("tree", "q", "ctx"), ("q", "ctx")),
    "step_overhead": PartSpec(("depth", "top_k", "total", "ctx"), ("ctx",)),
    "input": PartSpec(("interaction", "q"), ("q",)),
    "fusion": PartSpec(("taps", "q"), ("q",)),
    "layer": PartSpec(("kind", "heads", "head_dim", "ffn", "q", "ctx"), ("ffn", "q", "ctx")),
    "head": PartSpec(("vocab", "q"), ("q",)),
    "tree_overhead": PartSpec(("vocab", "depth", "top_k", "total"), ()),
    "prefill": PartSpec(("scores", "ctx"), ("ctx",)),
}

# Parts timed with warm caches: they run right after the target's previous forward and find its
# weights where it left them. Every other timed part runs after something that pushed its weights
# out and is timed after a cache flush (`TimingConfig.flush_mb`): the draft's parts after the
# target's forward, a verification (`target`) after the draft's tree (measured on shapes: warm
# verifications under-predicted decoding steps by 17%). `plain` steps are timed whole, back to
# back, as plain decoding runs them (`PartBenches.plain_samples`).
WARM_PARTS = ("step_overhead", "prefill")

FieldValue = int | str


def part_key(part: str, **fields: FieldValue) -> str:
    spec = PARTS[part]
    if set(fields) != set(spec.fields):
        raise ValueError(f"part {part!r} takes fields {spec.fields}, got {sorted(fields)}")
    return "/".join([part, *(f"{name}={fields[name]}" for name in spec.fields)])


def parse_key(key: str) -> tuple[str, dict[str, FieldValue]]:
    """(part, fields) of a key; ValueError with the reason when it is not a key of PARTS."""
    part, *pairs = key.split("/")
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r} (parts: {', '.join(PARTS)})")
    fields: dict[str, FieldValue] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not value:
            raise ValueError(f"field {pair!r} is not name=value")
        fields[name] = int(value) if value.isdigit() else value
    if tuple(fields) != PARTS[part].fields:
        raise ValueError(f"part {part!r} needs fields {'/'.join(PARTS[part].fields)}")
    for name in PARTS[part].fields:
        if name not in ("interaction", "kind") and not isinstance(fields[name], int):
            raise ValueError(f"field {name}={fields[name]!r} is not a non-negative integer")
    return part, fields


@dataclass(frozen=True)
class ProfileGrid:
    contexts: tuple[int, ...]  # cached tokens before the timed call
    causal_queries: tuple[int, ...]  # new tokens in a causal target forward (plain, chains)
    tree_queries: tuple[int, ...]  # new tokens in a tree-masked target forward
    draft_queries: tuple[int, ...]  # new slots in a draft forward


def shape_fields(shape: DecodeShape) -> dict[str, int]:
    """The key fields of a decoding shape."""
    return {"depth": shape.depth, "top_k": shape.top_k, "total": shape.total_tokens}


def draft_config(dims: TargetDims, arch: DraftArch) -> DraftConfig:
    """The DraftConfig of `arch` exactly as drafts are built from a space (DraftConfig.for_target
    with the arch's fields), so the profiled head sizes are the served ones."""
    target = SimpleNamespace(hidden_size=dims.hidden_size, num_layers=dims.num_layers,
                             num_heads=dims.num_heads, vocab_size=dims.vocab_size,
                             fingerprint="profile")
    return DraftConfig.for_target(target, **arch.to_dict())


def vocab_field(draft_vocab_size: int | None) -> int:
    return draft_vocab_size or 0


def attention_shapes(space: ResolvedSpace) -> list[tuple[int, int]]:
    """(heads, head_dim) of every head choice of the space."""
    arch = space.largest()
    shapes = []
    for heads in space.num_heads:
        cfg = draft_config(space.target, replace(arch, num_heads=heads))
        shapes.append((cfg.num_heads, cfg.head_dim))
    return shapes


def layer_kinds(interaction: str, num_layers: int) -> list[str]:
    """The `layer` part kind of each layer of a draft, first to last."""
    rest = "cross" if interaction == "cross_attention" else "self"
    return ["concat" if interaction == "concat" else rest] + [rest] * (num_layers - 1)


def fusion_counts(space: ResolvedSpace) -> list[int]:
    if all(interaction == "none" for interaction in space.interaction):
        return []
    return sorted({len(taps) for taps in space.injected_layers})


def required_keys(space: ResolvedSpace, shapes: tuple[DecodeShape, ...], grid: ProfileGrid,
                  image_tokens: int) -> list[str]:
    """Every key a table for `space` decoding with `shapes` on `grid` holds, cheap parts first."""
    keys = [part_key("tree_overhead", vocab=vocab_field(v), **shape_fields(shape))
            for v in space.draft_vocab_size for shape in shapes]
    for q in grid.draft_queries:
        keys += [part_key("input", interaction=i, q=q) for i in space.interaction]
        keys += [part_key("fusion", taps=n, q=q) for n in fusion_counts(space)]
        keys += [part_key("head", vocab=vocab_field(v), q=q) for v in space.draft_vocab_size]
    kinds = sorted({kind for i in space.interaction for n in space.num_layers
                    for kind in layer_kinds(i, n)})
    for ctx in grid.contexts:
        keys.append(part_key("plain", ctx=ctx))
        keys += [part_key("target", tree=0, q=q, ctx=ctx) for q in grid.causal_queries]
        keys += [part_key("target", tree=1, q=q, ctx=ctx) for q in grid.tree_queries]
        keys += [part_key("step_overhead", **shape_fields(shape), ctx=ctx)
                 for shape in shapes]
        for kind in kinds:
            for heads, head_dim in attention_shapes(space):
                for ffn in space.intermediate_size:
                    keys += [part_key("layer", kind=kind, heads=heads, head_dim=head_dim,
                                      ffn=ffn, q=q, ctx=ctx) for q in grid.draft_queries]
        if image_tokens and min(space.vision_keep_ratio) < 1.0:
            keys += [part_key("prefill", scores=s, ctx=ctx) for s in (0, 1)]
    return keys
