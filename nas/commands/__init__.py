"""The commands of `draftnas`, and how a command's config is composed.

A command `<name>` is the module `nas.commands.<name>`, which defines
- `Config`: a dataclass (kw_only, subclass of `CommandConfig`), the schema of its config,
- `Result`: a dataclass of JSON values, what its `result.json` records, and
- `run(cfg: Config, ctx: RunContext) -> Result`: does the work (nas.run_context: the loaded
  targets, the home and tables directories),
and the primary config `conf/<name>.yaml`, whose defaults list starts with `<name>_schema` (the
dataclass, registered below) and which holds the values. `nas.run_dir.execute` runs a command
for the CLI and for the pipeline alike. No command module imports another: what two commands
share lives in the package that owns it. A command is listed in `COMMANDS` only once its module
exists: `draftnas --help` shows what really runs.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from nas.user_errors import UserError

# name -> one-line summary, in the order of the data flow.
COMMANDS: dict[str, str] = {
    "target": "build or load a target, print its facts; with prompt=, generate greedily",
    "profile": "time the target and a search space's draft parts into a latency table",
    "train": "train the draft supernet of a search space against a target",
    "search": "search a trained supernet for the fastest draft on a latency table (Optuna, Ray)",
    "export": "write a searched draft as a checkpoint with its provenance (optionally refined)",
    "decode": "generate with a draft checkpoint (or none): text or JSON, tau, acceptance, timing",
    "bench": "compare vanilla, assisted generation, prompt lookup and drafts on the same prompts",
    "pipeline": "the whole job on one target: train, profile, search, export, bench; resumable",
}


@dataclass(kw_only=True)
class CommandConfig:
    # Where result.json (and anything else the run writes) goes; null: runs/<command>/<time>.
    # The CLI replaces it with the directory it created before calling `run`.
    run_dir: Path | None


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"nas.commands.{name}")


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """The config of command `name`: `conf/<name>.yaml` checked against its dataclass, with the
    command-line overrides applied (Hydra's override grammar)."""
    check_override_syntax(overrides)
    overrides = [data_shorthand(override) for override in overrides]
    ConfigStore.instance().store(name=f"{name}_schema", node=command_module(name).Config)
    with initialize_config_module(config_module="conf", version_base=None):
        return compose(config_name=name, overrides=overrides)


def data_shorthand(override: str) -> str:
    """`data=<source>` means `data.source=<source>` (the value as the user quoted it): the data
    key is a group of keys (userdata.DataConfig), but its source is what one names first."""
    key, equals, value = override.partition("=")
    if key == "data" and equals and not value.lstrip().startswith("{"):
        return f"data.source={value}"
    return override


def command_config(name: str, overrides: list[str]) -> CommandConfig:
    """`compose_config` as the command's `Config` dataclass."""
    return OmegaConf.to_object(compose_config(name, overrides))


def check_override_syntax(overrides: list[str]) -> None:
    """Name the override Hydra cannot parse (its own message quotes only a fragment)."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as error:
            lines = [line.strip() for line in str(error).splitlines()]
            reason = next((line for line in lines if line.strip("^") and not line.startswith(
                ("See ", "Error parsing override"))), "cannot parse it")
            raise UserError(
                f"override '{override}': {reason}; write key=value, and quote a value that holds "
                "spaces, commas or brackets: key='a, b'"
            ) from None
