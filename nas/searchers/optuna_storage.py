"""Where an Optuna study lives (`searcher.storage`), and opening it, also by several workers at once.

- null: `sqlite:///<run_dir>/study.db`, the run's own SQLite file;
- a database URL (`sqlite:///...`, `postgresql://...`, `mysql://...`): Optuna's RDBStorage, with
  its heartbeat, so that the trial of a worker that died on any machine is failed;
- anything else is a file path: Optuna's JournalStorage (an append-only log, file-locked), which
  workers on one machine share without a database server.
"""

import random
import time
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning, StorageInternalError
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from nas.searchers import SearcherConfig, SearchProblem
from nas.user_errors import UserError

# Workers that create one study at once race on its tables and rows; the loser retries.
OPEN_ATTEMPTS = 4


def study_storage(run_dir: Path, config: SearcherConfig) -> str:
    """`searcher.storage`, or the run directory's SQLite file as a URL. Optuna fills a URL in as a
    format template, so braces (which a directory name may hold) are doubled."""
    if config.storage:
        return config.storage
    path = str((run_dir / "study.db").resolve())
    return "sqlite:///" + path.replace("{", "{{").replace("}", "}}")


def storage_of(url: str, config: SearcherConfig) -> optuna.storages.BaseStorage:
    if "://" not in url:
        return JournalStorage(JournalFileBackend(url))
    with warnings.catch_warnings():  # "heartbeat_interval is an experimental feature"
        warnings.simplefilter("ignore", ExperimentalWarning)
        storage = RDBStorage(url, heartbeat_interval=config.heartbeat_seconds,
                             grace_period=3 * config.heartbeat_seconds,
                             engine_kwargs={"connect_args": {"timeout": 60}}
                             if url.startswith("sqlite:") else {})
    if url.startswith("sqlite:"):
        event.listen(storage.engine, "connect", sqlite_connection)
        event.listen(storage.engine, "begin", lambda connection: connection.exec_driver_sql(
            "BEGIN IMMEDIATE"))
        storage.engine.dispose()  # connections opened before the listeners would miss them
    return storage


def check_storage(run_dir: Path, config: SearcherConfig) -> None:
    """Open the study's storage once, so that an unreachable one is refused before a search
    spends minutes on its setup (a UserError naming searcher.storage)."""
    url = study_storage(run_dir, config)
    try:
        storage_of(url, config)
    except (SQLAlchemyError, ImportError, ValueError, OSError) as error:
        raise unreachable(url, error) from None


def sqlite_connection(connection, _record) -> None:
    """WAL with synchronous=NORMAL: a commit (Optuna makes one per suggested param) no longer
    waits for the disk, which made the sampler's bookkeeping cost more than the evaluations; a
    killed process still loses no committed trial (only a power cut could).

    And transactions that take the write lock when they begin (BEGIN IMMEDIATE, emitted by the
    engine's "begin" event, with the driver's own transaction handling off): Optuna reads, then
    writes, in one transaction to number a new trial or to take an enqueued one, and SQLite (which
    ignores SELECT ... FOR UPDATE) let two workers read the same state, so both took trial N or
    the same enqueued trial."""
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_study(url: str, problem: SearchProblem, sampler: optuna.samplers.BaseSampler,
               config: SearcherConfig) -> optuna.Study:
    """Create or continue the study; a storage that cannot be opened, or a study of another
    objective, is a one-line UserError."""
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            study = optuna.create_study(storage=storage_of(url, config),
                                        study_name=problem.study_name, sampler=sampler,
                                        directions=problem.objective.directions,
                                        load_if_exists=True)
            break
        except (SQLAlchemyError, StorageInternalError, DuplicatedStudyError) as error:
            if attempt == OPEN_ATTEMPTS:
                raise unreachable(url, error) from None
            time.sleep(random.uniform(0.1, 0.5))  # another worker creating the same study
        except (ImportError, ValueError, OSError) as error:  # ImportError: no database driver
            raise unreachable(url, error) from None
    directions = [d.name.lower() for d in study.directions]
    if directions != problem.objective.directions:
        raise UserError(f"study_name: '{problem.study_name}' in {url} optimises {directions}, "
                        f"not {problem.objective.directions}; use another study_name")
    return study


def unreachable(url: str, error: Exception) -> UserError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UserError(f"searcher.storage: cannot open '{url}' ({reason}); give a reachable "
                     "database URL, a journal file in an existing directory, or leave it null "
                     "for the run's SQLite file")
