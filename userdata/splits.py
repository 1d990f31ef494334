"""Train, validation and test splits that never share a record.

Where the data names its splits (an embedded set's train and test, a `datasets` dataset's train,
validation and test), they are used as they are; a split it lacks is drawn from train, and data
without splits (a file, or `data.split=`) is drawn whole. Drawing sorts the records by a seeded
hash of their digest and takes the first `round(fraction x rows)` (at least one) as validation,
the next as test, the rest as train: the same data and seed always give the same splits, in a
random order whose every prefix is a fair sample. Exact duplicates in one pool are dropped, and a
record of a named held-out split that is also in train (or validation) is dropped from it: the
three splits are disjoint by record digest, which `disjoint` checks.
"""

import hashlib
from dataclasses import dataclass

from userdata.config import DataConfig
from userdata.errors import DataError
from userdata.records import Record

SPLITS = ("train", "validation", "test")
# Names data sets give their splits.
NAMED = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"),
         "test": ("test",)}


@dataclass
class Splits:
    records: dict[str, list[Record]]  # SPLITS -> records, in the order commands take them
    duplicates_dropped: int = 0
    overlaps_dropped: int = 0


def split_records(pools: dict[str | None, list[Record]], cfg: DataConfig, label: str) -> Splits:
    """The three splits of a source's pools (split name -> records; None: no named splits)."""
    if cfg.split is not None:
        if cfg.split not in pools:
            raise DataError(f"data.split: {label} has no split '{cfg.split}'; use one of "
                            f"{', '.join(str(name) for name in pools)} (or null)")
        pools = {None: pools[cfg.split]}
    named = {split: next((pools[name] for name in NAMED[split] if name in pools), None)
             for split in SPLITS}
    whole = named["train"] is None  # no named splits: every split is drawn
    if whole:
        if len(pools) != 1:
            raise DataError(f"data.split: {label} has the splits {', '.join(map(str, pools))} "
                            "but no train split; name the one to draw every split from with "
                            "data.split=")
        named = {"train": next(iter(pools.values())), "validation": None, "test": None}
    duplicates = 0
    for split, records in named.items():
        if records is not None:
            named[split], dropped = without_duplicates(records)
            duplicates += dropped
    missing = [split for split in ("validation", "test") if named[split] is None]
    if missing:
        fractions = {"validation": cfg.validation, "test": cfg.test}
        *held_out, rest = draw(named["train"], [fractions[split] for split in missing], cfg.seed,
                               label)
        named.update(zip(missing, held_out, strict=True))
        # A named train split keeps its own order; a drawn one is in the drawing's.
        named["train"] = rest if whole else keep_order(named["train"], rest)
    splits, overlaps = without_overlaps(named)
    result = Splits(splits, duplicates, overlaps)
    disjoint(result)
    for split in SPLITS:
        if not splits[split]:
            raise DataError(f"data: the {split} split of {label} is empty; give more rows, or a "
                            f"larger data.{split} fraction" if split != "train" else
                            f"data: the train split of {label} is empty; give more rows")
    return result


def without_duplicates(records: list[Record]) -> tuple[list[Record], int]:
    seen: set[str] = set()
    kept = [record for record in records
            if not (record.digest in seen or seen.add(record.digest))]
    return kept, len(records) - len(kept)


def draw(records: list[Record], fractions: list[float], seed: int,
         label: str) -> list[list[Record]]:
    """The held-out parts (one per fraction, at least one record each) and the rest, last."""
    for fraction in fractions:
        if not 0 < fraction < 1:
            raise DataError(f"data.validation / data.test: {fraction}; use a fraction in (0, 1)")
    shuffled = sorted(records, key=lambda record: rank(record, seed))
    sizes = [max(1, round(fraction * len(records))) for fraction in fractions]
    if sum(sizes) >= len(records):
        raise DataError(f"data: {label} has {len(records)} usable rows, too few to hold out "
                        f"{' + '.join(map(str, sizes))} and train on the rest; give more rows")
    parts, start = [], 0
    for size in sizes:
        parts.append(shuffled[start:start + size])
        start += size
    return [*parts, shuffled[start:]]


def rank(record: Record, seed: int) -> str:
    return hashlib.sha256(f"{seed}|{record.digest}".encode()).hexdigest()


def keep_order(named: list[Record], kept: list[Record]) -> list[Record]:
    """`kept`, a part of a named split, in that split's own order."""
    digests = {record.digest for record in kept}
    return [record for record in named if record.digest in digests]


def without_overlaps(named: dict[str, list[Record]]) -> tuple[dict[str, list[Record]], int]:
    """Each held-out split without the records an earlier split holds (a data set's own splits
    may share rows)."""
    seen: set[str] = set()
    splits, dropped = {}, 0
    for split in SPLITS:
        splits[split] = [record for record in named[split] if record.digest not in seen]
        dropped += len(named[split]) - len(splits[split])
        seen |= {record.digest for record in splits[split]}
    return splits, dropped


def disjoint(splits: Splits) -> None:
    """No record digest in two splits (what every command relies on; a bug if it fails)."""
    owners: dict[str, str] = {}
    for split, records in splits.records.items():
        for record in records:
            other = owners.setdefault(record.digest, split)
            if other != split:
                raise AssertionError(f"record {record.row} of {split} is also in {other}")
