"""The versioned latency-table file: device, target, space, grid and timed entries.

    {"format": "draftnas-latency-table", "version": 4, "complete": true,
     "device": {kind, name, threads, torch_version, dtype, runtime},
     "target": {spec, fingerprint, hidden_size, num_layers, num_heads, vocab_size, image_tokens},
     "space": ResolvedSpace.to_dict() of the profiled space (its decoding shapes included),
     "grid": {contexts, causal_queries, tree_queries, draft_queries},
     "timing": {warmup, repeats, ...},
     "entries": {"<part key>": {"ms": median, "spread": interquartile range, "repeats": n}},
     "memory": {weight_bytes, read_gbs, limit_tokens_per_s} or null while profiling}

Version 4 records the target's runtime (targets.runtime) in the device, the target's forward
from one new token up (`verification_curve`: T(q) / T(1), what speculative decoding's
verification costs), and the memory facts (hardware_profiles.memory). Version 3 times T_target(1) as whole plain decoding steps (`plain` entries; version 2 summed a
one-token target forward and its step overhead). Version 2 made one table serve every decoding
shape of its space (version 1 timed one shape). Older versions are refused with the command that
remakes them.
`complete` is false while the profiler is still adding entries (it saves atomically as it goes,
so an interrupted run resumes from the file). Part keys are described in `hardware_profiles.parts`.
Every problem with a file raises `TableError` with one line that names the file, the bad entry and
the fix; a table measured on another device loads with a warning.
"""

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardware_profiles.device import DeviceFingerprint
from hardware_profiles.memory import MemoryFacts
from hardware_profiles.parts import ProfileGrid, parse_key
from hardware_profiles.timing import Timing, TimingConfig

FORMAT = "draftnas-latency-table"
VERSION = 4
TARGET_KEYS = ("spec", "fingerprint", "hidden_size", "num_layers", "num_heads", "vocab_size",
               "image_tokens")


class TableError(ValueError):
    """A latency table that cannot be used: malformed, for another target, or lacking a value."""


class DeviceMismatchWarning(UserWarning):
    """The table was measured on another device: its latencies may not hold here."""


@dataclass
class LatencyTable:
    device: DeviceFingerprint
    target: dict[str, Any]
    space: dict[str, Any]
    grid: ProfileGrid
    timing: TimingConfig
    entries: dict[str, Timing] = field(default_factory=dict)
    complete: bool = False
    memory: MemoryFacts | None = None
    source: str = "<memory>"  # the file it came from, for messages

    def verification_curve(self) -> dict[int, dict[int, float]]:
        """{ctx: {q: T(q) / T(1)}}: the target's causal forward over q new tokens against one,
        at each profiled context (what verifying a chain of q - 1 draft tokens costs in plain
        steps' forwards)."""
        curve: dict[int, dict[int, float]] = {}
        for key, timing in self.entries.items():
            part, fields = parse_key(key)
            if part == "target" and fields["tree"] == 0:
                curve.setdefault(fields["ctx"], {})[fields["q"]] = timing.ms
        return {ctx: {q: ms / row[1] for q, ms in sorted(row.items())}
                for ctx, row in sorted(curve.items()) if 1 in row}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "complete": self.complete,
            "device": self.device.to_dict(), "target": self.target, "space": self.space,
            "grid": {name: list(values) for name, values in asdict(self.grid).items()},
            "timing": asdict(self.timing),
            "entries": {key: {"ms": round(t.ms, 5), "spread": round(t.spread, 5),
                              "repeats": t.repeats} for key, t in sorted(self.entries.items())},
            "memory": None if self.memory is None else self.memory.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically: a reader (or a resumed profile) never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(partial, path)
        return path

    def check_target(self, fingerprint: str, spec: str = "this target") -> None:
        if self.target["fingerprint"] != fingerprint:
            raise TableError(
                f"{self.source}: measured for target {self.target['spec']!r} "
                f"({self.target['fingerprint'][:12]}), not {spec} ({fingerprint[:12]}); "
                "profile this target (draftnas profile) or pick its table"
            )

    def warn_if_other_device(self, current: DeviceFingerprint) -> None:
        differences = self.device.differences(current)
        if differences:
            warnings.warn(f"{self.source}: measured on another device ({'; '.join(differences)}); "
                          "its latencies may not hold here: profile this machine",
                          DeviceMismatchWarning, stacklevel=2)


