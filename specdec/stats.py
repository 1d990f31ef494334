"""What one generation measured: tau, acceptance by depth, time split, cache sizes.

tau = tokens emitted per target forward, the bonus token INCLUDED, over ALL steps: drafted ones
and plain ones (an adaptive decoder verifies the root alone while drafting does not pay, see
specdec.adaptive). So tau is what the decoder got per target forward, not the draft's quality
alone; that is tau with adaptive=False. The prefill forward is not a step and the token it
produces is not counted in tau (it is counted in new_tokens). A draft that never matches gives
tau = 1; vanilla decoding (no draft) gives exactly 1.

acceptance_by_depth is over drafted steps only (a step that proposed draft tokens): a plain step
proposes nothing, and counting it would mix the draft's quality with how often it was used.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@dataclass
class DecodeStats:
    new_tokens: int = 0  # generated tokens, the prefill's first token included
    steps: int = 0  # target forwards after prefill (one per verified tree)
    drafted_steps: int = 0  # of those, steps that verified draft tokens (the rest: root only)
    step_tokens: int = 0  # tokens emitted by those steps (after EOS / budget truncation)
    accepted_at_depth: list[int] = field(default_factory=list)  # [d]: steps accepting > d drafts
    draft_tokens: int = 0  # draft tokens verified (tree nodes without roots), summed over steps
    prompt_tokens: int = 0
    time_prefill: float = 0.0  # seconds, target + draft prefill (also inside the two below)
    time_target: float = 0.0
    time_draft: float = 0.0
    time_total: float = 0.0
    max_target_cache: int = 0  # the largest target KV length reached (prefix + one tree)
    max_draft_cache: int = 0

    @property
    def tau(self) -> float | None:
        """Tokens per target forward over all steps, the bonus token included; None before any
        step."""
        return self.step_tokens / self.steps if self.steps else None

    @property
    def acceptance_by_depth(self) -> list[float]:
        """[d]: fraction of drafted steps whose accepted path has more than d draft tokens."""
        if not self.drafted_steps:
            return []
        return [count / self.drafted_steps for count in self.accepted_at_depth]

    @property
    def time_overhead(self) -> float:
        return max(self.time_total - self.time_target - self.time_draft, 0.0)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.time_total if self.time_total > 0 else 0.0

    def record_step(self, accepted: int, emitted: int, draft_tokens: int) -> None:
        """One target forward that verified draft_tokens draft tokens (0: a plain step)."""
        self.steps += 1
        self.drafted_steps += int(draft_tokens > 0)
        self.step_tokens += emitted
        self.draft_tokens += draft_tokens
        if accepted > len(self.accepted_at_depth):
            self.accepted_at_depth += [0] * (accepted - len(self.accepted_at_depth))
        for depth in range(accepted):
            self.accepted_at_depth[depth] += 1

    def to_dict(self) -> dict:
        return {
            "new_tokens": self.new_tokens, "steps": self.steps,
            "drafted_steps": self.drafted_steps, "tau": self.tau,
            "acceptance_by_depth": self.acceptance_by_depth, "draft_tokens": self.draft_tokens,
            "prompt_tokens": self.prompt_tokens, "time_prefill": self.time_prefill,
            "time_target": self.time_target, "time_draft": self.time_draft,
            "time_overhead": self.time_overhead, "time_total": self.time_total,
            "tokens_per_second": self.tokens_per_second,
            "max_target_cache": self.max_target_cache, "max_draft_cache": self.max_draft_cache,
        }


class Stopwatch:
    """perf_counter intervals; on CUDA it synchronises first so GPU work lands in its phase."""

    def __init__(self, device: torch.device):
        self.cuda = torch.device(device).type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextmanager
    def measure(self, stats: DecodeStats, attribute: str):
        start = self.now()
        try:
            yield
        finally:
            setattr(stats, attribute, getattr(stats, attribute) + self.now() - start)
