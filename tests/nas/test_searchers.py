"""Searchers on a synthetic evaluator: distinct archs, exact trial counts, resume, Ray, bad input."""

import sys

import pytest

from nas.candidates import CandidateSpace
from nas.objectives import Objective, ObjectiveConfig, TrialResult, best_of
from nas.searchers import SearcherConfig, SearchProblem, search
from nas.user_errors import UserError
from search_spaces import SearchSpace, TargetDims

SPACE = {
    "name": "small",
    "dimensions": {
        "num_layers": [1, 2, 3],
        "num_heads": [0.5, 1.0],
        "intermediate_size": [1.0, 2.0],
        "interaction": ["none", "concat", "cross_attention"],
        "injected_layers": [["top"], [1, "top"]],
        "vision_keep_ratio": [1.0],
        "draft_vocab_size": [0.5, "full"],
    },
}
DIMS = TargetDims(hidden_size=64, num_layers=4, num_heads=4, vocab_size=256)


# Six distinct drafts: one tokens-only per depth, two feature-reading ones per depth.
TINY_SPACE = {"name": "tiny", "dimensions": {
    **SPACE["dimensions"], "num_layers": [1, 2], "num_heads": [1.0], "intermediate_size": [1.0],
    "interaction": ["none", "concat"], "draft_vocab_size": ["full"]}}


def small_space(data: dict = SPACE) -> CandidateSpace:
    listed = SearchSpace.from_dict(data, data["name"])
    return CandidateSpace(listed.resolve(DIMS), listed.decode)


class SyntheticEvaluator:
    """tau grows with depth, heads and features; latency with depth, width and cross-attention;
    so the best speedup is a middle point. Records what it evaluated; can stop after `stop_after`
    evaluations with KeyboardInterrupt, as a killed search would."""

    def __init__(self, objective: Objective, stop_after: int | None = None):
        self.objective, self.stop_after, self.evaluated = objective, stop_after, []

    def evaluate(self, candidate) -> TrialResult:
        if self.stop_after is not None and len(self.evaluated) >= self.stop_after:
            raise KeyboardInterrupt
        self.evaluated.append(candidate.key)
        arch = candidate.arch
        reads = arch.interaction != "none"
        tau = (1.2 + 0.4 * arch.num_layers + 0.2 * (arch.num_heads / 2) + 0.5 * reads
               + 0.1 * len(arch.injected_layers) + 0.1 * (arch.draft_vocab_size is None))
        draft = (2.0 * arch.num_layers * (1 + 0.5 * (arch.interaction == "cross_attention"))
                 + arch.intermediate_size / 64)
        latency = 20.0 + draft
        return TrialResult(candidate=candidate, tau=tau, chain_tau=tau, tree_tau=tau,
                           acceptance_by_depth=[0.5], latency_ms=latency, draft_ms=draft,
                           speedup=tau * 18.0 / latency,
                           constraint=self.objective.constraint(latency))


class SyntheticFactory:
    """Picklable: a Ray worker builds its own evaluator with it."""

    def __init__(self, objective: Objective):
        self.objective = objective

    def __call__(self) -> SyntheticEvaluator:
        return SyntheticEvaluator(self.objective)

    def __eq__(self, other) -> bool:
        return isinstance(other, SyntheticFactory) and other.objective == self.objective


def problem(tmp_path, n_trials, kind="speedup", budget=None, stop_after=None, study="s",
            space=SPACE):
    objective = Objective(ObjectiveConfig(kind=kind, latency_budget_ms=budget))
    return SearchProblem(space=small_space(space), objective=objective,
                         evaluator=SyntheticEvaluator(objective, stop_after),
                         evaluator_factory=SyntheticFactory(objective), n_trials=n_trials,
                         study_name=study, run_dir=tmp_path, seed=0)


@pytest.mark.parametrize("name", ["tpe", "nsga2"])
def test_optuna_completes_exactly_n_distinct_trials(tmp_path, name):
    search_problem = problem(tmp_path, 12)
    records = search(search_problem, SearcherConfig(name=name))
    keys = [record.result.candidate.key for record in records]
    assert len(records) == 12 and len(set(keys)) == 12
    assert sorted(search_problem.evaluator.evaluated) == sorted(keys)  # nothing evaluated twice
    assert (tmp_path / "study.db").is_file()


