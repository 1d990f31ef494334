"""Optuna search with the TPE or NSGA-II sampler (`searcher=tpe|nsga2`), called directly.

The study lives in `searcher.storage` (default: `sqlite:///<run_dir>/study.db`; any database URL
Optuna accepts), under `study_name`. Each finished trial is written to storage as it completes,
so an interrupted search loses none; a rerun with the same storage and study name continues it
until the study holds exactly `n_trials` completed trials.

Repeats none: a completed trial is one distinct candidate (a draft and its decoding shape). When
the sampler proposes one the study already completed (a tokens-only draft is the same whatever its
injected layers, and a small space fills up), that trial is marked PRUNED with the completed twin's
number in its user attrs, never evaluated, and a random candidate the study has not seen is
enqueued, so the search keeps moving. Completed trials carry user attrs "arch_key" and "result":
the candidate (Candidate.to_dict()) and every metric of nas.objectives.TrialResult.
"""

import logging
import random
import warnings
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from nas.candidates import Candidate
from nas.objectives import TrialResult
from nas.searchers import SearcherConfig, SearchProblem, TrialRecord
from nas.user_errors import UserError


def search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]:
    optuna.logging.set_verbosity(logging.WARNING)
    storage = config.storage or run_storage(problem.run_dir)
    study = open_study(storage, problem, sampler_of(config.name, problem))
    distributions = {name: CategoricalDistribution(values)
                     for name, values in problem.space.categorical_choices().items()}
    done = completed_archs(study)
    rng = random.Random(problem.seed + len(study.trials))
    with tqdm(total=problem.n_trials, initial=min(len(done), problem.n_trials),
              desc=f"search {problem.study_name}", unit="trial", leave=False) as bar:
        while len(done) < problem.n_trials:
            trial = study.ask(distributions)
            candidate = problem.space.from_params(trial.params)
            key = candidate.key
            if key in done:
                trial.set_user_attr("duplicate_of", done[key])
                study.tell(trial, state=TrialState.PRUNED)
                enqueue_unseen(study, problem, done, rng)
                continue
            result = problem.evaluator.evaluate(candidate)
            store(trial, result)
            if problem.objective.config.latency_budget_ms is not None:
                trial.set_constraint("latency", result.constraint)  # <= 0: feasible
            study.tell(trial, problem.objective.values(result))
            done[key] = trial.number
            bar.update(1)
    return records(study, problem)


def run_storage(run_dir: Path) -> str:
    """The run directory's SQLite file as a storage URL. Optuna fills a URL in as a format
    template, so braces (which a directory name may hold) are doubled."""
    path = str((run_dir / "study.db").resolve())
    return "sqlite:///" + path.replace("{", "{{").replace("}", "}}")


def sampler_of(name: str, problem: SearchProblem) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=problem.seed)
    return optuna.samplers.TPESampler(seed=problem.seed, multivariate=True)


def open_study(storage: str, problem: SearchProblem,
               sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """Create or continue the study; a database that cannot be reached, or a study of another
    objective, is a one-line UserError."""
    try:
        study = optuna.create_study(storage=storage_of(storage), study_name=problem.study_name,
                                    sampler=sampler, directions=problem.objective.directions,
                                    load_if_exists=True)
    except (SQLAlchemyError, ImportError, ValueError, OSError) as error:  # ImportError: no driver
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"searcher.storage: cannot open '{storage}' ({reason}); give a "
                        "reachable database URL or leave it null for the run's SQLite file") \
            from None
    directions = [d.name.lower() for d in study.directions]
    if directions != problem.objective.directions:
        raise UserError(f"study_name: '{problem.study_name}' in {storage} optimises {directions}, "
                        f"not {problem.objective.directions}; use another study_name")
    return study


def storage_of(url: str) -> str | optuna.storages.RDBStorage:
    """SQLite in WAL mode with synchronous=NORMAL: a commit (Optuna makes one per suggested
    param) no longer waits for the disk, which made the sampler's bookkeeping cost more than the
    evaluations; a killed process still loses no committed trial (only a power cut could)."""
    if not url.startswith("sqlite:"):
        return url
    storage = optuna.storages.RDBStorage(url)
    event.listen(storage.engine, "connect", fast_sqlite)
    storage.engine.dispose()  # connections opened before the listener would miss the pragmas
    return storage


def fast_sqlite(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def completed_archs(study: optuna.Study) -> dict[str, int]:
    """arch key -> number of the trial that completed it."""
    return {trial.user_attrs["arch_key"]: trial.number
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}


def enqueue_unseen(study: optuna.Study, problem: SearchProblem, done: dict[str, int],
                   rng: random.Random) -> None:
    space = problem.space
    if len(done) >= space.size():
        raise UserError(f"n_trials: {problem.n_trials} but space '{space.name}' has only "
                        f"{space.size()} distinct drafts; lower n_trials or use "
                        "searcher=exhaustive")
    for _ in range(1000):
        candidate = space.sample(rng)
        if candidate.key not in done:
            break
    else:  # a nearly full space: walk it in order instead of sampling
        candidate = next(c for c in space if c.key not in done)
    study.enqueue_trial(space.to_params(candidate), skip_if_exists=True)


def store(trial: optuna.Trial, result: TrialResult) -> None:
    # Two attributes, not one per metric: each is a write (and a commit) to the storage.
    trial.set_user_attr("arch_key", result.candidate.key)
    trial.set_user_attr("result", {"arch": result.candidate.to_dict(), **result.metrics()})


def records(study: optuna.Study, problem: SearchProblem) -> list[TrialRecord]:
    """Completed trials of the study as TrialRecords, rebuilt from storage (so a resumed study's
    earlier trials are included)."""
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs["result"]
        out.append(TrialRecord(trial.number, TrialResult(
            candidate=Candidate.from_dict(attrs["arch"]), tau=attrs["tau"], chain_tau=attrs["chain_tau"],
            tree_tau=attrs["tree_tau"], acceptance_by_depth=attrs["acceptance_by_depth"],
            latency_ms=attrs["latency_ms"], draft_ms=attrs["draft_ms"],
            speedup=attrs["speedup"], constraint=attrs["constraint"])))
    return out


def param_importance(problem: SearchProblem, config: SearcherConfig) -> dict[str, float] | None:
    """optuna.importance (fANOVA) of the arch dimensions for the objective's first value; None
    when the study has too few distinct completed trials for it."""
    storage = config.storage or run_storage(problem.run_dir)
    study = optuna.load_study(study_name=problem.study_name, storage=storage_of(storage))
    # Optuna's default evaluator (PED-ANOVA) ranks params by how they lead to LOW values.
    sign = -1.0 if problem.objective.directions[0] == "maximize" else 1.0
    try:
        with warnings.catch_warnings():  # its reminder of the above, which `sign` already heeds
            warnings.simplefilter("ignore", UserWarning)
            return optuna.importance.get_param_importances(
                study, target=lambda trial: sign * trial.values[0], normalize=True)
    except (RuntimeError, ValueError):  # fewer than two completed trials, or a constant value
        return None
