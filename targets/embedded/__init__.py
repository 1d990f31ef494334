"""The embedded targets: built on first use, deterministic, cached under `draftnas_home()`.

Each module exposes `ensure_built(home: Path) -> Path`, returning a directory that `load_target`
reads like any local model directory (config, safetensors, tokenizer or processor).

A spec names an embedded target and, for one with several builds, which: `shapes:smoke`,
`shapes:test`, `shapes:full`; plain `shapes` is the build `$DRAFTNAS_SHAPES_BUDGET` names, else
the full one. Results record the spec with its build, so a file says which model it used.
"""

from pathlib import Path

from targets.errors import TargetError
from targets.home import draftnas_home

EMBEDDED_TARGETS = ("shapes", "smollm2")
BUILT_IN_SEVERAL_WAYS = ("shapes",)


def split_spec(spec: str) -> tuple[str, str | None]:
    """('shapes', 'smoke') for `shapes:smoke`; (spec, None) for a spec without a build."""
    name, colon, build = spec.partition(":")
    if colon and name in EMBEDDED_TARGETS:
        return name, build
    return spec, None


def is_embedded(spec: str) -> bool:
    return split_spec(spec)[0] in EMBEDDED_TARGETS


def embedded_path(spec: str, home: Path | None = None) -> Path:
    """Build (once) and return the directory of the embedded target `spec` (a name, with a
    build where it has several)."""
    home = home or draftnas_home()
    name, build = split_spec(spec)
    if build is not None and name not in BUILT_IN_SEVERAL_WAYS:
        raise TargetError(f"target {spec!r}: {name} has one build; use target={name}")
    if name == "shapes":
        from targets.embedded.shapes import ensure_built

        return ensure_built(home, build)
    if name == "smollm2":
        from targets.embedded.smollm2 import ensure_built

        return ensure_built(home)
    raise KeyError(spec)
