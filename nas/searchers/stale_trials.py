"""Trials that a dead search worker left RUNNING: failed, so that they are never counted and no
live worker waits for them.

A draftnas trial names its worker (user attr "worker": host:pid) as soon as it starts. A trial is
stale when
- its worker ran on this machine and its process is gone (found at once, on any storage);
- Optuna's heartbeat of it stopped for 3 x `searcher.heartbeat_seconds` (a database storage: a
  worker on another machine; Optuna's JournalStorage has no heartbeat);
- it named no worker within that time (killed before it could, or made by another program).
"""

import os
import socket
import warnings
from datetime import datetime

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from targets.processes import process_alive

HOST = socket.gethostname()
THIS_WORKER = f"{HOST}:{os.getpid()}"


def fail_stale_trials(study: optuna.Study, heartbeat_seconds: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # the heartbeat's (a no-op without one)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(trial, 3 * heartbeat_seconds):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def is_stale(trial: FrozenTrial, grace_seconds: float) -> bool:
    worker = trial.user_attrs.get("worker")
    if worker is None:
        started = trial.datetime_start
        return (datetime.now(started.tzinfo) - started).total_seconds() > grace_seconds
    host, _, pid = worker.rpartition(":")
    return host == HOST and not process_alive(int(pid))
