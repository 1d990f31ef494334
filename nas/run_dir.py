"""The run directory of one command and the `result.json` it leaves there."""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.user_errors import UserError

RESULT_FILE = "result.json"


def create_run_dir(command: str, requested: str | None) -> Path:
    """`requested` if given (created when missing), else a fresh `runs/<command>/<timestamp>`
    under the current directory; a second run in the same second gets a `-2`, `-3`... suffix.
    Either is checked writable here, before the command works for minutes and then cannot write
    its result."""
    if requested:
        run_dir = Path(requested)
        with refused_as_user_error(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
            check_writable(run_dir)
        return run_dir
    base = Path("runs") / command / time.strftime("%Y%m%d-%H%M%S")
    with refused_as_user_error(base):
        base.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            run_dir = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            check_writable(run_dir)
            return run_dir
    raise RuntimeError(f"could not create a fresh run directory next to {base}")


def check_writable(run_dir: Path) -> None:
    # Write a file rather than ask os.access: root passes os.access on a read-only mount.
    probe = run_dir / f".write-check.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


@contextmanager
def refused_as_user_error(run_dir: Path) -> Iterator[None]:
    """A path that is a file, lies below a file, or cannot be written: one line naming run_dir."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(f"run_dir: '{run_dir}' cannot be used as a run directory ({reason}: "
                        f"{error.filename}); give a directory you can write, or a path to "
                        "create one at") from None


def write_result(run_dir: Path, command: str, result: dict[str, Any], config: dict) -> Path:
    """Write `{"command", "result", "config"}` atomically, so a reader never sees half a file."""
    path = run_dir / RESULT_FILE
    temp = path.with_name(f".{RESULT_FILE}.{os.getpid()}.tmp")
    payload = {"command": command, "result": result, "config": config}
    temp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(temp, path)
    return path
