"""What a draft may be: the search-space schema, the named spaces, sampling and encoding.

Imports nothing else from draftnas but `specdec.shape` (torch-free): the decoding shapes a space
file lists, which a search tries with its drafts. Typical use:

    space = load_space("dream_s")                       # SearchSpace, symbolic, from YAML
    dims = TargetDims(hidden_size=576, num_layers=30, num_heads=9, vocab_size=49152)
    resolved = space.resolve(dims, calibration)         # ResolvedSpace, concrete integers
    arch = resolved.sample(random.Random(0))            # DraftArch: DraftConfig's arch fields
    genes = resolved.encode(arch); resolved.decode(genes) == arch

`calibration` is any object with `candidate_taps` (nas.calibration.Calibration); it is only
needed when `space.needs_calibration`. Every bad input raises `SpaceError` (a ValueError)
with a one-line message.
"""

from search_spaces.arch import DIMENSIONS, IMAGE_INPUTS, INTERACTIONS, DraftArch
from search_spaces.errors import SpaceError
from search_spaces.loading import available_spaces, load_space
from search_spaces.resolved import ResolvedSpace
from search_spaces.schema import RankedTaps, SearchSpace
from search_spaces.target_dims import TargetDims

__all__ = [
    "DIMENSIONS",
    "IMAGE_INPUTS",
    "INTERACTIONS",
    "DraftArch",
    "RankedTaps",
    "ResolvedSpace",
    "SearchSpace",
    "SpaceError",
    "TargetDims",
    "available_spaces",
    "load_space",
]
