"""format=eagle3: a draft written in the EAGLE-3 layout that vLLM and SGLang load.

The layout (vLLM model_executor/models/llama_eagle3.py, SGLang srt/models/llama_eagle3.py):
    fc.weight [D, 3 H]           over the raw concat of 3 target hidden states, ascending layer id
    midlayer.input_layernorm     RMSNorm of the token embedding
    midlayer.hidden_norm         RMSNorm of fc's output g
    midlayer.self_attn.{q,k,v}_proj [n d, 2 D] over [norm(emb) ; norm(g)], rotary; o_proj [D, n d]
    residual = g; midlayer.post_attention_layernorm; midlayer.mlp.{gate,up,down}_proj; norm
    lm_head.weight [V', D], d2t [V'] int64 (target id = draft id + d2t), t2d [V] bool
Our `concat` interaction is that layer (specdec.model), so a concat draft with one layer maps onto
it tensor for tensor: fc = [W_a | W_b | W_c], the fusion projections side by side.

Aux layer ids. Both engines capture `hidden_states + residual` while iterating the target's
layers, appending in layer order, so fc's column blocks go in ascending id order:
  - vLLM appends the state entering layer `idx` for `idx in eagle_aux_hidden_state_layer_ids`:
    that is transformers' output_hidden_states[idx], our tap id. vLLM ids = our taps.
  - SGLang adds one to every id and captures entering that layer: SGLang ids = our taps - 1.
config.json holds the vLLM ids (docs/serving.md gives the SGLang rewrite). Ids range over 1..L-1
in both engines (vLLM has no residual before layer 0; neither captures after the last layer, and
our tap L is the final-normed output anyway). A draft with fewer than 3 taps gets zero fc
columns for the lowest free ids: the ids must be distinct, since `idx in ids` collects each
layer once and a repeated id would leave fc fewer states than it reads.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from nas.export.errors import ExportError
from specdec.config import DraftConfig
from specdec.model import DraftModel

EAGLE3_TAPS = 3
ARCHITECTURE = "LlamaForCausalLMEagle3"

# EAGLE-3 tensor name -> DraftModel tensor name (fc, lm_head, d2t, t2d are built separately).
MIDLAYER = {
    "midlayer.input_layernorm.weight": "layers.0.attn_norm.weight",
    "midlayer.hidden_norm.weight": "layers.0.hidden_norm.weight",
    "midlayer.self_attn.q_proj.weight": "layers.0.self_attn.q_proj.weight",
    "midlayer.self_attn.k_proj.weight": "layers.0.self_attn.k_proj.weight",
    "midlayer.self_attn.v_proj.weight": "layers.0.self_attn.v_proj.weight",
    "midlayer.self_attn.o_proj.weight": "layers.0.self_attn.o_proj.weight",
    "midlayer.post_attention_layernorm.weight": "layers.0.mlp_norm.weight",
    "midlayer.mlp.gate_proj.weight": "layers.0.mlp.gate_proj.weight",
    "midlayer.mlp.up_proj.weight": "layers.0.mlp.up_proj.weight",
    "midlayer.mlp.down_proj.weight": "layers.0.mlp.down_proj.weight",
    "norm.weight": "norm.weight",
}


def eagle3_mismatches(cfg: DraftConfig, target: Any) -> list[str]:
    """Every way `cfg` (a draft for `target`) differs from the EAGLE-3 layout (empty: it fits)."""
    problems = []
    if cfg.interaction != "concat":
        problems.append(f"interaction {cfg.interaction!r} (EAGLE-3 is concat)")
    if cfg.num_layers != 1:
        problems.append(f"num_layers {cfg.num_layers} (EAGLE-3 has 1)")
    if len(cfg.injected_layers) > EAGLE3_TAPS:
        problems.append(f"{len(cfg.injected_layers)} injected layers (EAGLE-3's fc reads "
                        f"{EAGLE3_TAPS})")
    outside = [tap for tap in cfg.injected_layers if not 1 <= tap < cfg.target_num_layers]
    if outside:
        problems.append(f"taps {outside} (the engines capture only the states entering target "
                        f"layers 1..{cfg.target_num_layers - 1})")
    if cfg.target_num_layers - 1 < EAGLE3_TAPS:
        problems.append(f"a target of {cfg.target_num_layers} layers (EAGLE-3 needs "
                        f"{EAGLE3_TAPS} distinct aux layers in 1..L-1)")
    if cfg.vision_keep_ratio < 1.0:
        problems.append(f"vision_keep_ratio {cfg.vision_keep_ratio} (vLLM and SGLang keep every "
                        "image position)")
    if cfg.image_input == "features":
        problems.append("image_input 'features' (vLLM's and SGLang's EAGLE-3 draft embeds the "
                        "image placeholder tokens and ignores the image features)")
    if cfg.hidden_size != cfg.target_hidden_size:
        problems.append(f"hidden_size {cfg.hidden_size} != the target's {cfg.target_hidden_size} "
                        "(the engines share the target's embeddings)")
    # type(...) is nn.Embedding: Gemma's scaled embedding subclasses it and scales in forward,
    # where the engines' draft reads the plain table.
    if type(target.model.get_input_embeddings()) is not nn.Embedding:
        problems.append("a target that scales its embeddings (the engines' draft reads them "
                        "unscaled)")
    text_config = target.model.config.get_text_config(decoder=True)
    if getattr(text_config, "final_logit_softcapping", None) and not cfg.reduced_vocab:
        problems.append("a full-vocabulary head over a target with a logit softcap")
    return problems


def check_eagle3(cfg: DraftConfig, target: Any) -> None:
    """Raise ExportError, naming every mismatch, unless `cfg` fits the EAGLE-3 layout exactly."""
    problems = eagle3_mismatches(cfg, target)
    if problems:
        raise ExportError("format=eagle3: this draft does not fit the EAGLE-3 layout ("
                          + "; ".join(problems) + "); use format=draftnas (docs/serving.md)")


def aux_layer_ids(cfg: DraftConfig) -> list[int]:
    """The 3 distinct vLLM aux layer ids, ascending: the draft's taps and the lowest free ids."""
    ids = set(cfg.injected_layers)
    free = (layer for layer in range(1, cfg.target_num_layers) if layer not in ids)
    while len(ids) < EAGLE3_TAPS:
        ids.add(next(free))
    return sorted(ids)


