"""One table row per method from its runs over the bench prompts.

Definitions (all summed over prompts before dividing):
- tokens_per_s: generated tokens / wall seconds of the generate calls; speedup: over vanilla.
- decode_speedup: the same after the prefill: tokens after the first / seconds after the prefill,
  over vanilla's. It is what a latency table predicts (steps only); `speedup` also carries the
  prompt's forward and the draft's prefill, which weigh more the shorter the answers.
- tau: tokens emitted per target forward after the prefill, the bonus token included (vanilla
  gives 1), over all steps; drafted_steps: the steps that verified draft tokens (an adaptive
  decoder takes plain steps while drafting does not pay); acceptance_by_depth[d]: share of the
  drafted steps that accepted more than d drafts.
- time split: seconds in the draft, in target forwards, and the rest (overhead).
- equals_vanilla: every prompt's tokens equal vanilla's (None when sampling: not comparable).
- t_step_ms: draft + target time per step, prefill left out (vanilla's is T_target(1)).
- efficiency (our drafts): measured speedup / (tau x T_target(1) / T_step). That denominator is
  the speedup a latency table predicts from the same tau, so efficiency says how much of it
  survives the decoder's bookkeeping. With adaptive decoding tau and T_step are both over all
  steps, drafted and plain, so the ratio keeps that meaning.
"""

from dataclasses import dataclass
from typing import Any

from specdec.bench.memory import PeakRss
from specdec.bench.methods import MethodRun
from specdec.stats import DecodeStats


@dataclass
class MethodResult:
    name: str
    kind: str
    runs: list[MethodRun]
    peak_rss: PeakRss


def total(runs: list[MethodRun]) -> DecodeStats:
    summed = DecodeStats()
    for run in runs:
        stats = run.stats
        for name in ("new_tokens", "steps", "drafted_steps", "step_tokens", "draft_tokens",
                     "prompt_tokens", "time_prefill", "time_target", "time_draft", "time_total"):
            setattr(summed, name, getattr(summed, name) + getattr(stats, name))
        depth = len(stats.accepted_at_depth)
        summed.accepted_at_depth += [0] * max(depth - len(summed.accepted_at_depth), 0)
        for d, count in enumerate(stats.accepted_at_depth):
            summed.accepted_at_depth[d] += count
    return summed


def decode_seconds_per_step(stats: DecodeStats) -> float | None:
    """Draft + target seconds per step after the prefill (bookkeeping overhead left out)."""
    if not stats.steps:
        return None
    return (stats.time_target + stats.time_draft - stats.time_prefill) / stats.steps


def decode_rate(stats: DecodeStats, prompts: int) -> float | None:
    """Tokens per second after the prefill (the prefill's own token left out)."""
    seconds = stats.time_total - stats.time_prefill
    return (stats.new_tokens - prompts) / seconds if seconds > 0 else None


def summarize(results: list[MethodResult], sampling: bool) -> list[dict[str, Any]]:
    """Rows in `results` order; the first result must be vanilla (the speedup baseline)."""
    if not results or results[0].kind != "vanilla":
        raise ValueError("the first bench result must be vanilla: speedups are relative to it")
    vanilla = total(results[0].runs)
    vanilla_rate = vanilla.tokens_per_second
    t_target_1 = decode_seconds_per_step(vanilla)
    vanilla_decode_rate = decode_rate(vanilla, len(results[0].runs))
    reference = [run.token_ids for run in results[0].runs]
    rows = []
    for result in results:
        stats = total(result.runs)
        speedup = stats.tokens_per_second / vanilla_rate if vanilla_rate else None
        t_step = decode_seconds_per_step(stats)
        rate = decode_rate(stats, len(result.runs))
        decode_speedup = (rate / vanilla_decode_rate
                          if None not in (rate, vanilla_decode_rate) else None)
        efficiency = None
        if result.kind == "draft" and None not in (speedup, stats.tau, t_target_1, t_step):
            efficiency = speedup / (stats.tau * t_target_1 / t_step)
        equal = None if sampling else [run.token_ids for run in result.runs] == reference
        rows.append({
            "method": result.name,
            "kind": result.kind,
            "prompts": len(result.runs),
            "prompt_tokens": stats.prompt_tokens,
            "new_tokens": stats.new_tokens,
            "seconds": stats.time_total,
            "tokens_per_s": stats.tokens_per_second,
            "speedup": speedup,
            "decode_speedup": decode_speedup,
            "tau": stats.tau,
            "drafted_steps": stats.drafted_steps,
            "acceptance_by_depth": stats.acceptance_by_depth,
            "time_draft_s": stats.time_draft,
            "time_target_s": stats.time_target,
            "time_overhead_s": stats.time_overhead,
            "target_forwards": stats.steps + len(result.runs),
            "t_step_ms": 1000 * t_step if t_step is not None else None,
            "efficiency": efficiency,
            "equals_vanilla": equal,
            "peak_rss_mib": result.peak_rss.mib,
            "peak_rss_since_reset": result.peak_rss.since_reset,
        })
    return rows
