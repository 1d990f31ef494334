"""Building an embedded target into `$DRAFTNAS_HOME` once, however many processes ask for it.

A build writes into a temporary sibling of its final directory, named after the building process
(`<prefix><pid>-<ns>`), and is renamed into place (atomic on one filesystem): a killed build never
leaves a half-written target, and the next build removes the temporary directories of processes
that no longer run, never a live one's. Builders of one target take turns on a lock file in
`$DRAFTNAS_HOME/locks/`: the first builds, the others wait and then use its build. The lock is
fcntl's, so the system releases it when its holder dies.
"""

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from targets.processes import process_alive


def build_once(home: Path, name: str, temp_prefix: str, build: Callable[[Path], None]) -> Path:
    """`home/targets/<name>`, made by `build(directory)` unless it is there already."""
    final = Path(home) / "targets" / name
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(Path(home) / "locks" / f"{name}.lock", final):
        if final.is_dir():  # built by the process this one waited for
            return final
        remove_stale_builds(final.parent, temp_prefix)
        building = final.parent / f"{temp_prefix}{os.getpid()}-{time.time_ns()}"
        building.mkdir()
        try:
            build(building)
            os.replace(building, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return final


@contextmanager
def exclusive(lock_file: Path, final: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process building {final}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def remove_stale_builds(parent: Path, temp_prefix: str) -> None:
    """Temporary directories of builds whose process no longer runs (killed mid-build)."""
    for leftover in parent.glob(f"{temp_prefix}*"):
        pid = leftover.name.removeprefix(temp_prefix).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
            continue
        shutil.rmtree(leftover, ignore_errors=True)
