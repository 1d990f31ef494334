"""`extract(superdraft, arch) -> DraftModel`: a standalone draft holding exactly the subnet's slices.

The extracted draft has DraftModel's own parameter set for the arch's config (nothing more,
nothing less: `load_state_dict` is strict) and copies of the slices the supernet runs with that
arch active, so its outputs equal the supernet's. It is attached to the supernet's target and can
be saved with `save_pretrained` and loaded by the decoder.
"""

from typing import Any

import torch

from search_spaces import DraftArch
from specdec.model import DraftModel
from specdec.shape import DecodeShape
from supernet.superdraft import SuperDraft


@torch.no_grad()
def extract(superdraft: SuperDraft, arch: DraftArch, provenance: dict[str, Any] | None = None,
            decode: DecodeShape | None = None) -> DraftModel:
    """`decode`: the shape the draft's config recommends (DraftConfig.decode)."""
    cfg = superdraft.config_of(arch)
    cfg.decode = decode
    if provenance:
        cfg.provenance = dict(provenance)
    target = superdraft.target
    draft = DraftModel(cfg, superdraft.draft_token_ids(arch))
    weights = {name: tensor.detach().clone().cpu()
               for name, tensor in superdraft.subnet_weights(arch).items()}
    draft.load_state_dict(weights, strict=True)
    return draft.to(device=target.device, dtype=target.dtype).eval().attach(target)
