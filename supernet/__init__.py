"""The weight-sharing draft supernet: every point of a search space in one elastic draft.

    superdraft = SuperDraft(resolved_space, target, vocab_ranking)   # supernet.superdraft
    superdraft.activate(arch)                                        # a DraftModel look-alike
    draft = extract(superdraft, arch)                                # a standalone DraftModel
    superdraft, meta = load_supernet("runs/train/<run>/supernet", target)

`draft_config(target, arch)` is the DraftConfig of a space point (heads of the target's head
size, so pruned heads stay sliceable): use it wherever a space point becomes a draft.
Training: `supernet.trainer.SupernetRecipe` (setup / train / cleanup), driven by `draftnas train`.
"""

from supernet.checkpoint import SupernetMeta, load_supernet, save_supernet
from supernet.errors import SupernetError
from supernet.extract import extract
from supernet.superdraft import SuperDraft, draft_config

__all__ = [
    "SuperDraft",
    "SupernetError",
    "SupernetMeta",
    "draft_config",
    "extract",
    "load_supernet",
    "save_supernet",
]
