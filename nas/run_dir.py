"""The run directory of one command, the `result.json` it leaves there, `execute` (how the CLI
and the pipeline run a command) and `run_stages` (a resumable list of commands)."""

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from nas.commands import CommandConfig, command_module
from nas.run_context import RunContext
from nas.user_errors import UserError

RESULT_FILE = "result.json"


def create_run_dir(command: str, requested: Path | None) -> Path:
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


def execute(command: str, cfg: CommandConfig, run_dir: Path, ctx: RunContext) -> Any:
    """Run `command` in `run_dir` (created if missing), then record its result, config and
    duration in `run_dir/result.json`, written last: a directory that holds one holds a
    finished run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = replace(cfg, run_dir=run_dir)
    started = time.perf_counter()
    result = command_module(command).run(cfg, ctx)
    write_result(run_dir, command, asdict(result), asdict(cfg), time.perf_counter() - started)
    return result


@dataclass(frozen=True)
class Stage:
    name: str  # its directory in the run directory
    command: str
    config: Callable[[dict[str, Any]], CommandConfig]  # from the earlier stages' results
    # Whether the target needs it, from the earlier stages' results (False: not run, no result).
    needed: Callable[[dict[str, Any]], bool] = lambda _: True


def run_stages(stages: list[Stage], run_dir: Path, ctx: RunContext,
               say: Callable[[str], None]) -> tuple[dict[str, Any], float]:
    """Execute each stage in `run_dir/<name>`, skipping one an earlier run finished (it holds
    result.json) and one the target does not need. The results of the stages that ran, by name,
    and the seconds they took, over every run."""
    results: dict[str, Any] = {}
    seconds = 0.0
    for stage in stages:
        if not stage.needed(results):
            say(f"{stage.name}: not needed for this target, skipped")
            continue
        stage_dir = run_dir / stage.name
        done = (stage_dir / RESULT_FILE).is_file()
        say(f"{stage.name}: " + ("done before, skipped" if done else f"draftnas {stage.command}"))
        if not done:
            execute(stage.command, stage.config(results), stage_dir, ctx)
        results[stage.name], took = read_result(stage_dir, stage.command)
        seconds += took
        if not done:
            say(f"{stage.name}: finished in {took:.1f} s")
    return results, seconds


def read_result(run_dir: Path, command: str) -> tuple[Any, float]:
    """The `Result` of the finished run of `command` in `run_dir`, and the seconds it took."""
    path = run_dir / RESULT_FILE
    try:
        payload = json.loads(path.read_text())
        result = command_module(command).Result(**payload["result"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not the result of a finished `draftnas {command}` ({error}); "
                        "delete its directory to run it again") from None
    return result, payload.get("seconds", 0.0)  # none recorded before durations were


def write_result(run_dir: Path, command: str, result: dict[str, Any], config: dict,
                 seconds: float) -> Path:
    """Write `{"command", "result", "config", "seconds"}` atomically, so a reader never sees
    half a file."""
    path = run_dir / RESULT_FILE
    temp = path.with_name(f".{RESULT_FILE}.{os.getpid()}.tmp")
    payload = {"command": command, "result": result, "config": config,
               "seconds": round(seconds, 2)}
    temp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=path_text) + "\n")
    os.replace(temp, path)
    return path


def path_text(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
