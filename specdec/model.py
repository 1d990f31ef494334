"""The draft model, read top to bottom: config -> small modules -> DraftModel.

Alignment (the EAGLE convention; training must follow it exactly)
-----------------------------------------------------------------
The draft runs over *slots*. For a sequence x_0 .. x_T whose target features are g_0 .. g_{T-1}
(g_j = `DraftModel.fuse` of the target's tapped hidden states at position j, i.e. the state from
which the target predicted x_{j+1}):

    slot j = (token x_{j+1}, feature g_j), rotary position j + 1,      j = 0 .. T-1

The draft's output hidden state h_j at slot j stands in for g_{j+1}, and `logits(h_j)` predicts
x_{j+2}. So the draft predicts token t+1's successor from (embedding of token t+1, feature at t).
Beyond the verified prefix the draft feeds its own h_j where the target feature g_{j+1} is missing:
the slot after j is (x_{j+2}, h_j). For `cross_attention`, slot j's memory entry is g_j and a slot
attends to the memory entries of the slots it sees (itself and earlier): token x_{j+1} sees target
features up to its predecessor's, g_0 .. g_j.

Image positions (DraftConfig.image_input): a slot's token embedding is the target's
`embed_tokens` of it, so at an image position every draft reads the placeholder token's embedding
(`placeholder`). A `features` draft reads there the target's merged input embedding instead (its
tap 0: the image features the target's first layer receives), which the decoder takes from the
target's prefill and training from the feature cache; it enters the same input path (embed_proj).

The concat interaction is EAGLE-3's layer (vLLM and SGLang `llama_eagle3.py`), so a concat draft
with one layer is an EAGLE-3 draft tensor for tensor (nas.export.eagle3 writes that layout):
    g = sum_i W_i h_i                       one projection per raw tap: an fc over their concat
    x = g + attn([attn_norm(emb) ; hidden_norm(g)])    q/k/v read 2D; the residual starts at g
    x = x + mlp(mlp_norm(x))                the embedding never enters the residual stream
Further layers of a concat draft are ordinary pre-norm layers over that stream. `add` and
`cross_attention` norm each tap before projecting it (taps differ in scale by orders of magnitude).
`add` also norms both terms of its sum, x = embed_norm(emb) + feature_norm(g): a target's token
embeddings are tiny beside its hidden states (RMS 0.02 against 1-2 on `shapes`), and unnormed the
feature drowned the token (tau 3.6-4.1 where the same draft without features reached 6.2).

Parameter names (stable: the supernet slices them by front slicing; D = hidden_size,
H = target_hidden_size, n = num_heads, d = head_dim, F = intermediate_size, V' = draft_vocab_size)
    fusion.projs.{i}.weight [D, H]                                      one per injected layer i
    fusion.norms.{i}.weight [H]                                         not for concat
    embed_norm.weight [D], feature_norm.weight [D]                      add only
    embed_proj.weight [D, H]                                            only if D != H
    layers.{l}.attn_norm.weight [D], layers.{l}.mlp_norm.weight [D]
    layers.{l}.self_attn.{q,k,v}_proj.weight [n*d, D], .o_proj.weight [D, n*d]
    layers.0.hidden_norm.weight [D], layers.0.self_attn.{q,k,v}_proj.weight [n*d, 2D]   concat
    layers.{l}.mlp.{gate,up}_proj.weight [F, D], .down_proj.weight [D, F]
    layers.{l}.cross.{norm,memory_norm,mlp_norm}.weight [D]             cross_attention only
    layers.{l}.cross.attn.{q,k,v}_proj / o_proj (as self_attn), .attn.{q,k}_norm.weight [d]
    layers.{l}.cross.mlp.*, layers.{l}.cross.{attn_gate,mlp_gate} [1]   tanh gates, init 0
    norm.weight [D]                                                     final norm before the head
    head_proj.weight [H, D]                                             full vocab and D != H only
    lm_head.weight [V', D], d2t [V'] (int64), t2d [vocab] (bool)        reduced vocabulary only
The target's embed_tokens and lm_head are shared, frozen, and never part of the state dict.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from specdec.config import DraftConfig
from specdec.errors import DraftError
from specdec.vocab import vocab_maps
from targets.runtime import serve


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate x [B, n, T, d] by positions [B, T] (half-split rotary, as in Llama)."""
    half = x.shape[-1] // 2
    inv_freq = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.float()[:, None, :, None] * inv_freq  # [B, 1, T, d/2]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class KVCache:
    """Keys and values [B, n, L, d] of one attention, for decoding (no autograd through it).

    They live in a buffer that grows by doubling, so a step copies only its new entries instead
    of the whole cache; `crop` just shortens the valid length. The buffer holds at most twice the
    longest length reached (prefix + one tree).
    """

    def __init__(self) -> None:
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self.length = 0

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, :, : self.length]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, : self.length]

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + keys.shape[2]
        if self._keys is None or end > self._keys.shape[2]:
            self._grow(keys, values, end)
        self._keys[:, :, self.length : end] = keys
        self._values[:, :, self.length : end] = values
        self.length = end
        return self.keys, self.values

    def _grow(self, keys: torch.Tensor, values: torch.Tensor, needed: int) -> None:
        old_capacity = 0 if self._keys is None else self._keys.shape[2]
        capacity = max(needed, 2 * old_capacity, 16)
        grown_keys = keys.new_empty(*keys.shape[:2], capacity, keys.shape[3])
        grown_values = values.new_empty(*values.shape[:2], capacity, values.shape[3])
        if self.length:
            grown_keys[:, :, : self.length] = self.keys
            grown_values[:, :, : self.length] = self.values
        self._keys, self._values = grown_keys, grown_values

    def crop(self, length: int) -> None:
        self.length = min(length, self.length)


