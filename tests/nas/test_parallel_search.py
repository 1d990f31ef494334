"""Search workers in parallel on one Optuna study, in separate processes: together they end with
exactly n_trials completed trials and evaluate no arch twice, on SQLite and on a journal file; a
fresh study is created by both at once; a trial its worker left RUNNING when it died is failed,
never counted."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_searchers import problem

from nas.searchers import SearcherConfig, search

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def storage_url(tmp_path: Path, kind: str) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "study.log")


def loaded(url: str) -> optuna.Study:
    storage = url if "://" in url else optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(url))
    return optuna.load_study(study_name="s", storage=storage)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_on_one_fresh_study_end_with_exactly_n_distinct_trials(tmp_path, kind):
    url, start, n_trials = storage_url(tmp_path, kind), tmp_path / "start", 16
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    run_dirs = [tmp_path / "run0", tmp_path / "run1"]
    workers = []
    for run_dir in run_dirs:
        run_dir.mkdir()
        workers.append(subprocess.Popen(
            [sys.executable, str(HERE / "parallel_search_worker.py"), str(run_dir), url,
             str(n_trials), str(start)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    start.touch()  # both create the study and search from here on
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    evaluated = [key for out, _ in outputs for key in out.splitlines()]
    complete = loaded(url).get_trials(states=(TrialState.COMPLETE,))
    keys = [trial.user_attrs["arch_key"] for trial in complete]
    assert len(complete) == n_trials and len(set(keys)) == n_trials
    assert sorted(evaluated) == sorted(keys)  # each evaluated once, by one worker
    assert all(out.strip() for out, _ in outputs)  # both worked


def dead_pid() -> str:
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.filterwarnings("ignore:.*heartbeat", "ignore:Heartbeat")  # set up by hand, as a worker
@pytest.mark.parametrize("kind, worker", [
    ("sqlite", "this machine, process gone"),
    ("journal", "this machine, process gone"),
    ("sqlite", "another machine, heartbeat stopped"),
    ("journal", "none named"),
])
def test_a_trial_its_dead_worker_left_running_is_failed_and_never_counted(tmp_path, kind, worker):
    url = storage_url(tmp_path, kind)
    config = SearcherConfig(name="tpe", storage=url, heartbeat_seconds=1)
    search(problem(tmp_path, 4), config)
    study = loaded(url)
    if worker == "another machine, heartbeat stopped":
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=1)
        study = optuna.load_study(study_name="s", storage=storage)
    stale = study.ask()
    if worker != "none named":
        host = socket.gethostname() if worker.startswith("this") else "another-machine"
        pid = dead_pid() if worker.startswith("this") else 1
        stale.set_user_attr("worker", f"{host}:{pid}")
        stale.set_user_attr("arch_key", "an arch being evaluated")
    if worker == "another machine, heartbeat stopped":
        storage.record_heartbeat(stale._trial_id)
    # The last trial waits for the stale one (numbered before it) until it is failed.
    records = search(problem(tmp_path, 8), config)
    assert len(records) == 8 and stale.number not in [record.number for record in records]
    assert loaded(url).trials[stale.number].state == TrialState.FAIL
