"""Whether the next decoding step drafts: measured tokens per second of drafted and plain steps.

A drafted step emits more tokens than a plain one (root only, one target token) but costs more:
the draft's tree, a target forward over many tokens, and feeding the draft. Which wins depends on
the draft's acceptance and on the hardware (on a CPU a forward over 32 tokens can cost 1.6x one
token; on a GPU about the same), so `AdaptiveDrafting` decides from timings, not from a model:

- it starts by drafting. Without a plain step's timing it cannot compare, so it takes one plain
  step right after a drafted step that emitted a single token (there drafting surely lost), or
  after `refresh_every` drafted steps (a draft that always gets tokens accepted can still cost
  more than it gains);
- with both rates known, it drafts while the drafted rate >= the plain rate. When drafting
  loses it pauses for `first_backoff` plain steps, then probes with one drafted step; each lost
  probe doubles the pause up to `max_backoff`, a won one ends the pause and resets the back-off.
  A draft that never matches thus drafts O(log n) of n steps;
- while drafting it takes one plain step every `refresh_every` drafted steps, so the plain rate
  follows the growing context instead of freezing at its first value.

The decoder keeps one policy for its lifetime: what drafting costs and gains with this draft on
this hardware carries over from one generation to the next, so a stream of short generations
(a VQA answer is ~25 tokens) does not pay the first probes in each of them.

Rates are ratios of decaying means (tokens per step / seconds per step). Every step, drafted or
plain, multiplies the weight of all earlier drafted steps by `decay` and of all earlier plain steps
by `plain_decay`: a probe after a long pause outweighs drafted steps from long ago. The two
memories differ because the noise differs. A drafted step emits anything from 1 to depth + 1
tokens: a good draft on smollm2 (mean 2.0 tokens a drafted step, first token accepted 54% of the
time) often emits 1 token several steps in a row, and a short memory (0.8, about 5 steps) read
such a run as "drafting loses" and paused a draft that pays; 0.95 (about 20 steps) averages it
out (smollm2's searched draft, 16 test prompts: 1.25x vanilla with 0.8, 1.35x with 0.95, 1.32x
drafting every step, experiments/adaptive_memory.md). A plain step always emits one token and
only its time varies, and plain steps are rare while drafting pays, so the plain rate keeps a
short memory: a refresh replaces a stale timing instead of averaging with it. A rate with no new
step keeps its value (its mean does not decay, only its weight).

Lossless sampling: a step's decision uses only earlier steps (their seconds and emitted counts),
never that step's own random draws, so which steps draft is independent of how the current
step's tokens are drawn, and each step's tokens keep the target's distribution.
"""

from dataclasses import dataclass, field
from typing import Protocol


class DraftPolicy(Protocol):
    def draft_next(self) -> bool:
        """Whether the coming step drafts a tree (else it verifies the root alone)."""

    def record(self, tokens: int, seconds: float, drafted: bool) -> None:
        """What the step just done emitted and how long it took."""


class AlwaysDraft:
    """Draft every step (DecodeConfig.adaptive = False): the draft's acceptance, measured alone."""

    def draft_next(self) -> bool:
        return True

    def record(self, tokens: int, seconds: float, drafted: bool) -> None:
        pass


@dataclass
class StepRate:
    """Decaying means of tokens and seconds per step of one kind; weight 0 = nothing left of the
    past (never measured, or decayed away), so the next step sets the means."""

    tokens: float = 0.0
    seconds: float = 0.0
    weight: float = 0.0
    steps: int = 0

    def add(self, tokens: int, seconds: float) -> None:
        self.steps += 1
        self.weight += 1.0
        self.tokens += (tokens - self.tokens) / self.weight
        self.seconds += (seconds - self.seconds) / self.weight

    def at_least(self, other: "StepRate") -> bool:
        """tokens/seconds >= other's, cross-multiplied so a zero duration does not divide."""
        return self.tokens * other.seconds >= other.tokens * self.seconds


@dataclass
class AdaptiveDrafting:
    first_backoff: int = 2  # plain steps in the first pause after drafting lost
    max_backoff: int = 64  # the longest pause between two probes
    refresh_every: int = 32  # drafted steps between two plain steps that re-time a plain step
    decay: float = 0.95  # per step, the weight left to every earlier drafted step
    plain_decay: float = 0.8  # per step, the weight left to every earlier plain step
    drafted: StepRate = field(default_factory=StepRate)
    plain: StepRate = field(default_factory=StepRate)
    backoff: int = field(init=False)  # the length of the next pause
    pause_left: int = 0  # plain steps still to take before the next probe
    time_plain_next: bool = False  # one plain step to time it, then decide again
    drafted_since_plain: int = 0

    def __post_init__(self) -> None:
        self.backoff = self.first_backoff

    def draft_next(self) -> bool:
        return self.pause_left == 0 and not self.time_plain_next

    def record(self, tokens: int, seconds: float, drafted: bool) -> None:
        self.drafted.weight *= self.decay
        self.plain.weight *= self.plain_decay
        if drafted:
            self._after_drafted(tokens, seconds)
        else:
            self._after_plain(tokens, seconds)

    def _after_drafted(self, tokens: int, seconds: float) -> None:
        self.drafted.add(tokens, seconds)
        self.drafted_since_plain += 1
        if not self.plain.steps:
            self.time_plain_next = tokens <= 1 or self.drafted_since_plain >= self.refresh_every
        elif not self.drafted.at_least(self.plain):
            self._pause()
        else:
            self.backoff = self.first_backoff
            self.time_plain_next = self.drafted_since_plain >= self.refresh_every

    def _after_plain(self, tokens: int, seconds: float) -> None:
        self.plain.add(tokens, seconds)
        self.drafted_since_plain = 0
        if self.time_plain_next:
            self.time_plain_next = False
            if not self.drafted.at_least(self.plain):
                self._pause()
        else:
            self.pause_left = max(self.pause_left - 1, 0)

    def _pause(self) -> None:
        self.pause_left = self.backoff
        self.backoff = min(2 * self.backoff, self.max_backoff)
