"""`draftnas <command> [key=value ...]`: compose the command's config, run it, write result.json.

The one entry of a draftnas process: the run context (nas.run_context) is made here, once, from
the environment. stdout ends with the path of result.json; bad input exits 2 with one line on
stderr.
"""

import os
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nas.commands import COMMANDS, command_module, compose_config
from nas.run_context import RunContext
from nas.run_dir import RESULT_FILE, create_run_dir, execute
from nas.user_errors import one_line, user_error_types

HELP_FLAGS = ("-h", "--help")


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {summary}" for name, summary in COMMANDS.items()]
    return "\n".join([
        "usage: draftnas <command> [key=value ...]",
        "",
        "commands:",
        *lines,
        "",
        "Overrides use Hydra's syntax (key=value, quote values with commas or spaces).",
        "`draftnas <command> --help` prints the command's config.",
    ])


def command_help(name: str, config_yaml: str) -> str:
    doc = (command_module(name).__doc__ or "").strip()
    return "\n".join([
        f"usage: draftnas {name} [key=value ...]",
        "",
        doc,
        "",
        f"config (conf/{name}.yaml; override any key with key=value):",
        config_yaml.rstrip(),
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in HELP_FLAGS:
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command '{argv[0]}'" if argv else "no command given"
        print(f"draftnas: error: {problem}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    command, overrides = argv[0], [arg for arg in argv[1:] if arg not in HELP_FLAGS]
    wants_help = len(overrides) < len(argv) - 1
    quiet_transformers()
    quiet_ray()
    try:
        return run_command(command, overrides, wants_help, RunContext.from_environment())
    except user_error_types() as error:
        print(f"draftnas {command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"draftnas {command}: interrupted", file=sys.stderr)
        return 130


def run_command(command: str, overrides: list[str], wants_help: bool, ctx: RunContext) -> int:
    composed = compose_config(command, overrides)
    if wants_help:
        print(command_help(command, config_yaml(composed)))
        return 0
    cfg = OmegaConf.to_object(composed)
    run_dir = create_run_dir(command, cfg.run_dir)
    try:
        execute(command, cfg, run_dir, ctx)
    except BaseException:
        if cfg.run_dir is None:
            remove_if_empty(run_dir)
        raise
    print(run_dir / RESULT_FILE)
    return 0


def config_yaml(cfg: DictConfig) -> str:
    """The config as YAML, paths written as plain strings."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    return OmegaConf.to_yaml(OmegaConf.create(as_plain(plain)))


def as_plain(value):
    if isinstance(value, dict):
        return {key: as_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def quiet_transformers() -> None:
    """No per-load progress bars or advice from transformers: stderr is for our one-line errors
    (our own long steps, such as building an embedded target, show their own progress)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def quiet_ray() -> None:
    """Defaults Ray reads when `searcher=ray` imports it: no auth token for a local Ray, and Tune's
    legacy reporter, which honours verbose=0. The only environment a draftnas process writes."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def remove_if_empty(run_dir: Path) -> None:
    """A failed run that wrote nothing leaves no empty timestamped directory behind."""
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    sys.exit(main())
