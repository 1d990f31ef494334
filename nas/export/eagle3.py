"""Can a draft be written in the EAGLE-3 layout that vLLM and SGLang load? Today: no draft can.

The layout (vLLM model_executor/models/llama_eagle3.py, SGLang srt/models/llama_eagle3.py):
    fc.weight [D, 3 H]          over the RAW concat of exactly 3 target hidden states (no norm)
    midlayer.input_layernorm    RMSNorm of the token embedding
    midlayer.hidden_norm        RMSNorm of fc's output g
    midlayer.self_attn.{q,k,v}_proj [n d, 2 D] over concat(norm(emb), norm(g)), rotary; o_proj
    residual = g (the embedding is not in it); post_attention_layernorm; SwiGLU mlp; norm;
    lm_head.weight [V', D], d2t [V'], t2d [V]
Our `concat` draft (specdec.model) computes something else:
    fused = sum_i proj_i(RMSNorm_i(h_i))      a norm per tap, then one projection each
    x = input_fc([emb; fused])                 embedding and features mixed linearly
    x = x + attn(attn_norm(x)); x = x + mlp(mlp_norm(x))   q/k/v [n d, D]; residual includes emb
The per-tap RMSNorm is not linear, so no fc over raw taps reproduces it; and EAGLE-3's residual
stream never carries the embedding while ours always does. No weights make the two equal on all
inputs, so writing one as the other would be a lossy conversion, and export refuses it. The fix
is a DraftModel variant with EAGLE-3's own layer (a specdec change): see docs/serving.md.
"""

from nas.export.errors import ExportError
from specdec.config import DraftConfig

EAGLE3_TAPS = 3


def eagle3_mismatches(cfg: DraftConfig) -> list[str]:
    """Every way `cfg` differs from the EAGLE-3 layout, in words (empty: it fits)."""
    problems = []
    if cfg.interaction != "concat":
        problems.append(f"interaction {cfg.interaction!r} (EAGLE-3 is concat)")
    else:
        problems.append("our concat layer (per-tap RMSNorm, fc over [embedding; features], "
                        "embedding in the residual) is not EAGLE-3's (fc over 3 raw taps, "
                        "attention over [norm(embedding); norm(fc)], fc alone as residual)")
    if cfg.num_layers != 1:
        problems.append(f"num_layers {cfg.num_layers} (EAGLE-3 has 1)")
    if len(cfg.injected_layers) != EAGLE3_TAPS:
        problems.append(f"{len(cfg.injected_layers)} injected layers (EAGLE-3's fc reads "
                        f"{EAGLE3_TAPS})")
    if cfg.vision_keep_ratio < 1.0:
        problems.append(f"vision_keep_ratio {cfg.vision_keep_ratio} (vLLM and SGLang keep every "
                        "image position)")
    return problems


def check_eagle3(cfg: DraftConfig) -> None:
    """Raise ExportError, naming every mismatch, unless `cfg` fits the EAGLE-3 layout exactly."""
    problems = eagle3_mismatches(cfg)
    if problems:
        raise ExportError("format=eagle3: this draft does not fit the EAGLE-3 layout exactly ("
                          + "; ".join(problems) + "); use format=draftnas (docs/serving.md)")
