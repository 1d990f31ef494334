"""Every point of the named spaces is a valid specdec DraftConfig for its target."""

from dataclasses import dataclass

import pytest

from search_spaces import TargetDims, load_space
from specdec.config import DraftConfig


@dataclass(frozen=True)
class SizedTarget:
    """The attributes of `targets.Target` that the space and DraftConfig.for_target read."""

    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int
    is_vlm: bool = True
    fingerprint: str = "f" * 64


@dataclass(frozen=True)
class Calibration:
    candidate_taps: tuple[int, ...]


@pytest.mark.parametrize(
    ("target", "candidates"),
    [(SizedTarget(256, 4, 4, 300), (3, 2)),
     (SizedTarget(576, 30, 9, 49152, is_vlm=False), (12, 7, 20))],
)
@pytest.mark.parametrize("name", ["dream_s", "eagle", "dream", "specllava"])
def test_every_point_makes_a_draft_config(name, target, candidates):
    space = load_space(name).resolve(TargetDims.of(target), Calibration(candidates))
    for arch in space:
        config = DraftConfig.for_target(target, **arch.to_dict())
        assert config.injected_layers == list(arch.injected_layers)
