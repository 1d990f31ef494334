"""Latency of any draft of the profiled space and of a decoding step, from a latency table.

A step of `SpeculativeDecoder` decoding `arch` with `shape` (depth, top_k, total_tokens; a chain of
k is the tree k/1/k+1) at a target context of `ctx` cached tokens, with `tau` tokens emitted per
step (accepted drafts + bonus):

    tree     = sum over steps s = 1 .. depth-1 of a draft forward over top_k slots after
               ctx_d + (s-1) * top_k cached slots, with logits for those top_k rows
               + build_tree's own top-k/rerank work for that shape over the draft vocabulary
    advance  = fusion of the injected layers for tau slots + a draft forward over tau slots
               after ctx_d, logits for the last row only
    verify   = the target's forward over total_tokens tokens after ctx (causal for a chain, with
               the tree mask for a tree) + the decoder's mask, acceptance and cache bookkeeping
    T_target(1) = one step of plain autoregressive decoding, timed as a whole in the decoder's
               own loop (a table's `plain` entries): a millisecond-sized forward's Python
               around it is 10% of it, which the sum of parts missed

where ctx_d = ctx - (1 - vision_keep_ratio) * image_tokens is the draft's own context (dropped
image positions leave it). A draft forward = input (embedding + interaction) + each layer + head.

    speedup(arch, shape, tau, ctx) = tau * T_target(1) / (verify + tree + advance)

Table values are interpolated linearly over q (new tokens) and ctx, extrapolated linearly above the
profiled contexts and held constant below; an FFN width between two profiled widths is
interpolated with a warning; any other value missing from the table raises TableError.
"""

import warnings
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.parts import (
    PARTS,
    draft_config,
    layer_kinds,
    parse_key,
    shape_fields,
    vocab_field,
)
from hardware_profiles.table import LatencyTable, TableError, load_table
from search_spaces import DraftArch, TargetDims
from specdec.shape import DecodeShape

ARCH_FIELDS = ("ffn",)  # interpolated inside the profiled range only, with a warning


class InterpolatedValueWarning(UserWarning):
    """A space value missing from the table was interpolated between its neighbours."""


@dataclass(frozen=True)
class StepBreakdown:
    tree_ms: float
    advance_ms: float
    verify_ms: float
    target_step_ms: float  # T_target(1): one plain decoding step

    @property
    def draft_ms(self) -> float:
        return self.tree_ms + self.advance_ms

    @property
    def step_ms(self) -> float:
        return self.draft_ms + self.verify_ms


