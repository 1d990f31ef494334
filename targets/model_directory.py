"""What a local model directory must be before transformers reads it: a config that needs no code of
the directory's own, and weights whose files are whole.

transformers, asked to load a config whose `auto_map` names a module of the directory and whose
`model_type` it does not ship, asks on stdin whether to run that module (trust_remote_code=None);
draftnas passes trust_remote_code=False everywhere and refuses such a directory here, by name.
"""

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers import CONFIG_MAPPING

from targets.errors import TargetError


def check_model_directory(path: Path) -> None:
    refuse_remote_code(path / "config.json")
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)


def refuse_remote_code(config_file: Path) -> None:
    """A config that only the directory's own code can read: one line naming `auto_map`. A config
    transformers cannot parse as JSON is left to AutoConfig, which says why."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(config, dict) or "auto_map" not in config:
        return
    model_type = config.get("model_type")
    if model_type in CONFIG_MAPPING:  # transformers' own class is used, the auto_map ignored
        return
    modules = sorted(code_modules(config["auto_map"]))
    raise TargetError(
        f"{config_file}: its auto_map names the directory's own code ({', '.join(modules)}) for "
        f"model_type {model_type!r}, which transformers does not ship; draftnas never runs a model "
        "directory's code (trust_remote_code=False): use a model of an architecture transformers "
        "includes"
    )


def code_modules(auto_map) -> set[str]:
    """The modules an auto_map names: "configuration_x.XConfig", a [slow, fast] tokenizer pair,
    "other/repo--modeling_x.XModel"."""
    names = []
    for value in auto_map.values() if isinstance(auto_map, dict) else ():
        names += value if isinstance(value, list) else [value]
    return {name.split("--")[-1].split(".")[0] for name in names if isinstance(name, str)}


def check_safetensors(weights: Path) -> None:
    """The header of a safetensors file (it also covers the file's length, so a truncated copy
    fails here): a cut-short download is named, not a SafetensorError traceback mid-load."""
    try:
        with safe_open(weights, framework="pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise TargetError(
            f"{weights}: not a whole safetensors file ({error}); the copy or download was cut "
            "short or corrupted: fetch the model's weights again"
        ) from None
