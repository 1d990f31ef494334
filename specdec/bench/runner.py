"""Run every method on the same prompts: fixed threads, warm-up, then timed rounds.

Within a round the methods take turns prompt by prompt (vanilla, then each method, on prompt 1;
then on prompt 2; ...). This machine's speed drifts by 10% and more within minutes: run one
method after another over all prompts and a 16-prompt smollm2 bench gives vanilla the first two
minutes and the last method the last two, so a drift lands on one method's row alone (the same
draft measured 1.18x so and 1.31x with turns, one run each, the same afternoon). With turns a
slow spell hits every method alike. Each run gets its own peak-RSS window; a method's peak is
the highest of its runs. The warm-up runs each method once on the first prompt, untimed: first
calls pay for lazy initialisation (allocator growth, kernel selection) that later calls do not.
With `repeats` > 1 every method is timed in each of that many rounds and keeps its round of
median total time: on a shared machine a neighbour's burst then spoils one round, not the row.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm import tqdm

from specdec.bench.memory import PeakRss, read_peak_rss, reset_peak_rss
from specdec.bench.methods import Method, MethodRun, Sampling
from specdec.bench.summary import MethodResult, summarize
from targets import PreparedInputs

WARMUP_TOKENS = 8


@dataclass(frozen=True)
class BenchSettings:
    sampling: Sampling
    threads: int
    warmup: bool = True
    progress: bool = True
    repeats: int = 1


def run_bench(methods: Sequence[Method], prompts: Sequence[PreparedInputs],
              settings: BenchSettings) -> list[dict[str, Any]]:
    """One summary row per method (see specdec.bench.summary); methods[0] must be vanilla."""
    if not prompts:
        raise ValueError("the bench needs at least one prompt")
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        if settings.warmup:
            short = replace(settings.sampling,
                            max_new_tokens=min(WARMUP_TOKENS, settings.sampling.max_new_tokens))
            for method in methods:
                method.run(prompts[0], short)
        rounds: list[list[MethodResult]] = [[] for _ in methods]
        with tqdm(total=settings.repeats * len(methods) * len(prompts), desc="bench",
                  unit="prompt", disable=not settings.progress) as bar:
            for _ in range(settings.repeats):
                results = timed_round(methods, prompts, settings.sampling, bar)
                for done, result in zip(rounds, results, strict=True):
                    done.append(result)
    finally:
        torch.set_num_threads(threads)
    return summarize([median_round(done) for done in rounds],
                     sampling=settings.sampling.temperature > 0)


def median_round(done: list[MethodResult]) -> MethodResult:
    """The round of median total time (the lower middle one for an even count); its peak RSS is
    the highest of all rounds."""
    ordered = sorted(done, key=lambda result: sum(run.stats.time_total for run in result.runs))
    chosen = ordered[(len(ordered) - 1) // 2]
    peak = max((result.peak_rss for result in done), key=lambda rss: rss.mib)
    return replace(chosen, peak_rss=peak)


def timed_round(methods: Sequence[Method], prompts: Sequence[PreparedInputs], sampling: Sampling,
                bar: tqdm) -> list[MethodResult]:
    """One MethodResult per method, the methods taking turns on each prompt."""
    runs: list[list[MethodRun]] = [[] for _ in methods]
    peaks: list[list[PeakRss]] = [[] for _ in methods]
    for index, prompt in enumerate(prompts):
        # One seed per prompt, the same for every method: sampled runs stay comparable.
        seeded = replace(sampling, seed=sampling.seed + index)
        for method, done, peak in zip(methods, runs, peaks, strict=True):
            bar.set_postfix_str(method.name)
            since_reset = reset_peak_rss()
            done.append(method.run(prompt, seeded))
            peak.append(read_peak_rss(since_reset))
            bar.update()
    return [MethodResult(method.name, method.kind, done, max(peak, key=lambda rss: rss.mib))
            for method, done, peak in zip(methods, runs, peaks, strict=True)]