def eagle3_tensors(draft: DraftModel) -> dict[str, torch.Tensor]:
    """The draft's tensors under EAGLE-3's names (a full-vocabulary draft takes the target's
    head as lm_head, with d2t all zero)."""
    cfg, state = draft.config, draft.state_dict()
    projections = {tap: state[f"fusion.projs.{i}.weight"]
                   for i, tap in enumerate(cfg.injected_layers)}
    absent = torch.zeros_like(next(iter(projections.values())))
    tensors = {"fc.weight": torch.cat([projections.get(layer, absent)
                                       for layer in aux_layer_ids(cfg)], dim=1)}
    tensors |= {name: state[ours] for name, ours in MIDLAYER.items()}
    if cfg.reduced_vocab:
        tensors |= {name: state[name] for name in ("lm_head.weight", "d2t", "t2d")}
    else:
        head = draft.target.model.get_output_embeddings().weight
        tensors["lm_head.weight"] = head.to(state["norm.weight"].dtype)
        tensors["d2t"] = torch.zeros(cfg.target_vocab_size, dtype=torch.int64)
        tensors["t2d"] = torch.ones(cfg.target_vocab_size, dtype=torch.bool)
    return {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}


def eagle3_config(draft: DraftModel) -> dict[str, Any]:
    """config.json of the layout: a one-layer Llama with EAGLE-3's keys."""
    cfg = draft.config
    return {
        "architectures": [ARCHITECTURE],
        "model_type": "llama",
        "num_hidden_layers": 1,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": draft.target.max_positions,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,  # SGLang would read lm_head from embed_tokens
        "vocab_size": cfg.target_vocab_size,
        "draft_vocab_size": cfg.draft_vocab_size or cfg.target_vocab_size,
        "target_hidden_size": cfg.target_hidden_size,
        "torch_dtype": str(draft.norm.weight.dtype).removeprefix("torch."),
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": aux_layer_ids(cfg),
                         "use_aux_hidden_state": True},
    }


def write_eagle3(draft: DraftModel, directory: str | Path) -> Path:
    """Write `draft` (attached to its target) as an EAGLE-3 checkpoint in `directory`."""
    check_eagle3(draft.config, draft.target)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(eagle3_tensors(draft), directory / "model.safetensors", metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(eagle3_config(draft), indent=2) + "\n")
    return directory
