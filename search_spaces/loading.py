"""`load_space(name_or_path)`: a named space shipped in `search_spaces/spaces/`, or a YAML file."""

from pathlib import Path

import yaml

from search_spaces.errors import SpaceError
from search_spaces.schema import SearchSpace

SPACES_DIR = Path(__file__).parent / "spaces"


def available_spaces() -> list[str]:
    return sorted(path.stem for path in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    named = SPACES_DIR / f"{name_or_path}.yaml"
    path = named if isinstance(name_or_path, str) and named.is_file() else Path(name_or_path)
    if not path.is_file():
        raise SpaceError(
            f"search space {str(name_or_path)!r} is neither a named space "
            f"({', '.join(available_spaces())}) nor a YAML file; use one of those names or a path"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", -1) + 1
        raise SpaceError(f"{path}: is not valid YAML (line {line}); fix its syntax") from error
    try:
        return SearchSpace.from_dict(data, default_name=path.stem)
    except SpaceError as error:
        raise SpaceError(f"{path}: {error}") from error
