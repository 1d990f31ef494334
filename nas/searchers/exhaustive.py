"""Exhaustive search (`searcher=exhaustive`): evaluate every distinct point of a small space.

Trials are numbered in the space's own order (CandidateSpace iteration: each draft, then its
shapes); a tokens-only draft is evaluated once per shape, whatever its injected layers. Spaces above `searcher.max_size` points are refused:
use tpe, nsga2 or ray for those. `n_trials` does not apply: every point is a trial.
"""

from tqdm import tqdm

from nas.searchers import SearcherConfig, SearchProblem, TrialRecord
from nas.user_errors import UserError


def search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]:
    size = problem.space.size()
    if size > config.max_size:
        raise UserError(f"searcher=exhaustive: space '{problem.space.name}' has {size} points, "
                        f"over searcher.max_size={config.max_size}; use searcher=tpe or raise "
                        "searcher.max_size")
    return [TrialRecord(number, problem.evaluator.evaluate(candidate))
            for number, candidate in enumerate(tqdm(problem.space, total=size, leave=False,
                                               desc="search exhaustive", unit="trial"))]
