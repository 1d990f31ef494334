"""Where latency tables live, what they are called, and how the table for a target and a device is
found: the one place `profile`, `search` and `pipeline` ask.

- Shipped tables, `hardware_profiles/tables/`: data of the package, read only (in an installed
  draftnas they sit in site-packages).
- The user's tables: one directory, `$DRAFTNAS_HOME/tables` unless a run names another
  (`draftnas pipeline tables_dir=`). `draftnas profile` writes there, and it is searched first.

A table made without a name is called `<device kind>-<target>-<fingerprint[:8]>.json`, so tables of
two builds of a target never overwrite each other; one measured with quicker settings than a full
profile carries a tag, `...-<fingerprint[:8]>-<tag>.json`, and serves only runs that ask for that
tag. A table matches a target and a device when it is complete, was measured for the target's
fingerprint, and on a device of the same kind, name (CPU model, GPU), dtype and runtime
(targets.runtime); the threads and torch version may differ (they shift latencies a little, the
ranking of drafts hardly).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.table import TableError, load_table

SHIPPED_DIR = Path(__file__).resolve().parent / "tables"


@dataclass(frozen=True)
class TableStore:
    directory: Path  # the user's tables
    shipped: Path = SHIPPED_DIR

    def path_for(self, spec: str, fingerprint: str, kind: str, tag: str | None = None,
                 name: str | None = None) -> Path:
        """Where a profile of target `spec` on a device of `kind` goes: `name`, else named by
        the target (with `tag` for a quick one)."""
        name = name or f"{kind}-{file_name(spec)}-{fingerprint[:8]}" + (f"-{tag}" if tag else "")
        return self.directory / f"{name}.json"

    def named(self, name: str) -> Path:
        """`hardware.table` or `hardware.name`: a table name, looked up among the user's tables
        and then the shipped ones; or a path (it ends in .json or holds a directory)."""
        if name.endswith(".json") or os.sep in name:
            return Path(name)
        for directory in (self.directory, self.shipped):
            if (directory / f"{name}.json").is_file():
                return directory / f"{name}.json"
        raise TableError(f"hardware.table: no table named {name!r} in {self.directory} or "
                         f"{self.shipped}; give a table path, or profile it (draftnas profile "
                         f"hardware.name={name})")

    def find(self, fingerprint: str, device: DeviceFingerprint,
             tag: str | None = None) -> Path | None:
        """A complete table of the target with `fingerprint` measured on `device`: a full one
        (the user's first, then a shipped one), else one tagged `tag`."""
        candidates = [path for directory in (self.directory, self.shipped)
                      for path in sorted(directory.glob("*.json"))
                      if tag_of(path, fingerprint) is None]
        if tag:
            candidates += [path for path in sorted(self.directory.glob("*.json"))
                           if tag_of(path, fingerprint) == tag]
        return next((path for path in candidates if measured_on(path, fingerprint, device)), None)


def measured_on(path: Path, fingerprint: str, device: DeviceFingerprint,
                complete: bool = True) -> bool:
    """Whether the table at `path` holds timings of this target on this device (a complete
    table, unless `complete` is False: a partial one that a profile resumes)."""
    try:
        table = load_table(path)
    except TableError:
        return False  # a broken or foreign file is no match; profiling makes a good one
    theirs = table.device
    return ((table.complete or not complete) and table.target.get("fingerprint") == fingerprint
            and (theirs.kind, theirs.name, theirs.dtype, theirs.runtime)
            == (device.kind, device.name, device.dtype, device.runtime))


def tag_of(path: Path, fingerprint: str) -> str | None:
    """The tag of a table named `...-<fingerprint[:8]>-<tag>.json`; None for any other name."""
    _, found, tag = path.stem.rpartition(f"-{fingerprint[:8]}-")
    return tag if found and tag else None


def file_name(spec: str) -> str:
    """A target spec as part of a file name: a directory's or hub id's last part, `:` and any
    other character a file name should not hold as `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec).name or spec)
