"""Shared pieces of the hardware-profile tests: a small space, a synthetic table, fast settings."""

import pytest

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.memory import MemoryFacts
from hardware_profiles.parts import ProfileGrid, parse_key, required_keys
from hardware_profiles.profiler import ProfileSettings, space_record
from hardware_profiles.table import LatencyTable
from hardware_profiles.timing import Timing, TimingConfig
from search_spaces import SearchSpace, TargetDims
from specdec.shape import DecodeShape

SMALL_SPACE = {
    "name": "small",
    "dimensions": {
        "num_layers": [1, 2],
        "num_heads": [0.5, 1.0],
        "intermediate_size": [1.0, 2.0],
        "interaction": ["none", "concat", "cross_attention"],
        "injected_layers": [["top"], [1, "top"]],
        "vision_keep_ratio": [0.5, 1.0],
        "draft_vocab_size": [0.5, "full"],
        "decode": ["chain 2", "tree 3/4/10"],
    },
}

# What a layer's kind adds: the cross-attention block, or concat's 2D-wide q/k/v.
LAYER_KIND_MS = {"self": 0.0, "cross": 0.05, "concat": 0.02}
DIMS = TargetDims(hidden_size=64, num_layers=4, num_heads=4, vocab_size=256)
CHAIN, TREE = DecodeShape.chain(2), DecodeShape(depth=3, top_k=4, total_tokens=10)
SHAPES = (CHAIN, TREE)  # the small space's, cheapest first
GRID = ProfileGrid(contexts=(32, 64, 128), causal_queries=(1, 2, 3), tree_queries=(2, 4, 8, 10),
                   draft_queries=(1, 2, 3, 4))
DEVICE = DeviceFingerprint("cpu", "test cpu", 1, "2.13.0", "float32")
FINGERPRINT = "a" * 64


@pytest.fixture
def small_space_file(tmp_path):
    import yaml

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_SPACE))
    return path


def small_space(dims: TargetDims = DIMS):
    return SearchSpace.from_dict(SMALL_SPACE, "small").resolve(dims)


def fast_settings(contexts: tuple[int, ...] = (16, 40)) -> ProfileSettings:
    return ProfileSettings(timing=TimingConfig(0, 1), threads=1, contexts=contexts, save_every_s=0.0, progress=False)


def synthetic_ms(part: str, fields: dict) -> float:
    """A latency model that is linear in every interpolated field (so interpolation is exact)
    and grows with every size."""
    q, ctx = fields.get("q", 0), fields.get("ctx", 0)
    if part == "plain":
        return 1.2 + 0.002 * ctx
    if part == "target":  # a tree's mask costs a little more than causal attention
        return 1.0 + 0.05 * q + 0.002 * ctx + 0.02 * fields["tree"]
    if part == "step_overhead":
        return 0.1 + 0.01 * fields["total"] + 0.002 * fields["depth"] + 0.0005 * ctx
    if part == "layer":
        return (0.05 + 0.01 * q + 0.001 * ctx + 0.0002 * fields["ffn"]
                + 0.003 * fields["heads"] + LAYER_KIND_MS[fields["kind"]])
    if part == "head":
        return 0.02 + (0.3 if fields["vocab"] == 0 else 0.1) + 0.01 * q
    if part == "input":
        return 0.01 + 0.001 * q + (0.02 if fields["interaction"] == "concat" else 0.0)
    if part == "fusion":
        return 0.01 * fields["taps"] + 0.001 * q
    if part == "tree_overhead":
        return (0.2 if fields["vocab"] == 0 else 0.1) + 0.01 * fields["total"] * fields["top_k"]
    return 5.0 + 0.01 * ctx + fields["scores"]  # prefill


def synthetic_table(image_tokens: int = 16) -> LatencyTable:
    space = small_space()
    target = {"spec": "synthetic", "fingerprint": FINGERPRINT, "hidden_size": DIMS.hidden_size,
              "num_layers": DIMS.num_layers, "num_heads": DIMS.num_heads,
              "vocab_size": DIMS.vocab_size, "image_tokens": image_tokens}
    entries = {key: Timing(synthetic_ms(*parse_key(key)), 0.01, 5)
               for key in required_keys(space, SHAPES, GRID, image_tokens)}
    return LatencyTable(DEVICE, target, space_record(space, SHAPES), GRID, TimingConfig(1, 5),
                        entries, complete=True, memory=MemoryFacts(4_000_000, 8.0))
