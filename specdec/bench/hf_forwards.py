"""Counts and times the forwards of a transformers `generate` call, so that its baselines get
the same stats as our decoder: tau, acceptance by depth and the draft / target / overhead split.

Each target forward of assisted or prompt-lookup decoding verifies the candidates after the
newest token; the next forward starts where the accepted tokens end. So the cache length at
the start of forward i+1 minus the one at forward i is what forward i emitted (accepted
candidates + the bonus token). Forward 0 is the prefill (which in assisted decoding also
verifies the first candidates): like our decoder's prefill it is not a step, and tau, the
tokens per step with the bonus token included, leaves it out.
"""

import itertools
import time
from dataclasses import dataclass, field
from typing import Self

from torch import nn

from specdec.stats import DecodeStats


@dataclass
class _Call:
    cache_length: int  # tokens in the target's cache when the forward started
    new_tokens: int  # tokens it ran (the newest token + candidates, or the prompt)
    seconds: float = 0.0


@dataclass
class ForwardLog:
    """Hooks on `target` (and `draft`, if given) while inside `with`; then `stats(...)`."""

    target: nn.Module
    draft: nn.Module | None = None
    calls: list[_Call] = field(default_factory=list)
    draft_seconds: float = 0.0

    def __enter__(self) -> Self:
        self._handles = [
            self.target.register_forward_pre_hook(self._target_starts, with_kwargs=True),
            self.target.register_forward_hook(self._target_ends),
        ]
        if self.draft is not None:
            self._handles += [self.draft.register_forward_pre_hook(self._draft_starts),
                              self.draft.register_forward_hook(self._draft_ends)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()

    def _target_starts(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        cache = kwargs.get("cache")
        ids = kwargs.get("input_ids", args[0] if args else None)
        length = cache.get_seq_length() if cache is not None else 0
        self.calls.append(_Call(int(length), int(ids.shape[1]) if ids is not None else 0))
        self._started = time.perf_counter()

    def _target_ends(self, module: nn.Module, args: tuple, output: object) -> None:
        self.calls[-1].seconds = time.perf_counter() - self._started

    def _draft_starts(self, module: nn.Module, args: tuple) -> None:
        self._draft_started = time.perf_counter()

    def _draft_ends(self, module: nn.Module, args: tuple, output: object) -> None:
        self.draft_seconds += time.perf_counter() - self._draft_started

    def stats(self, prompt_tokens: int, new_tokens: int, seconds: float) -> DecodeStats:
        stats = DecodeStats(new_tokens=new_tokens, prompt_tokens=prompt_tokens,
                            time_total=seconds, time_draft=self.draft_seconds,
                            time_target=sum(call.seconds for call in self.calls))
        if not self.calls:
            return stats
        stats.time_prefill = self.calls[0].seconds
        # The newest known token before forward i (i >= 1) sits at position cache_length_i;
        # before the prefill it is the prompt's last token.
        starts = [prompt_tokens - 1] + [call.cache_length for call in self.calls[1:]]
        emitted = [after - before for before, after in itertools.pairwise(starts)]
        emitted.append(new_tokens - sum(emitted))
        for call, count in zip(self.calls[1:], emitted[1:]):
            stats.record_step(max(count - 1, 0), count, max(call.new_tokens - 1, 0))
        return stats