class LatencyPredictor:
    def __init__(self, table: LatencyTable):
        self.table = table
        self.dims = TargetDims(*(int(table.target[name]) for name in
                                 ("hidden_size", "num_layers", "num_heads", "vocab_size")))
        self.image_tokens = int(table.target["image_tokens"])
        self._points: dict[str, list[tuple[dict, float]]] = {part: [] for part in PARTS}
        for key, timing in table.entries.items():
            part, fields = parse_key(key)
            self._points[part].append((fields, timing.ms))
        self.part_ms = lru_cache(maxsize=None)(self._part_ms)

    @classmethod
    def from_file(cls, path: str | Path, target_fingerprint: str | None = None,
                  device: DeviceFingerprint | None = None) -> "LatencyPredictor":
        return cls(load_table(path, target_fingerprint, device))

    # -- one part --------------------------------------------------------------------------------
    def _part_ms(self, part: str, **fields: float | str) -> float:
        spec = PARTS[part]
        points = self._points[part]
        for name in spec.fields:
            if name in spec.interpolated:
                continue
            have = sorted({p[name] for p, _ in points}, key=str)
            points = [(p, ms) for p, ms in points if p[name] == fields[name]]
            if not points:
                raise self.missing(part, name, fields[name], have)
        return self._interpolate(part, list(spec.interpolated), fields, points)

    def _interpolate(self, part: str, names: list[str], fields: dict,
                     points: list[tuple[dict, float]]) -> float:
        if not names:
            return sum(ms for _, ms in points) / len(points)
        name, rest = names[0], names[1:]
        value = fields[name]
        have = sorted({p[name] for p, _ in points})
        if not have:
            raise self.missing(part, name, value, have)

        def at(v: int) -> float:
            return self._interpolate(part, rest, fields, [(p, ms) for p, ms in points
                                                          if p[name] == v])

        if value in have or len(have) == 1:
            return at(value if value in have else have[0])
        if value < have[0]:
            if name in ARCH_FIELDS:
                raise self.missing(part, name, value, have)
            return at(have[0])  # below the profiled range: costs barely shrink further
        if value > have[-1]:
            if name in ARCH_FIELDS:
                raise self.missing(part, name, value, have)
            lo, hi = have[-2], have[-1]
        else:
            index = bisect_left(have, value)
            lo, hi = have[index - 1], have[index]
            if name in ARCH_FIELDS:
                warnings.warn(f"{self.table.source}: no {part} entry with {name}={value}; "
                              f"interpolated between {lo} and {hi}", InterpolatedValueWarning,
                              stacklevel=4)
        low, high = at(lo), at(hi)
        return low + (high - low) * (value - lo) / (hi - lo)

    def missing(self, part: str, name: str, value: object, have: list) -> TableError:
        listed = ", ".join(str(v) for v in have) or "none"
        return TableError(f"{self.table.source}: no {part} entry with {name}={value} (table has "
                          f"{listed}); profile the space that holds it (draftnas profile)")

    # -- a draft ---------------------------------------------------------------------------------
    def draft_context(self, arch: DraftArch, ctx: float) -> float:
        dropped = (1.0 - arch.vision_keep_ratio) * self.image_tokens
        return max(ctx - dropped, 1.0)

    def draft_forward_ms(self, arch: DraftArch, q: float, ctx_d: float, logit_rows: float) -> float:
        """One draft forward over q slots after ctx_d cached slots, logits for logit_rows rows."""
        cfg = draft_config(self.dims, arch)
        layers = sum(self.part_ms("layer", kind=kind, heads=cfg.num_heads, head_dim=cfg.head_dim,
                                  ffn=arch.intermediate_size, q=q, ctx=ctx_d)
                     for kind in layer_kinds(arch.interaction, arch.num_layers))
        return (self.part_ms("input", interaction=arch.interaction, q=q)
                + layers
                + self.part_ms("head", vocab=vocab_field(arch.draft_vocab_size), q=logit_rows))

    def tree_ms(self, arch: DraftArch, shape: DecodeShape, ctx: float) -> float:
        k = min(shape.top_k, arch.draft_vocab_size or self.dims.vocab_size)
        ctx_d = self.draft_context(arch, ctx)
        forwards = sum(self.draft_forward_ms(arch, k, ctx_d + (step - 1) * k, k)
                       for step in range(1, shape.depth))
        return forwards + self.part_ms("tree_overhead", vocab=vocab_field(arch.draft_vocab_size),
                                       **shape_fields(shape))

    def advance_ms(self, arch: DraftArch, ctx: float, tau: float) -> float:
        fusion = 0.0
        if arch.interaction != "none":
            fusion = self.part_ms("fusion", taps=len(arch.injected_layers), q=tau)
        return fusion + self.draft_forward_ms(arch, tau, self.draft_context(arch, ctx), 1)

    def draft_ms(self, arch: DraftArch, shape: DecodeShape, ctx: float, tau: float) -> float:
        """The draft's cost per decoding step (tree + advance), milliseconds."""
        return self.tree_ms(arch, shape, ctx) + self.advance_ms(arch, ctx, tau)

    # -- the target and a whole step -------------------------------------------------------------
    def verify_ms(self, shape: DecodeShape, ctx: float) -> float:
        """The target's forward over the shape's tokens and the decoder's work around it."""
        return (self.part_ms("target", tree=int(not shape.is_chain), q=shape.total_tokens, ctx=ctx)
                + self.part_ms("step_overhead", **shape_fields(shape), ctx=ctx))

    def target_step_ms(self, ctx: float) -> float:
        """T_target(1): one step of plain autoregressive decoding at context ctx."""
        return self.part_ms("plain", ctx=ctx)

    def breakdown(self, arch: DraftArch, shape: DecodeShape, ctx: float,
                  tau: float) -> StepBreakdown:
        return StepBreakdown(self.tree_ms(arch, shape, ctx), self.advance_ms(arch, ctx, tau),
                             self.verify_ms(shape, ctx), self.target_step_ms(ctx))

    def step_ms(self, arch: DraftArch, shape: DecodeShape, ctx: float, tau: float) -> float:
        return self.breakdown(arch, shape, ctx, tau).step_ms

    def speedup(self, arch: DraftArch, shape: DecodeShape, tau: float, ctx: float) -> float:
        """Predicted speedup over plain decoding: tau * T_target(1) / (T_verify + draft cost).
        tau: tokens emitted per step, the bonus token included (specdec's DecodeStats.tau)."""
        if tau < 1:
            raise ValueError(f"tau = {tau}: tokens per step count the bonus token, so tau >= 1")
        parts = self.breakdown(arch, shape, ctx, tau)
        return tau * parts.target_step_ms / parts.step_ms

    def scoring_ms(self, ctx: float) -> float:
        """Extra prefill cost of scoring image positions (vision_keep_ratio < 1)."""
        return max(self.part_ms("prefill", scores=1, ctx=ctx)
                   - self.part_ms("prefill", scores=0, ctx=ctx), 0.0)
