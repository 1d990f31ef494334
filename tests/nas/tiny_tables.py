"""A complete latency table for a tiny target, with made-up timings that grow with every size (so
that drafts and decoding shapes differ in predicted speedup), as `draftnas profile` writes it."""

from pathlib import Path

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.parts import ProfileGrid, parse_key, required_keys
from hardware_profiles.profiler import image_tokens_of
from hardware_profiles.table import LatencyTable
from hardware_profiles.timing import Timing, TimingConfig


def part_ms(part: str, fields: dict) -> float:
    """Latencies that grow with every size, so that speedups differ between drafts."""
    scale = 1.0 + 0.01 * fields.get("q", 0) + 0.001 * fields.get("ctx", 0)
    base = {"target": 5.0, "layer": 0.2 + 0.001 * fields.get("ffn", 0), "head": 0.1}
    return base.get(part, 0.05) * scale


def write_table(path: Path, target, space, shapes, drop_heads: int | None = None) -> Path:
    grid = ProfileGrid(contexts=(16, 64), causal_queries=(1, 2, 3), tree_queries=(6,),
                       draft_queries=(1, 2, 3, 4))
    image_tokens = image_tokens_of(target)
    entries = {key: Timing(part_ms(*parse_key(key)), 0.01, 3)
               for key in required_keys(space, shapes, grid, image_tokens)
               if drop_heads is None or parse_key(key)[1].get("heads") != drop_heads}
    table = LatencyTable(
        DeviceFingerprint("cpu", "test cpu", 1, "2.13.0", "float32"),
        {"spec": target.spec, "fingerprint": target.fingerprint,
         "hidden_size": target.hidden_size, "num_layers": target.num_layers,
         "num_heads": target.num_heads, "vocab_size": target.vocab_size,
         "image_tokens": image_tokens},
        {**space.to_dict(), "decode": [shape.label for shape in shapes]}, grid, TimingConfig(1, 3),
        entries, complete=True)
    return table.save(path)
