"""The user's data files as rows (dicts of column -> value): JSON Lines, JSON, CSV or Parquet,
told apart by extension. A file that is not what its extension says, or a JSONL line that is not
a JSON object, is a DataError naming the file (and the row)."""

import json
from pathlib import Path
from typing import Any

from userdata.errors import DataError

FORMATS = {".jsonl": "JSON Lines", ".json": "JSON", ".csv": "CSV", ".parquet": "Parquet"}


def is_data_file(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


def read_rows(path: Path) -> list[dict[str, Any]]:
    kind = FORMATS[path.suffix.lower()]
    try:
        if kind == "JSON Lines":
            return jsonl_rows(path)
        if kind == "JSON":
            return json_rows(path)
        import pandas as pd

        frame = pd.read_csv(path) if kind == "CSV" else pd.read_parquet(path)
        return frame.to_dict(orient="records")
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, ImportError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        raise DataError(f"{path}: not a {kind} file ({reason}); give a file whose extension says "
                        f"its format ({', '.join(FORMATS)})") from None


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise DataError(f"{path}: row {len(rows)} (line {number + 1}): not JSON ({error}); "
                                "write one JSON object per line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {len(rows)} (line {number + 1}): a "
                                f"{type(row).__name__}, not a JSON object; write one object per "
                                "line") from None
            rows.append(row)
    return rows


def json_rows(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise DataError(f"{path}: a JSON {type(data).__name__}, not a list of rows; write a JSON "
                        "list of objects (or one object per line in a .jsonl file)")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {index}: a {type(row).__name__}, not a JSON object; "
                            "write a list of objects")
    return data
