"""Which draft to export: the search's best trial (`best.json`) or a chosen one (`trials.csv`).

Both files are written by `draftnas search` (nas/reports.py documents them):
  best.json   {"trial", "arch" (Candidate.to_dict(): DraftArch fields, decode the chosen shape), "predicted":
              {"tau", "latency_ms", "speedup"}, "decode" (how the shape was chosen),
              "hardware_table", "supernet" (the train run's supernet/ directory),
              "target": {"spec", "fingerprint"}, "space", ...}
  trials.csv  one row per completed trial: `trial`, the DraftArch fields (taps joined by ",",
              an empty draft_vocab_size for the full vocabulary, the shape's label), tau,
              latency_ms, speedup, ...
A chosen trial takes its candidate and predictions from its row and everything that is shared by the
whole search (supernet, target, hardware table, space) from best.json. The exported draft records
its shape as its recommended decoding shape (DraftConfig.decode) and how it was chosen in its
provenance ("decode"). Searches from before shapes were searched have no decode column or key:
their drafts get the default shape.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.candidates import DECODE, Candidate
from nas.export.errors import ExportError
from search_spaces.arch import DIMENSIONS
from search_spaces.errors import SpaceError
from specdec.errors import DraftError
from specdec.shape import DecodeShape

BEST_FILE = "best.json"
TRIALS_FILE = "trials.csv"
BEST_KEYS = ("trial", "arch", "predicted", "hardware_table", "supernet", "target", "space")
PREDICTED = ("tau", "latency_ms", "speedup")


@dataclass
class Selection:
    """One trial of a search and everything export records about where it came from."""

    search_dir: Path
    trial: int
    candidate: Candidate  # the draft and its decoding shape
    predicted: dict[str, float]
    hardware_table: Any
    supernet: Path
    target_spec: str
    target_fingerprint: str
    space: Any
    decode: dict[str, Any]  # how the arch's decoding shape was chosen
    # The search's objective: kind, latency_budget_ms, context (searches before it: none).
    objective: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {"source": "draftnas export", "search": str(self.search_dir), "trial": self.trial,
                "predicted": self.predicted, "decode": self.decode,
                "hardware_table": self.hardware_table,
                "target": {"spec": self.target_spec, "fingerprint": self.target_fingerprint},
                "space": self.space, "supernet": str(self.supernet)}


def select_trial(search_dir: str | Path, trial: int | None = None) -> Selection:
    """The best trial of the search in `search_dir`, or trial number `trial`."""
    search_dir = Path(search_dir)
    best = read_best(search_dir)
    if trial is None or trial == best["trial"]:
        number, candidate = best["trial"], candidate_of(best["arch"], search_dir / BEST_FILE)
        predicted = {key: best["predicted"][key] for key in PREDICTED if key in best["predicted"]}
        decode = best.get("decode") or {"shape": candidate.shape.label, "tau_source": "default"}
    else:
        number = trial
        candidate, predicted = trial_row(search_dir, trial)
        decode = {"shape": candidate.shape.label, "tau": predicted["tau"],
                  "tau_source": "estimated", "predicted_speedup": predicted["speedup"]}
    return Selection(search_dir, int(number), candidate, predicted, best["hardware_table"],
                     Path(best["supernet"]), str(best["target"]["spec"]),
                     str(best["target"]["fingerprint"]), best["space"], decode,
                     best.get("objective") or {})


def read_best(search_dir: Path) -> dict[str, Any]:
    path = search_dir / BEST_FILE
    if not path.is_file():
        raise ExportError(f"{path}: missing; give search=<the run directory of a finished "
                          "`draftnas search`>")
    try:
        best = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); rerun "
                          "the search or restore the file") from None
    missing = [key for key in BEST_KEYS if key not in best] if isinstance(best, dict) else BEST_KEYS
    if missing:
        raise ExportError(f"{path}: lacks key(s) {list(missing)}; rerun the search")
    target = best["target"]
    if not isinstance(target, dict) or not {"spec", "fingerprint"} <= set(target):
        raise ExportError(f"{path}: 'target' must hold 'spec' and 'fingerprint'; rerun the search")
    return best


def candidate_of(data: Any, source: Path) -> Candidate:
    if not isinstance(data, dict):
        raise ExportError(f"{source}: 'arch' is not an object of DraftArch fields; rerun the search")
    try:
        return Candidate.from_dict(data)
    except (SpaceError, DraftError) as error:
        raise ExportError(f"{source}: {error}") from None


def trial_row(search_dir: Path, trial: int) -> tuple[Candidate, dict[str, float]]:
    """The candidate and predictions of trial `trial` from trials.csv."""
    import pandas as pd

    path = search_dir / TRIALS_FILE
    if not path.is_file():
        raise ExportError(f"{path}: missing, so trial={trial} cannot be looked up; leave trial "
                          "unset to export the best trial")
    frame = pd.read_csv(path, dtype={"injected_layers": str})  # "2" must not become 2.0
    # trials.csv of searches from before shapes (or image inputs) were searched
    optional = {DECODE, "image_input"}
    missing = [name for name in ("trial", *DIMENSIONS, *PREDICTED)
               if name not in frame.columns and name not in optional]
    if missing:
        raise ExportError(f"{path}: lacks column(s) {missing}; rerun the search")
    rows = frame[frame["trial"] == trial]
    if rows.empty:
        raise ExportError(f"trial={trial} is not in {path} (its completed trials: "
                          f"{_listing(frame['trial'].tolist())}); pick one of those")
    row = rows.iloc[0].to_dict()
    fields = {name: row[name] for name in (*DIMENSIONS, DECODE) if name in row}
    fields["injected_layers"] = taps_of(fields["injected_layers"])
    if DECODE in fields:
        fields[DECODE] = shape_of(fields[DECODE], path)
    vocab = fields["draft_vocab_size"]
    fields["draft_vocab_size"] = None if _is_missing(vocab) else int(vocab)
    for name in ("num_layers", "num_heads", "intermediate_size"):
        fields[name] = int(fields[name])
    fields["vision_keep_ratio"] = float(fields["vision_keep_ratio"])
    predicted = {key: float(row[key]) for key in PREDICTED}
    return candidate_of(fields, path), predicted


def shape_of(cell: Any, source: Path) -> dict[str, Any]:
    """A decoding shape's label from a CSV cell, as Candidate.from_dict takes it."""
    try:
        return DecodeShape.parse(cell).to_dict()
    except DraftError as error:
        raise ExportError(f"{source}: {error}") from None


def taps_of(cell: Any) -> list[int]:
    """Tap ids from a CSV cell: '2,4' ('' or NaN: none)."""
    if _is_missing(cell):
        return []
    return [int(tap) for tap in str(cell).split(",")]


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _listing(numbers: list[int], shown: int = 10) -> str:
    if not numbers:
        return "none"
    listed = ", ".join(str(number) for number in sorted(numbers)[:shown])
    return listed + (", ..." if len(numbers) > shown else "")
