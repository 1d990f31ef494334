"""`UserData`: the data a command reads its prompts from, split, prepared for a target, and the
report of what it used (the `data` of a command's result).

`UserData(cfg, target_spec)` reads the source `cfg.source` names (or the embedded target's own
set), checks every row and splits them (userdata.splits); `take(target, split, count, room)` gives
the first `count` usable records of a split as the target's inputs. A bad row stops the command
with a DataError naming the source, the row and the field; with `data.on_error=skip` it is left
out, and `report()` counts and lists it. Nothing is cached by this package: a command prepares all
its prompts before it writes any cache, so bad data leaves no half-written one.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets import PreparedInputs
from targets.embedded import is_embedded, split_spec
from userdata.config import ON_ERROR, RESPONSES, DataConfig
from userdata.embedded import EMBEDDED_SETS, embedded_pools
from userdata.errors import DataError
from userdata.files import FORMATS, is_data_file, read_rows
from userdata.hf import hub_dataset_rows, is_saved_dataset, saved_dataset_rows
from userdata.prepare import prepare_record
from userdata.records import Columns, Record, RowProblem, record_of
from userdata.splits import split_records


@dataclass
class Prepared:
    inputs: list[PreparedInputs]
    # The given answers' token ids (train split, data.responses=given); None: the target answers.
    responses: list[list[int]] | None


class UserData:
    def __init__(self, cfg: DataConfig, target_spec: str) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.source = source_of(cfg, target_spec)
        self.skipped: dict[tuple[str | None, int], dict[str, Any]] = {}
        if self.source in EMBEDDED_SETS:
            self.label = self.name = self.source
            pools = embedded_pools(self.source)
        else:
            self.label, self.name, rows, base = read_source(self.source)
            pools = {split: self.records(split, split_rows, Columns.of(cfg, base))
                     for split, split_rows in rows.items()}
        self.splits = split_records(pools, cfg, self.label)
        self.used: dict[str, list[Record]] = {}

    def records(self, split: str | None, rows: list[dict[str, Any]],
                columns: Columns) -> list[Record]:
        records = []
        for index, row in enumerate(rows):
            try:
                records.append(record_of(row, index, split, columns))
            except RowProblem as problem:
                self.reject(split, index, problem)
        return records

    def take(self, target: Any, split: str, count: int, room: int = 0) -> Prepared:
        """The first `count` usable records of `split` (fewer if it has fewer, said once) as
        `target`'s inputs, each leaving `room` tokens of context for its answer."""
        given = self.cfg.responses == "given" and split == "train"
        inputs, answers, records = [], [], []
        for record in self.splits.records[split]:
            if len(records) == count:
                break
            try:
                prepared, answer = prepare_record(target, record, room, given)
            except RowProblem as problem:
                self.reject(record.source_split, record.row, problem)
                continue
            inputs.append(prepared)
            answers.append(answer)
            records.append(record)
        if not records:
            raise DataError(f"data: the {split} split of {self.label} has no usable row; fix its "
                            "rows or give other data")
        if len(records) < count and len(self.used.get(split, ())) < len(records):
            print(f"data: the {split} split of {self.label} has {len(records)} usable rows, "
                  f"fewer than the {count} asked for; using them all")
        if len(records) > len(self.used.get(split, ())):
            self.used[split] = records
        return Prepared(inputs, answers if given else None)

    def reject(self, source_split: str | None, row: int, problem: RowProblem) -> None:
        where = self.label if source_split is None else f"{self.label} [{source_split}]"
        if self.cfg.on_error == "fail":
            raise DataError(f"{where}: row {row}, {problem}; fix the row, or leave bad rows out "
                            "with data.on_error=skip")
        self.skipped[(source_split, row)] = {"from": source_split, "row": row,
                                             "field": problem.field, "problem": problem.problem}

    def report(self) -> dict[str, Any]:
        """What a command's result records: the source, which rows each split it used holds
        (row indices in the split of the source they come from), what was left out."""
        skipped = list(self.skipped.values())
        if skipped:
            print(f"data: left out {len(skipped)} bad row(s) of {self.label} "
                  "(data.on_error=skip; listed in result.json)")
        return {
            "source": self.label, "responses": self.cfg.responses,
            "splits": {split: {"from": records[0].source_split,
                               "rows": [record.row for record in records]}
                       for split, records in self.used.items()},
            "skipped_rows": len(skipped), "skipped": skipped,
            "duplicates_dropped": self.splits.duplicates_dropped,
            "overlaps_dropped": self.splits.overlaps_dropped,
        }


def check_config(cfg: DataConfig) -> None:
    if cfg.responses not in RESPONSES:
        raise DataError(f"data.responses: '{cfg.responses}'; use one of {', '.join(RESPONSES)}")
    if cfg.on_error not in ON_ERROR:
        raise DataError(f"data.on_error: '{cfg.on_error}'; use one of {', '.join(ON_ERROR)}")


def source_of(cfg: DataConfig, target_spec: str) -> str:
    """The source `cfg` names, else the embedded target's own set."""
    if cfg.source:
        return cfg.source
    if is_embedded(target_spec):
        return split_spec(target_spec)[0]
    raise DataError(f"data: target '{target_spec}' has no prompt set of its own; give data=<your "
                    "prompts: a .jsonl, .json, .csv or .parquet file, a saved `datasets` "
                    "directory or a dataset id> (or data=shapes / data=smollm2, the embedded sets)")


def read_source(source: str) -> tuple[str, str, dict[str | None, list[dict[str, Any]]], Path]:
    """(label, short name, split name -> rows, the folder image paths start in) of a file, a
    saved dataset or a dataset id."""
    path = Path(source).expanduser()
    if path.is_file() and is_data_file(path):
        return str(path.resolve()), path.name, {None: read_rows(path)}, path.parent
    if is_saved_dataset(path):
        return str(path.resolve()), path.name, saved_dataset_rows(path), path
    if path.exists() or path.suffix.lower() in FORMATS:
        what = "does not exist" if not path.exists() else "is neither a data file nor a saved " \
            "`datasets` directory"
        raise DataError(f"data: '{source}' {what}; give a {', '.join(FORMATS)} file, a "
                        "save_to_disk directory or a dataset id")
    return source, source, hub_dataset_rows(source), Path.cwd()