class DraftCache:
    """The draft's KV: one self-attention cache per layer, plus one memory cache per
    cross-attention block. Entries are slots, in the order the decoder fed them."""

    def __init__(self, num_layers: int, cross: bool):
        self.self_attn = [KVCache() for _ in range(num_layers)]
        self.cross_attn = [KVCache() for _ in range(num_layers)] if cross else []

    @property
    def length(self) -> int:
        return self.self_attn[0].length

    def crop(self, length: int) -> None:
        for kv in self.self_attn + self.cross_attn:
            kv.crop(length)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """SDPA over [B, n, T, d]; mask: bool [B, T, S] (True = may attend) or None (sees all)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None])


class SelfAttention(nn.Module):
    def __init__(self, cfg: DraftConfig, input_size: int | None = None):
        super().__init__()
        inner, width = cfg.num_heads * cfg.head_dim, input_size or cfg.hidden_size
        self.q_proj = nn.Linear(width, inner, bias=False)
        self.k_proj = nn.Linear(width, inner, bias=False)
        self.v_proj = nn.Linear(width, inner, bias=False)
        self.o_proj = nn.Linear(inner, cfg.hidden_size, bias=False)
        self.head_dim, self.rope_theta = cfg.head_dim, cfg.rope_theta

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.head_dim)).transpose(1, 2)

    def forward(self, x, positions, mask, kv: KVCache | None) -> torch.Tensor:
        q = apply_rotary(self.heads(self.q_proj(x)), positions, self.rope_theta)
        k = apply_rotary(self.heads(self.k_proj(x)), positions, self.rope_theta)
        v = self.heads(self.v_proj(x))
        if kv is not None:
            k, v = kv.append(k, v)
        return self.o_proj(attend(q, k, v, mask).transpose(1, 2).flatten(2))


class CrossAttention(SelfAttention):
    """Queries from the draft stream, keys/values from the fused target features; per-head
    RMSNorm on Q and K and no rotary embedding on this path (DREAM)."""

    def __init__(self, cfg: DraftConfig):
        super().__init__(cfg)
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps)
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps)

    def forward(self, x, memory, mask, kv: KVCache | None) -> torch.Tensor:
        q = self.q_norm(self.heads(self.q_proj(x)))
        k = self.k_norm(self.heads(self.k_proj(memory)))
        v = self.heads(self.v_proj(memory))
        if kv is not None:
            k, v = kv.append(k, v)
        return self.o_proj(attend(q, k, v, mask).transpose(1, 2).flatten(2))


class MLP(nn.Module):
    def __init__(self, cfg: DraftConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class CrossBlock(nn.Module):
    """Mllama-style gated cross-attention block: both residual branches pass through tanh gates
    initialised at 0, so an untrained block leaves the draft stream unchanged."""

    def __init__(self, cfg: DraftConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.memory_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attn = CrossAttention(cfg)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.mlp_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)
        self.mlp_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x, memory, mask, kv: KVCache | None) -> torch.Tensor:
        x = x + self.attn_gate.tanh() * self.attn(self.norm(x), self.memory_norm(memory), mask, kv)
        return x + self.mlp_gate.tanh() * self.mlp(self.mlp_norm(x))


class DraftLayer(nn.Module):
    """Pre-norm decoder layer (self-attention with rotary, SwiGLU MLP), then the optional
    cross-attention block. With `joins_features` it is EAGLE-3's first layer: x is the token
    embedding, and attention reads [attn_norm(x) ; hidden_norm(memory)] with the fused features
    `memory` alone as the residual."""

    def __init__(self, cfg: DraftConfig, joins_features: bool = False):
        super().__init__()
        D = cfg.hidden_size
        self.attn_norm = RMSNorm(D, cfg.rms_norm_eps)
        self.hidden_norm = RMSNorm(D, cfg.rms_norm_eps) if joins_features else None
        self.self_attn = SelfAttention(cfg, 2 * D if joins_features else D)
        self.mlp_norm = RMSNorm(D, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)
        self.cross = CrossBlock(cfg) if cfg.interaction == "cross_attention" else None

    def forward(self, x, memory, positions, mask, self_kv, cross_kv) -> torch.Tensor:
        if self.hidden_norm is not None:
            attn_input = torch.cat((self.attn_norm(x), self.hidden_norm(memory)), dim=-1)
            x = memory
        else:
            attn_input = self.attn_norm(x)
        x = x + self.self_attn(attn_input, positions, mask, self_kv)
        x = x + self.mlp(self.mlp_norm(x))
        if self.cross is not None:
            x = self.cross(x, memory, mask, cross_kv)
        return x


class FeatureFusion(nn.Module):
    """One projection per injected target layer, summed (= an fc over their concat); each tap is
    RMS-normed first except for concat, whose fc reads the raw taps as EAGLE-3's does."""

    def __init__(self, cfg: DraftConfig):
        super().__init__()
        n = len(cfg.injected_layers)
        self.layers = list(cfg.injected_layers)
        self.norms = None if cfg.interaction == "concat" else nn.ModuleList(
            RMSNorm(cfg.target_hidden_size, cfg.rms_norm_eps) for _ in range(n))
        self.projs = nn.ModuleList(
            nn.Linear(cfg.target_hidden_size, cfg.hidden_size, bias=False) for _ in range(n))

    def forward(self, hidden: dict[int, torch.Tensor]) -> torch.Tensor:
        missing = [layer for layer in self.layers if layer not in hidden]
        if missing:
            raise DraftError(f"draft fusion: target taps {missing} were not computed; "
                             f"call the target with taps={self.layers}")
        taps = [hidden[layer] for layer in self.layers]
        if self.norms is not None:
            taps = [norm(tap) for norm, tap in zip(self.norms, taps)]
        return sum(proj(tap) for proj, tap in zip(self.projs, taps))


