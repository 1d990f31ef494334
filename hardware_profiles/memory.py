"""How close plain decoding runs to what the memory allows: decoding one token reads every weight
of the target's text decoder and head once, so on a machine that reads `read_gbs` GB/s no runtime
decodes faster than read_gbs / weight bytes tokens per second. A table records both numbers
(`MemoryFacts`), and with its plain steps they say how much of a step is not weight reading.
"""

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from targets.runtime import served_weight_bytes

# Larger than any last-level cache, so that a pass over it reads DRAM.
READ_BUFFER_MB = 512
READ_PASSES = 7


@dataclass(frozen=True)
class MemoryFacts:
    weight_bytes: int  # bytes of weights one decoding step reads (text decoder and head, served)
    read_gbs: float  # measured read bandwidth, GB/s (1e9 bytes), with the profile's threads

    @property
    def limit_tokens_per_s(self) -> float:
        """Plain decoding's upper bound: one read of every weight per token."""
        return self.read_gbs * 1e9 / self.weight_bytes

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "limit_tokens_per_s": round(self.limit_tokens_per_s, 2)}


def step_weight_bytes(model: nn.Module) -> int:
    """What one decoding step of a HF model reads: its text decoder and output head (a vision
    tower runs once per prompt; a tied head is counted once)."""
    return served_weight_bytes(nn.ModuleList([model.get_decoder(),
                                              model.get_output_embeddings()]))


def read_bandwidth_gbs(device: torch.device | str = "cpu") -> float:
    """Median GB/s of summing a buffer far larger than the caches, with torch's current threads
    (a sum does a few operations per byte read: memory-bound on any CPU or GPU)."""
    device = torch.device(device)
    buffer = torch.ones(READ_BUFFER_MB * 2**20 // 4, device=device)
    rates = []
    for _ in range(READ_PASSES):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        buffer.sum().item()
        rates.append(buffer.numel() * 4 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)
