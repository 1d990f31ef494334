"""The embedded targets: built on first use, deterministic, cached under `draftnas_home()`.

Each module exposes `ensure_built(home: Path) -> Path`, returning a directory that `load_target`
reads like any local model directory (config, safetensors, tokenizer or processor).
"""

from pathlib import Path

from targets.home import draftnas_home

EMBEDDED_TARGETS = ("shapes", "smollm2")


def embedded_path(name: str, home: Path | None = None) -> Path:
    """Build (once) and return the directory of the embedded target `name`."""
    home = home or draftnas_home()
    if name == "shapes":
        from targets.embedded.shapes import ensure_built
    elif name == "smollm2":
        from targets.embedded.smollm2 import ensure_built
    else:
        raise KeyError(name)
    return ensure_built(home)
