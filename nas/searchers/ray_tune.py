"""Ray Tune search with OptunaSearch (`searcher=ray`).

Local by default (`ray.init(num_cpus=workers * cpus_per_trial)`, no dashboard); with
`searcher.address` it joins an existing cluster instead. `searcher.workers` trials run at once,
each with `cpus_per_trial` / `gpus_per_trial`. A worker builds the evaluator once (target,
supernet, validation features) from the problem's picklable factory and keeps it for every trial
it runs. OptunaSearch samples the same categorical space as the Optuna searchers; with two
objectives it gets both metrics and modes (it never prunes). Ray's own results go to
`<run_dir>/ray/`; Ray is shut down when the search ends, also after an error or an interrupt, when
this search started it. Ray reads RAY_AUTH_MODE and RAY_AIR_NEW_OUTPUT at import: the CLI sets
their defaults at its entry (nas.cli).
"""

import socket
from pathlib import Path
from typing import Any

import ray
from optuna.distributions import CategoricalDistribution
from ray import tune
from ray.tune.search.optuna import OptunaSearch
from tqdm import tqdm

from nas.candidates import Candidate
from nas.objectives import SubnetEvaluator, TrialResult
from nas.searchers import SearcherConfig, SearchProblem, TrialRecord
from nas.user_errors import UserError

REACH_TIMEOUT_S = 5.0
# The evaluator a Ray worker process built, with the factory (a frozen dataclass) that built it.
_WORKER_EVALUATOR: list[tuple[Any, SubnetEvaluator]] = []


def search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]:
    check_config(config)
    started = start_ray(config)
    try:
        distributions = {name: CategoricalDistribution(values)
                         for name, values in problem.space.categorical_choices().items()}
        names, directions = problem.objective.names, problem.objective.directions
        modes = ["max" if d == "maximize" else "min" for d in directions]
        searcher = OptunaSearch(space=distributions, metric=names if len(names) > 1 else names[0],
                                mode=modes if len(modes) > 1 else modes[0], seed=problem.seed)
        resources = {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, factory=problem.evaluator_factory,
                                 space=problem.space), resources)
        with tqdm(total=problem.n_trials, desc=f"search {problem.study_name}", unit="trial",
                  leave=False) as bar:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=searcher, num_samples=problem.n_trials,
                                            max_concurrent_trials=config.workers,
                                            reuse_actors=True),
                run_config=tune.RunConfig(name=problem.study_name, verbose=0,
                                          callbacks=[Progress(bar)],
                                          storage_path=str((problem.run_dir / "ray").resolve())))
            grid = tuner.fit()
        return records_of(grid)
    finally:
        if started:
            ray.shutdown()


class Progress(tune.Callback):
    """Advances the progress bar per finished trial; Tune pickles its callbacks into the
    experiment state, and a bar (an open stream) does not pickle: it is left out."""

    def __init__(self, bar: tqdm):
        self.bar: tqdm | None = bar

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def __getstate__(self) -> dict[str, Any]:
        return {"bar": None}


def check_config(config: SearcherConfig) -> None:
    if config.workers < 1 or config.cpus_per_trial < 0 or config.gpus_per_trial < 0:
        raise UserError(f"searcher: workers={config.workers}, cpus_per_trial="
                        f"{config.cpus_per_trial}, gpus_per_trial={config.gpus_per_trial}; use "
                        "workers >= 1 and non-negative resources")


def start_ray(config: SearcherConfig) -> bool:
    """Join the cluster at `config.address`, or start a local Ray; True when this call started
    (and so must stop) it."""
    if ray.is_initialized():
        return False
    root = str(Path(__file__).resolve().parents[2])
    runtime_env = {"env_vars": {"PYTHONPATH": root, "RAY_AUTH_MODE": "disabled"}}
    if config.address:
        check_reachable(config.address)
    try:
        if config.address:
            ray.init(address=config.address, runtime_env=runtime_env, log_to_driver=False)
        else:
            cpus = max(1, round(config.workers * config.cpus_per_trial))
            ray.init(num_cpus=cpus, num_gpus=int(config.workers * config.gpus_per_trial),
                     include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"searcher.address: cannot join Ray at '{config.address}' ({reason}); "
                        "give a running cluster's address or leave it null for a local Ray") \
            from None
    return True


def check_reachable(address: str) -> None:
    """Ray retries an unreachable address for minutes: try one TCP connection first."""
    if address == "auto":
        return  # Ray resolves it from this machine and fails fast when there is no cluster
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise UserError(f"searcher.address: cannot reach Ray at '{address}' ({error}); give a "
                        "running cluster's host:port (or ray://host:port), or leave it null for "
                        "a local Ray") from None


def run_trial(config: dict[str, Any], factory: Any, space: Any) -> dict[str, Any]:
    """One Tune trial in a worker: evaluate the sampled candidate, return its metrics."""
    if not _WORKER_EVALUATOR or _WORKER_EVALUATOR[0][0] != factory:
        _WORKER_EVALUATOR[:] = [(factory, factory())]
    candidate = space.from_params(config)
    result = _WORKER_EVALUATOR[0][1].evaluate(candidate)
    return {**result.metrics(), "arch": candidate.to_dict(), "arch_key": candidate.key}


def records_of(grid: Any) -> list[TrialRecord]:
    """Finished trials in the order Tune created them; a repeated candidate keeps its first."""
    out, seen = [], set()
    for number, result in enumerate(grid):
        metrics = result.metrics
        if result.error is not None or not metrics or "arch" not in metrics:
            continue
        if metrics["arch_key"] in seen:
            continue
        seen.add(metrics["arch_key"])
        out.append(TrialRecord(number, TrialResult(
            candidate=Candidate.from_dict(metrics["arch"]), tau=metrics["tau"],
            chain_tau=metrics["chain_tau"], tree_tau=metrics["tree_tau"],
            acceptance_by_depth=list(metrics["acceptance_by_depth"]),
            latency_ms=metrics["latency_ms"], draft_ms=metrics["draft_ms"],
            speedup=metrics["speedup"], constraint=metrics["constraint"])))
    return out
