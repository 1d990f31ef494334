"""The run directory of one command and the `result.json` it leaves there."""

import json
import os
import time
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"


def create_run_dir(command: str, requested: str | None) -> Path:
    """`requested` if given (created when missing), else a fresh `runs/<command>/<timestamp>`
    under the current directory; a second run in the same second gets a `-2`, `-3`... suffix."""
    if requested:
        run_dir = Path(requested)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    base = Path("runs") / command / time.strftime("%Y%m%d-%H%M%S")
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        run_dir = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    raise RuntimeError(f"could not create a fresh run directory next to {base}")


def write_result(run_dir: Path, command: str, result: dict[str, Any], config: dict) -> Path:
    """Write `{"command", "result", "config"}` atomically, so a reader never sees half a file."""
    path = run_dir / RESULT_FILE
    temp = path.with_name(f".{RESULT_FILE}.{os.getpid()}.tmp")
    payload = {"command": command, "result": result, "config": config}
    temp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(temp, path)
    return path
