"""Searchers: one strategy per module, chosen by `searcher.name` (`draftnas search searcher=...`).

    tpe, nsga2   nas.searchers.optuna_search  Optuna's TPE or NSGA-II sampler, resumable study
    ray          nas.searchers.ray_tune       Ray Tune with OptunaSearch, local or a cluster
    exhaustive   nas.searchers.exhaustive     every point of a small space

Each exposes `search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]`: the
completed trials, every one a distinct candidate (nas.candidates: a draft and its decoding
shape), numbered as the strategy numbers them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.candidates import CandidateSpace
from nas.objectives import Objective, SubnetEvaluator, TrialResult
from nas.user_errors import UserError

NAMES = ("tpe", "nsga2", "ray", "exhaustive")


@dataclass
class SearcherConfig:
    name: str = "tpe"
    # Optuna: a database URL, or a journal file path (nas.searchers.optuna_storage); null:
    # sqlite:///<run_dir>/study.db. Ray: where OptunaSearch keeps nothing (its study lives in
    # memory), so storage is an Optuna-only key.
    storage: str | None = None
    # Optuna on a database: seconds between a running trial's heartbeats; a trial silent for 3 of
    # them (its worker died) is failed (nas.searchers.stale_trials).
    heartbeat_seconds: int = 10
    # Ray: null starts a local Ray; an address (ray://host:10001, host:6379, auto) joins a cluster.
    address: str | None = None
    # Ray: concurrent trials and the resources each takes.
    workers: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # Exhaustive: refuse spaces larger than this (each point is one evaluation).
    max_size: int = 5000


@dataclass
class SearchProblem:
    space: CandidateSpace
    objective: Objective
    evaluator: SubnetEvaluator  # in this process
    # Rebuilds an equal evaluator in another process (Ray workers); picklable.
    evaluator_factory: Callable[[], SubnetEvaluator]
    n_trials: int
    study_name: str
    run_dir: Path
    seed: int


@dataclass
class TrialRecord:
    number: int
    result: TrialResult


def search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]:
    if config.name in ("tpe", "nsga2"):
        from nas.searchers.optuna_search import search as run
    elif config.name == "ray":
        from nas.searchers.ray_tune import search as run
    elif config.name == "exhaustive":
        from nas.searchers.exhaustive import search as run
    else:
        raise UserError(f"searcher: '{config.name}' is unknown; use one of {', '.join(NAMES)}")
    return run(problem, config)
