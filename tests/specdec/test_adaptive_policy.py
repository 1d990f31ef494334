"""AdaptiveDrafting on synthetic timings: a plain step costs 1 s and emits 1 token; a drafted step
costs `cost` seconds and emits what the scenario's draft gets accepted, plus the bonus token."""

import itertools
import math
import random
from collections.abc import Callable

from specdec.adaptive import AdaptiveDrafting


def run(steps: int, cost: float, tokens: Callable[[int], int],
        policy: AdaptiveDrafting | None = None,
        plain_cost: Callable[[int], float] = lambda step: 1.0) -> list[bool]:
    """Which of `steps` steps drafted; tokens(i) = what a drafted step i would emit."""
    policy = policy or AdaptiveDrafting()
    drafted = []
    for step in range(steps):
        drafting = policy.draft_next()
        emitted = tokens(step) if drafting else 1
        policy.record(emitted, cost if drafting else plain_cost(step), drafting)
        drafted.append(drafting)
    return drafted


def test_a_draft_that_never_matches_drafts_only_logarithmically_many_steps():
    for steps in (64, 1000):
        drafted = run(steps, cost=3.0, tokens=lambda step: 1)
        assert drafted[0], "it starts by drafting"
        assert not drafted[1], "then times a plain step"
        # The first drafted step, then one probe per pause of 2, 4, ... 64 and every 64 after.
        probes = math.ceil(math.log2(min(steps, 64))) + max(steps - 127, 0) // 65
        assert sum(drafted) <= 1 + probes, (steps, sum(drafted))
    # Pauses double up to 64 plain steps between probes.
    probe_steps = [step for step, was_drafted in enumerate(drafted) if was_drafted]
    gaps = [b - a - 1 for a, b in itertools.pairwise(probe_steps)]
    assert gaps[:6] == [3, 4, 8, 16, 32, 64] and set(gaps[6:]) == {64}


def test_a_good_draft_drafts_every_step_but_the_plain_timing_refreshes():
    # Accepts 3 tokens mostly and nothing every 7th step: tau ~ 3.4 at 1.5 s per step.
    drafted = run(200, cost=1.5, tokens=lambda step: 1 if step % 7 == 3 else 4)
    plain = [step for step, was_drafted in enumerate(drafted) if not was_drafted]
    assert plain[0] == 4, "one plain step to time it, after the first step that accepted nothing"
    # Afterwards only the refresh: one plain step per 32 drafted ones.
    assert len(plain) == 1 + (200 - 5) // 33


def test_a_draft_that_pays_on_average_keeps_drafting_through_runs_of_rejections():
    # smollm2's searched chain-3 draft: 1 token on 46% of drafted steps (first draft rejected),
    # 2 / 3 / 4 tokens on 26 / 10 / 18%: 2.0 a step at 1.4 plain steps' cost, 1.43x plain
    # decoding. Runs of 1-token steps are common; the policy must average over them, not pause.
    rng = random.Random(0)
    emitted = [rng.choices([1, 2, 3, 4], [0.46, 0.26, 0.10, 0.18])[0] for _ in range(2000)]
    drafted = run(2000, cost=1.4, tokens=lambda step: emitted[step])
    assert sum(drafted) >= 0.92 * len(drafted)
    tokens = sum(emitted[step] if was_drafted else 1 for step, was_drafted in enumerate(drafted))
    seconds = sum(1.4 if was_drafted else 1.0 for was_drafted in drafted)
    assert tokens / seconds >= 0.985 * sum(emitted) / (1.4 * len(emitted))


def test_a_draft_slower_than_its_gain_is_paused_however_much_it_accepts():
    # 2 tokens per drafted step at 2.5 s: 0.8 tokens/s against plain's 1.
    drafted = run(300, cost=2.5, tokens=lambda step: 1 if step == 0 else 2)
    assert sum(drafted) <= 12


def test_a_draft_that_always_gets_tokens_accepted_but_costs_more_is_timed_and_paused():
    # 5 tokens per drafted step, never fewer, at 6 s: 0.83 tokens/s against plain's 1.
    drafted = run(300, cost=6.0, tokens=lambda step: 5)
    assert all(drafted[:32]) and not drafted[32], "a plain step after refresh_every drafted ones"
    assert sum(drafted[32:]) <= 8


def test_a_draft_that_becomes_good_later_is_picked_up_again():
    turns_good = 500
    drafted = run(1000, cost=2.0, tokens=lambda step: 1 if step < turns_good else 5)
    assert sum(drafted[:turns_good]) <= 12
    # The next probe (at most 65 steps later) wins, and drafting stays on.
    resumed = drafted.index(True, turns_good)
    assert resumed <= turns_good + 65
    after = drafted[resumed:]
    assert sum(after) >= len(after) * 32 / 33 - 1


def test_a_won_probe_resets_the_back_off():
    policy = AdaptiveDrafting()
    run(200, cost=3.0, tokens=lambda step: 1, policy=policy)
    assert policy.backoff == policy.max_backoff
    while not policy.draft_next():
        policy.record(1, 1.0, drafted=False)
    policy.record(6, 3.0, drafted=True)
    assert policy.draft_next() and policy.backoff == policy.first_backoff


def test_a_stale_plain_timing_is_refreshed_while_drafting():
    # Drafting gives 0.8 tokens/s. The one plain step timed first took 5 s (the machine was busy),
    # so drafting looks better; the refresh after 32 drafted steps times a plain step at 1 s.
    drafted = run(300, cost=2.5, tokens=lambda step: 1 if step == 0 else 2,
                  plain_cost=lambda step: 5.0 if step == 1 else 1.0)
    assert drafted[:1] == [True] and not drafted[1] and all(drafted[2:34])
    assert not drafted[34], "the refresh"
    assert sum(drafted[34:]) <= 9