def load_table(path: str | Path, target_fingerprint: str | None = None,
               device: DeviceFingerprint | None = None) -> LatencyTable:
    """Read and check a table; with `target_fingerprint`, refuse a table of another target; with
    `device`, warn when the table was measured elsewhere."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such latency table; run `draftnas profile` to make it")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TableError(f"{path}: not JSON ({error}); delete it and profile again") from None
    table = table_from_dict(data, str(path))
    if target_fingerprint is not None:
        table.check_target(target_fingerprint)
    if device is not None:
        table.warn_if_other_device(device)
    return table


def table_from_dict(data: Any, source: str) -> LatencyTable:
    def bad(what: str) -> TableError:
        return TableError(f"{source}: {what}; profile again (draftnas profile) or fix the file")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"not a latency table (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise TableError(f"{source}: version {data.get('version')!r}, this draftnas reads version "
                         f"{VERSION} (with the target's runtime and verification curve); remake "
                         "it with `draftnas profile ... fresh=true`")
    expected = {"format", "version", "complete", "device", "target", "space", "grid", "timing",
                "entries", "memory"}
    if set(data) != expected:
        extra, missing = sorted(set(data) - expected), sorted(expected - set(data))
        raise bad(f"unknown key {extra[0]!r}" if extra else f"missing key {missing[0]!r}")
    device = build(DeviceFingerprint, data["device"], "device", bad)
    grid = build(ProfileGrid, data["grid"], "grid", bad)
    grid = ProfileGrid(*(tuple(values) for values in asdict(grid).values()))
    if not all(isinstance(v, int) and v > 0 for values in asdict(grid).values() for v in values):
        raise bad("grid values must be positive integers")
    timing = build(TimingConfig, data["timing"], "timing", bad)
    target = data["target"]
    if not isinstance(target, dict) or set(target) != set(TARGET_KEYS):
        raise bad(f"target must have exactly the keys {', '.join(TARGET_KEYS)}")
    if not isinstance(data["space"], dict) or "name" not in data["space"]:
        raise bad("space must be the profiled space's to_dict()")
    if not isinstance(data["entries"], dict):
        raise bad("entries must be an object of part key -> timing")
    entries = {key: parse_entry(key, value, bad) for key, value in data["entries"].items()}
    memory = None
    if data["memory"] is not None:
        facts = data["memory"]
        numbers = [facts.get(name) for name in ("weight_bytes", "read_gbs")] \
            if isinstance(facts, dict) else []
        if not numbers or not all(isinstance(n, int | float) and n > 0 for n in numbers):
            raise bad("memory must be an object with keys weight_bytes and read_gbs (positive "
                      "numbers), or null")
        memory = MemoryFacts(int(numbers[0]), float(numbers[1]))
    return LatencyTable(device, target, data["space"], grid, timing, entries,
                        bool(data["complete"]), memory, source)


def build(cls: type, value: Any, name: str, bad) -> Any:
    try:
        return cls(**value)
    except (TypeError, ValueError) as error:
        keys = ", ".join(cls.__dataclass_fields__)
        raise bad(f"{name} must be an object with keys {keys} ({error})") from None


def parse_entry(key: str, value: Any, bad) -> Timing:
    try:
        parse_key(key)
    except ValueError as error:
        raise bad(f"entry {key!r}: {error}") from None
    if not isinstance(value, dict) or set(value) != {"ms", "spread", "repeats"}:
        raise bad(f"entry {key!r} must be {{\"ms\", \"spread\", \"repeats\"}}")
    numbers = [value["ms"], value["spread"]]
    if not all(isinstance(n, int | float) and math.isfinite(n) and n >= 0 for n in numbers) or \
            not value["ms"] > 0:
        raise bad(f"entry {key!r} has ms={value['ms']!r}, spread={value['spread']!r}: "
                  "use finite non-negative milliseconds (ms > 0)")
    if not isinstance(value["repeats"], int) or value["repeats"] < 1:
        raise bad(f"entry {key!r} has repeats={value['repeats']!r}: use a positive integer")
    return Timing(float(value["ms"]), float(value["spread"]), value["repeats"])
