"""Optuna search with the TPE or NSGA-II sampler (`searcher=tpe|nsga2`), called directly.

The study lives in `searcher.storage` (nas.searchers.optuna_storage: the run's SQLite file by
default, a database URL, or a journal file), under `study_name`. Each finished trial is written to
storage as it completes, so an interrupted search loses none; a rerun with the same storage and
study name continues it until the study holds exactly `n_trials` completed trials.

Any number of workers (`draftnas search` processes) may search one study at once; together they
end with exactly `n_trials` completed trials and evaluate no candidate (a draft and its decoding
shape) twice. A trial claims its candidate as soon as it is drawn (user attrs "worker", host:pid,
then "arch_key"); the trials numbered before it decide what it does (Optuna numbers trials in the
order they are created, one at a time):
- it waits until every earlier running trial has claimed its candidate and, counted with the
  completed ones, leaves it room under `n_trials` (so only the last few trials of a search wait);
- a candidate that a completed or earlier running trial holds is not evaluated again: the trial
  is PRUNED with that trial's number in user attr "duplicate_of", and a random candidate nobody
  holds is enqueued so that the search keeps moving (a tokens-only draft is the same draft
  whatever its injected layers, and a small space fills up);
- a trial that finds the study full is PRUNED, and its worker stops.
A worker that died leaves a RUNNING trial: it is FAILED, never counted, by the next worker that
looks (stale_trials), and its candidate may be drawn again.

Completed trials carry user attrs "arch_key" and "result": the candidate (a draft and its
decoding shape, Candidate.to_dict()) and every metric of nas.objectives.TrialResult.
"""

import logging
import random
import time
import warnings

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from tqdm import tqdm

from nas.candidates import Candidate
from nas.objectives import TrialResult
from nas.searchers import SearcherConfig, SearchProblem, TrialRecord
from nas.searchers.optuna_storage import open_study, storage_of, study_storage
from nas.searchers.stale_trials import THIS_WORKER, fail_stale_trials
from nas.user_errors import UserError

# How often a waiting trial looks at the study again.
POLL_SECONDS = 0.1


def search(problem: SearchProblem, config: SearcherConfig) -> list[TrialRecord]:
    # ERROR: a trial that fails (an interrupted evaluation) is our exception to report, not a
    # warning with Optuna's traceback on stderr.
    optuna.logging.set_verbosity(logging.ERROR)
    space = problem.space
    if problem.n_trials > space.size():
        raise UserError(f"n_trials: {problem.n_trials} but space '{space.name}' has only "
                        f"{space.size()} distinct candidates; lower n_trials or use "
                        "searcher=exhaustive")
    study = open_study(study_storage(problem.run_dir, config), problem, sampler_of(config.name, problem),
                       config)
    fail_stale_trials(study, config.heartbeat_seconds)  # what a killed earlier run left RUNNING
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if done < problem.n_trials:
        with tqdm(total=problem.n_trials, initial=done, desc=f"search {problem.study_name}",
                  unit="trial", leave=False) as bar:
            objective = Objective(problem, config, random.Random(problem.seed + len(study.trials)))
            progress = lambda _, trial: bar.update(trial.state == TrialState.COMPLETE)
            # MaxTrialsCallback: stop once the study (all workers) holds n_trials completed ones.
            study.optimize(objective, callbacks=[MaxTrialsCallback(problem.n_trials), progress])
    return records(study, problem)


def sampler_of(name: str, problem: SearchProblem) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=problem.seed)
    # constant_liar: a worker's sampler counts the other workers' running trials as bad, so that
    # workers do not all draw near the same point.
    return optuna.samplers.TPESampler(seed=problem.seed, multivariate=True, constant_liar=True)


class Objective:
    """One trial of `study.optimize`: claim a candidate, wait for its turn, evaluate it unless
    another trial holds it."""

    def __init__(self, problem: SearchProblem, config: SearcherConfig, rng: random.Random):
        self.problem, self.config, self.rng = problem, config, rng
        self.choices = problem.space.categorical_choices()

    def __call__(self, trial: optuna.Trial) -> list[float]:
        problem = self.problem
        params = {name: trial.suggest_categorical(name, values)
                  for name, values in self.choices.items()}
        candidate = problem.space.from_params(params)
        key = candidate.key
        trial.set_user_attr("worker", THIS_WORKER)
        trial.set_user_attr("arch_key", key)  # the claim: later trials compare against it
        held = self.wait_for_turn(trial)
        if held is None:
            trial.study.stop()
            raise optuna.TrialPruned("the study holds n_trials completed trials")
        if key in held:
            trial.set_user_attr("duplicate_of", held[key])
            enqueue_unseen(trial.study, problem, set(held), self.rng)
            raise optuna.TrialPruned(f"the candidate of trial {held[key]}")
        result = problem.evaluator.evaluate(candidate)
        # One attribute, not one per metric: each is a write (and a commit) to the storage.
        trial.set_user_attr("result", {"arch": candidate.to_dict(), **result.metrics()})
        if problem.objective.config.latency_budget_ms is not None:
            trial.set_constraint("latency", result.constraint)  # <= 0: feasible
        return problem.objective.values(result)

    def wait_for_turn(self, trial: optuna.Trial) -> dict[str, int] | None:
        """Arch key -> number of the completed and the earlier running trials, once these leave
        this trial room under n_trials; None when the study holds n_trials completed ones."""
        study, n_trials = trial.study, self.problem.n_trials
        while True:
            trials = study.get_trials(deepcopy=False,
                                      states=(TrialState.COMPLETE, TrialState.RUNNING))
            complete = [other for other in trials if other.state == TrialState.COMPLETE]
            earlier = [other for other in trials
                       if other.state == TrialState.RUNNING and other.number < trial.number]
            if len(complete) >= n_trials:
                return None
            claimed = all("arch_key" in other.user_attrs for other in earlier)
            if claimed and len(complete) + len(earlier) < n_trials:
                return {other.user_attrs["arch_key"]: other.number
                        for other in earlier + complete}
            time.sleep(POLL_SECONDS)
            fail_stale_trials(study, self.config.heartbeat_seconds)


def enqueue_unseen(study: optuna.Study, problem: SearchProblem, held: set[str],
                   rng: random.Random) -> None:
    space = problem.space
    for _ in range(1000):
        candidate = space.sample(rng)
        if candidate.key not in held:
            break
    else:  # a nearly full space: walk it in order instead of sampling (held < n_trials <= size)
        candidate = next(c for c in space if c.key not in held)
    study.enqueue_trial(space.to_params(candidate), skip_if_exists=True)


def records(study: optuna.Study, problem: SearchProblem) -> list[TrialRecord]:
    """Completed trials of the study as TrialRecords, rebuilt from storage (so a resumed study's
    earlier trials, and other workers' trials, are included)."""
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
    study = optuna.load_study(study_name=problem.study_name,
                              storage=storage_of(study_storage(problem.run_dir, config), config))
    # Optuna's default evaluator (PED-ANOVA) ranks params by how they lead to LOW values.
    sign = -1.0 if problem.objective.directions[0] == "maximize" else 1.0
    try:
        with warnings.catch_warnings():  # its reminder of the above, which `sign` already heeds
            warnings.simplefilter("ignore", UserWarning)
            return optuna.importance.get_param_importances(
                study, target=lambda trial: sign * trial.values[0], normalize=True)
    except (RuntimeError, ValueError):  # fewer than two completed trials, or a constant value
        return None