def test_killed_search_rerun_ends_with_n_trials_and_repeats_none(tmp_path):
    first = problem(tmp_path, 14, stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        search(first, SearcherConfig(name="tpe"))
    second = problem(tmp_path, 14)
    records = search(second, SearcherConfig(name="tpe"))
    keys = [record.result.candidate.key for record in records]
    assert len(records) == 14 and len(set(keys)) == 14
    # The 6 finished before the kill were kept; the rerun evaluated only the 8 missing.
    assert len(second.evaluator.evaluated) == 8
    assert not set(first.evaluator.evaluated) & set(second.evaluator.evaluated)
    # A third run with the same study name has nothing left to do.
    third = problem(tmp_path, 14)
    assert len(search(third, SearcherConfig(name="tpe"))) == 14 and not third.evaluator.evaluated


def test_small_space_fills_up_without_repeats(tmp_path):
    space = small_space(TINY_SPACE)
    assert space.size() == 6
    records = search(problem(tmp_path, 6, space=TINY_SPACE), SearcherConfig(name="tpe"))
    assert {r.result.candidate.key for r in records} == {c.key for c in space}
    with pytest.raises(UserError, match="distinct candidates"):
        search(problem(tmp_path, 7, study="over", space=TINY_SPACE), SearcherConfig(name="tpe"))


def test_exhaustive_evaluates_every_point_once_and_finds_the_best(tmp_path):
    search_problem = problem(tmp_path, 1)
    records = search(search_problem, SearcherConfig(name="exhaustive"))
    assert len(records) == small_space().size() == len(set(search_problem.evaluator.evaluated))
    best = best_of([(r.number, r.result) for r in records])
    assert best[1].speedup == max(r.result.speedup for r in records)
    with pytest.raises(UserError, match="max_size"):
        search(search_problem, SearcherConfig(name="exhaustive", max_size=10))


def test_pareto_search_with_budget_never_picks_an_infeasible_best(tmp_path):
    records = search(problem(tmp_path, 30, kind="pareto", budget=24.0),
                     SearcherConfig(name="nsga2"))
    assert any(not r.result.feasible for r in records)  # the budget bites
    _, best = best_of([(r.number, r.result) for r in records])
    assert best.feasible and best.latency_ms <= 24.0


def test_unreachable_storage_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError, match="searcher.storage") as error:
        search(problem(tmp_path, 3), SearcherConfig(
            name="tpe", storage=f"sqlite:///{tmp_path}/no/such/dir/study.db"))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="unknown"):
        search(problem(tmp_path, 3), SearcherConfig(name="grid"))


def test_ray_tune_two_local_workers_reach_a_valid_best_and_shut_down(tmp_path, monkeypatch):
    import ray
    from ray import cloudpickle

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # Ray workers cannot import this test module by name: ship its classes by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    search_problem = problem(tmp_path, 6)
    try:
        records = search(search_problem, SearcherConfig(name="ray", workers=2))
    finally:
        if ray.is_initialized():
            ray.shutdown()
            pytest.fail("the Ray searcher left Ray running")
    assert 1 <= len(records) <= 6
    assert len({r.result.candidate.key for r in records}) == len(records)
    _, best = best_of([(r.number, r.result) for r in records])
    space = small_space()
    space.validate(best.candidate)
    # The metrics came back from the workers: they equal a fresh evaluation of the same draft.
    fresh = SyntheticEvaluator(search_problem.objective).evaluate(best.candidate)
    assert best.speedup == pytest.approx(fresh.speedup)


def test_unreachable_ray_address_is_a_one_line_user_error(tmp_path):
    import ray

    with pytest.raises(UserError, match="searcher.address") as error:
        search(problem(tmp_path, 2), SearcherConfig(name="ray", address="127.0.0.1:1"))
    assert "\n" not in str(error.value) and not ray.is_initialized()