@dataclass
class DraftOutput:
    hidden: torch.Tensor  # [B, T, D]: pre-norm output; stands in for the next target feature
    logits: torch.Tensor | None  # [B, T or 1, V'] (or [N, V'] for a mask) over the draft vocab


class DraftModel(nn.Module):
    """A draft over a frozen target's embeddings and head. `attach(target)` binds them."""

    def __init__(self, cfg: DraftConfig, draft_token_ids: list[int] | None = None):
        """draft_token_ids: the reduced vocabulary (target ids) when cfg.draft_vocab_size is set;
        None then means target ids 0 .. n-1 until a checkpoint's maps are loaded."""
        super().__init__()
        cfg.validate()
        self.config = cfg
        D, H = cfg.hidden_size, cfg.target_hidden_size
        self.fusion = FeatureFusion(cfg) if cfg.uses_features else None
        self.embed_proj = nn.Linear(H, D, bias=False) if D != H else None
        add = cfg.interaction == "add"
        self.embed_norm = RMSNorm(D, cfg.rms_norm_eps) if add else None
        self.feature_norm = RMSNorm(D, cfg.rms_norm_eps) if add else None
        concat = cfg.interaction == "concat"
        self.layers = nn.ModuleList(DraftLayer(cfg, joins_features=concat and index == 0)
                                    for index in range(cfg.num_layers))
        self.norm = RMSNorm(D, cfg.rms_norm_eps)
        self.head_proj = nn.Linear(D, H, bias=False) if D != H and not cfg.reduced_vocab else None
        self.lm_head = nn.Linear(D, cfg.draft_vocab_size, bias=False) if cfg.reduced_vocab else None
        if cfg.reduced_vocab:
            ids = draft_token_ids if draft_token_ids is not None else range(cfg.draft_vocab_size)
            if len(ids) != cfg.draft_vocab_size:
                raise DraftError(f"draft_token_ids has {len(ids)} ids but draft_vocab_size is "
                                 f"{cfg.draft_vocab_size}: give exactly that many")
            d2t, t2d = vocab_maps(ids, cfg.target_vocab_size)
            self.register_buffer("d2t", d2t)
            self.register_buffer("t2d", t2d)
        self.apply(self._init_weights)
        # object.__setattr__: a target that is itself an nn.Module must not become a submodule
        # (its weights would land in the state dict and move with .to()).
        object.__setattr__(self, "_target", None)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)

    # -- the target ------------------------------------------------------------------------------
    def check_target(self, target: Any) -> None:
        """Raise DraftError unless this draft was made for `target` (sizes and fingerprint)."""
        cfg, name = self.config, getattr(target, "spec", None) or "the target"
        for field, have in (("target_hidden_size", target.hidden_size),
                            ("target_vocab_size", target.vocab_size),
                            ("target_num_layers", target.num_layers)):
            if getattr(cfg, field) != have:
                raise DraftError(f"draft {field} = {getattr(cfg, field)} but {name} has {have}: "
                                 "use a draft made for this target")
        if cfg.target_fingerprint != target.fingerprint:
            raise DraftError(f"draft target_fingerprint {cfg.target_fingerprint!r} != {name}'s "
                             f"{target.fingerprint!r}: use a draft made for this target")

    def attach(self, target: Any) -> "DraftModel":
        """Check and bind `target`'s frozen embed_tokens and lm_head (kept out of the state dict)."""
        self.check_target(target)
        object.__setattr__(self, "_target", target)
        return self

    @property
    def target(self) -> Any:
        if self._target is None:
            raise DraftError("draft has no target: call draft.attach(target) first")
        return self._target

    @classmethod
    def random(cls, cfg: DraftConfig, target: Any, draft_token_ids: list[int] | None = None,
               seed: int = 0) -> "DraftModel":
        """An untrained draft for `target` on its device and dtype (deterministic in `seed`)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            draft = cls(cfg, draft_token_ids)
        return draft.serve_with(target)

    def serve_with(self, target: Any) -> "DraftModel":
        """This draft on `target`'s device and dtype, its linears in the target's runtime
        (targets.runtime: a draft computes as its target does), attached, in eval mode."""
        draft = self.to(device=target.device, dtype=target.dtype).eval()
        return serve(draft, getattr(target, "quantize", "none")).attach(target)

    # -- running ---------------------------------------------------------------------------------
    def new_cache(self) -> DraftCache:
        return DraftCache(self.config.num_layers, cross=self.config.interaction == "cross_attention")

    def fuse(self, hidden: dict[int, torch.Tensor]) -> torch.Tensor | None:
        """Fused features [B, T, D] from the target's taps (None for interaction 'none')."""
        return None if self.fusion is None else self.fusion(hidden)

    def embed_input(self, token_ids: torch.Tensor, features: torch.Tensor | None,
                    merged_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """The first layer's input x [B, T, D]: the token embedding, plus the features for `add`.
        (concat joins them inside its first layer, cross_attention in every layer.)

        merged_embeds [B, T, H]: the target's input embeddings at the slots' tokens, image
        features merged in (its tap 0). With image_input 'features' they replace the placeholder
        token's embedding at image positions and go through the same input path (embed_proj);
        only image positions are read, so text positions are the token embeddings either way."""
        x = self.target.embed_tokens(token_ids)
        if merged_embeds is not None and self.config.image_input == "features":
            images = self.target.image_mask(token_ids)[..., None]
            x = torch.where(images, merged_embeds.to(x.dtype), x)
        if self.embed_proj is not None:
            x = self.embed_proj(x)
        if self.config.interaction == "add":
            x = self.embed_norm(x) + self.feature_norm(features)
        return x

    def forward(self, token_ids: torch.Tensor, features: torch.Tensor | None,
                positions: torch.Tensor, cache: DraftCache | None = None,
                attention_mask: torch.Tensor | None = None,
                logits: str | torch.Tensor = "all",
                merged_embeds: torch.Tensor | None = None) -> DraftOutput:
        """Run slots: token_ids [B, T] (target ids), features [B, T, D] (see the module docstring),
        positions [B, T]; attention_mask bool [B, T, cache.length + T] (True = may attend), None =
        causal; logits 'all' | 'last' | 'none' | a bool [B, T] mask of the slots wanted (logits
        [N, V'] of those N: training skips the prompt's, a vocabulary wide head's main cost);
        merged_embeds: see `embed_input` (slots holding image tokens need them for image_input
        'features'). New keys/values are appended to `cache`."""
        if self.fusion is not None and features is None:
            raise DraftError(f"draft interaction '{self.config.interaction}' needs features")
        x = self.embed_input(token_ids, features, merged_embeds)
        mask = attention_mask if attention_mask is not None else self._causal_mask(x, cache)
        for i, layer in enumerate(self.layers):
            self_kv = cache.self_attn[i] if cache is not None else None
            cross_kv = cache.cross_attn[i] if cache is not None and layer.cross is not None else None
            x = layer(x, features, positions, mask, self_kv, cross_kv)
        if isinstance(logits, torch.Tensor):
            return DraftOutput(x, self.logits(x[logits]))
        if logits == "none":
            return DraftOutput(x, None)
        return DraftOutput(x, self.logits(x[:, -1:] if logits == "last" else x))

    @staticmethod
    def _causal_mask(x: torch.Tensor, cache: DraftCache | None) -> torch.Tensor | None:
        past, new = (cache.length if cache is not None else 0), x.shape[1]
        if new == 1:
            return None  # one new slot sees everything cached
        rows = torch.arange(new, device=x.device)[:, None] + past
        return (torch.arange(past + new, device=x.device) <= rows)[None]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the draft vocabulary from output hidden states."""
        normed = self.norm(hidden)
        if self.lm_head is not None:
            return self.lm_head(normed)
        if self.head_proj is not None:
            normed = self.head_proj(normed)
        return self.target.lm_head(normed)

    def to_target_ids(self, draft_ids: torch.Tensor) -> torch.Tensor:
        return draft_ids + self.d2t[draft_ids] if self.lm_head is not None else draft_ids

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        from specdec.checkpoint import save_draft

        return save_draft(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, target: Any = None) -> "DraftModel":
        """Load and validate a checkpoint; with `target`, check the pairing, move to its device
        and dtype, and attach. Every problem raises DraftError with one line."""
        from specdec.checkpoint import load_draft

        return load_draft(cls, directory, target)
