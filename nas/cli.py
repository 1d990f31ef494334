"""`draftnas <command> [key=value ...]`: compose the command's config, run it, write result.json.

stdout ends with the path of result.json; bad input exits 2 with one line on stderr.
"""

import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

from nas.commands import COMMANDS, command_module, compose_config
from nas.run_dir import create_run_dir, write_result
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
    try:
        return run_command(command, overrides, wants_help)
    except user_error_types() as error:
        print(f"draftnas {command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"draftnas {command}: interrupted", file=sys.stderr)
        return 130


def run_command(command: str, overrides: list[str], wants_help: bool) -> int:
    cfg = compose_config(command, overrides)
    if wants_help:
        print(command_help(command, OmegaConf.to_yaml(cfg)))
        return 0
    chosen_by_user = cfg.run_dir is not None
    run_dir = create_run_dir(command, cfg.run_dir)
    cfg.run_dir = str(run_dir)
    try:
        result = command_module(command).run(OmegaConf.to_object(cfg))
    except BaseException:
        if not chosen_by_user:
            remove_if_empty(run_dir)
        raise
    path = write_result(run_dir, command, result, OmegaConf.to_container(cfg, resolve=True))
    print(path)
    return 0


def quiet_transformers() -> None:
    """No per-load progress bars or advice from transformers: stderr is for our one-line errors
    (our own long steps, such as building an embedded target, show their own progress)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def remove_if_empty(run_dir: Path) -> None:
    """A failed run that wrote nothing leaves no empty timestamped directory behind."""
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    sys.exit(main())
