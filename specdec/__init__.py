"""The standalone draft model and the bundled speculative decoder.

    from specdec import DraftModel, SpeculativeDecoder, DecodeConfig
    draft = DraftModel.from_pretrained("path/to/draft", target=target)
    generation = SpeculativeDecoder(target, draft, DecodeConfig(mode="tree")).generate(prompt="Hi")

Never imports supernet or nas: decoding needs none of the search machinery.
"""

from specdec.config import INTERACTIONS, DraftConfig
from specdec.decoder import DecodeConfig, Generation, SpeculativeDecoder
from specdec.errors import DraftError
from specdec.model import DraftModel
from specdec.stats import DecodeStats

__all__ = [
    "INTERACTIONS",
    "DecodeConfig",
    "DecodeStats",
    "DraftConfig",
    "DraftError",
    "DraftModel",
    "Generation",
    "SpeculativeDecoder",
]
