"""Timing one callable: warm-up, then repeats; the median and the spread (interquartile range).

CPU: `time.perf_counter` around each call (clock "wall"), with torch's thread count pinned for the
whole profile (a different count is a different machine). On a CPU shared with other jobs, wall
time measures the neighbours; clock "cpu" measures the CPU time this process spent instead
(`time.process_time`), which is what one thread's wall time is on a quiet machine: use it with
threads=1 only (with more threads it adds their times up). GPU: CUDA events around each call,
synchronised once per call, so launch overhead is included as the decoder sees it.

On CPU a timed call can start with cold caches (`flush_mb` of memory is rewritten before it,
untimed): in a decoding step a draft layer's weights have been partly pushed out by the target's
forward, and a part timed hot in a loop comes out far cheaper than it runs there. Flushing 20 MiB
of this project's machine's 32 MiB last-level cache matched whole decoding steps best (median
error of 30 random drafts' steps: -9% at 16 MiB, -3% at 20, +5% at 24, +17% at 32; experiments/
latency.md); the profiler flushes before every part but `parts.WARM_PARTS`.
"""

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass(frozen=True)
class TimingConfig:
    """warmup calls, then `repeats` timed ones; a slow call stops repeating once `budget_s`
    seconds are spent and at least `min_repeats` were timed (a 1 s target forward needs no 15)."""

    warmup: int = 3
    repeats: int = 15
    min_repeats: int = 5
    budget_s: float = 2.0
    clock: str = "wall"  # "wall" or "cpu" (see the module docstring)
    flush_mb: int = 20  # CPU caches to evict before each timed call (0: time with warm caches)

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"timing clock {self.clock!r}: use one of {', '.join(CLOCKS)}")


@dataclass(frozen=True)
class Timing:
    ms: float  # median milliseconds of one call
    spread: float  # interquartile range, milliseconds
    repeats: int


def time_call(fn: Callable[[], object], cfg: TimingConfig, device: torch.device,
              reset: Callable[[], object] | None = None) -> Timing:
    """Median time of `fn()`; `reset()` (untimed) runs after every call to restore its inputs
    (for example, crop a cache that the call grew)."""
    return summarize(time_samples(fn, cfg, device, reset))


def time_samples(fn: Callable[[], object], cfg: TimingConfig, device: torch.device,
                 reset: Callable[[], object] | None = None) -> list[float]:
    """Milliseconds of each timed call of `fn()` (see `time_call`)."""
    cuda = torch.device(device).type == "cuda"
    clock = CLOCKS[cfg.clock]
    samples: list[float] = []
    began_timing = None
    for index in range(cfg.warmup + cfg.repeats):
        if index == cfg.warmup:
            began_timing = time.perf_counter()
        if (began_timing is not None and len(samples) >= cfg.min_repeats
                and time.perf_counter() - began_timing > cfg.budget_s):
            break
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end)
        else:
            started = clock()
            fn()
            elapsed = (clock() - started) * 1e3
        if reset is not None:
            reset()
        if not cuda and cfg.flush_mb:
            evict_caches(cfg.flush_mb)
        if index >= cfg.warmup:
            samples.append(elapsed)
    return samples


# numpy, not torch: a torch buffer made under inference_mode could not be updated outside it.
_FLUSH_BUFFERS: dict[int, np.ndarray] = {}


def evict_caches(megabytes: int) -> None:
    """Rewrite `megabytes` of memory, so that what the next call reads comes from DRAM."""
    if megabytes not in _FLUSH_BUFFERS:
        _FLUSH_BUFFERS[megabytes] = np.zeros(megabytes * 2**20 // 4, dtype=np.float32)
    _FLUSH_BUFFERS[megabytes] += 1.0


def summarize(samples: list[float]) -> Timing:
    if len(samples) < 2:
        return Timing(samples[0], 0.0, len(samples))
    quartiles = statistics.quantiles(samples, n=4)
    return Timing(statistics.median(samples), quartiles[2] - quartiles[0], len(samples))


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run with exactly `threads` intra-op threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
