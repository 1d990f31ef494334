"""The standalone draft model and the bundled speculative decoder.

    from specdec import DecodeConfig, DecodeShape, DraftModel, SpeculativeDecoder
    draft = DraftModel.from_pretrained("path/to/draft", target=target)
    config = DecodeConfig(DecodeShape(depth=6, top_k=4, total_tokens=32))
    generation = SpeculativeDecoder(target, draft, config).generate(prompt="Hi")

Never imports supernet or nas: decoding needs none of the search machinery. The names below are
imported on first use, so that `specdec.shape` (torch-free, what a search space file's shapes
are) can be imported without torch.
"""

import importlib
from typing import Any

_HOMES = {
    "INTERACTIONS": "specdec.config",
    "DraftConfig": "specdec.config",
    "DecodeConfig": "specdec.decoder",
    "Generation": "specdec.decoder",
    "SpeculativeDecoder": "specdec.decoder",
    "DecodeShape": "specdec.shape",
    "DraftError": "specdec.errors",
    "DraftModel": "specdec.model",
    "DecodeStats": "specdec.stats",
}
__all__ = ["INTERACTIONS", "DecodeConfig", "DecodeShape", "DecodeStats", "DraftConfig",
           "DraftError", "DraftModel", "Generation", "SpeculativeDecoder"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'specdec' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
