"""Hugging Face `datasets` as rows: a directory written by `save_to_disk`, or a dataset id resolved
from the local cache (draftnas runs offline: HF_HUB_OFFLINE=1). Image columns are read as their
encoded bytes (decoded only for the rows a command uses)."""

from pathlib import Path
from typing import Any

from userdata.errors import DataError

SAVED_MARKERS = ("dataset_dict.json", "state.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in SAVED_MARKERS)


def saved_dataset_rows(path: Path) -> dict[str | None, list[dict[str, Any]]]:
    """Split name -> rows of a `save_to_disk` directory (None: a dataset without splits)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError, FileNotFoundError) as error:
        raise DataError(f"{path}: cannot be read as a saved `datasets` dataset ({first(error)}); "
                        "write it with Dataset.save_to_disk") from None
    return rows_by_split(loaded)


def hub_dataset_rows(dataset_id: str) -> dict[str | None, list[dict[str, Any]]]:
    """Split name -> rows of a dataset in the local Hugging Face cache."""
    import datasets

    try:
        loaded = datasets.load_dataset(dataset_id)
    except (OSError, ValueError) as error:  # offline and not cached: a ConnectionError
        raise DataError(f"data: '{dataset_id}' is not a file, a saved dataset or a dataset in the "
                        f"local Hugging Face cache ({first(error)}); download it once with "
                        "network (datasets.load_dataset) or give a local file") from None
    return rows_by_split(loaded)


def rows_by_split(loaded: Any) -> dict[str | None, list[dict[str, Any]]]:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return {name: encoded_rows(split) for name, split in loaded.items()}
    return {None: encoded_rows(loaded)}


def encoded_rows(dataset: Any) -> list[dict[str, Any]]:
    """The rows, with images as {bytes, path} (not decoded: most rows are never used)."""
    import datasets

    undecoded = {}
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            undecoded[name] = datasets.Image(decode=False)
        elif isinstance(feature, datasets.List) and isinstance(feature.feature, datasets.Image):
            undecoded[name] = datasets.List(datasets.Image(decode=False))
    if undecoded:
        dataset = dataset.cast(datasets.Features({**dataset.features, **undecoded}))
    return dataset.to_list()


def first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
