"""Profile a target and a search space on this device into a latency table, resumably.

Every part a space needs (`parts.required_keys`) is timed once with the decoder's real calls
(`benches`); the table is saved atomically every `save_every_s` seconds and at the end, so an
interrupted run resumes where it stopped: entries already in the file are skipped.
"""

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from hardware_profiles.benches import PartBenches
from hardware_profiles.device import current_device
from hardware_profiles.parts import (
    TARGET_PARTS,
    DecodeShape,
    ProfileGrid,
    parse_key,
    required_keys,
)
from hardware_profiles.table import LatencyTable, TableError, load_table
from hardware_profiles.timing import TimingConfig, pinned_threads, time_call
from search_spaces import ResolvedSpace
from targets import Target


@dataclass
class ProfileSettings:
    decode: DecodeShape
    timing: TimingConfig = field(default_factory=TimingConfig)
    threads: int = 1
    contexts: tuple[int, ...] = (64, 128, 256, 512, 1024)
    save_every_s: float = 10.0
    progress: bool = True


@dataclass
class ProfileReport:
    table: LatencyTable
    path: Path
    measured: int
    skipped: int
    seconds: float


def image_tokens_of(target: Target) -> int:
    """Image positions one image takes in the prompt (LLaVA-style configs say it); 0 otherwise."""
    if not target.is_vlm:
        return 0
    return int(getattr(target.model.config, "image_seq_length", 0) or 0)


def plan_grid(target: Target, decode: DecodeShape, contexts: tuple[int, ...]) -> ProfileGrid:
    """Contexts that fit the target (a verified tree on top included), query counts up to the tree.

    Target queries: powers of two and the verified tree's size; draft queries: one slot (an
    accepted-nothing advance), the tree's frontier top_k, and accepted paths up to depth + 1.
    """
    limit = target.max_positions - decode.total_tokens - decode.depth * decode.top_k
    if limit < 1:
        raise TableError(f"target context {target.max_positions} cannot hold a tree of "
                         f"{decode.total_tokens} tokens; lower decode.total_tokens")
    fitting = sorted({min(c, limit) for c in contexts if c >= 1})
    if not fitting:
        raise TableError("hardware.contexts is empty; list context lengths such as [64, 256]")
    powers = [2 ** i for i in range(12) if 2 ** i < decode.total_tokens]
    target_queries = tuple(sorted({*powers, decode.total_tokens}))
    draft_queries = tuple(sorted({1, 2, 4, decode.top_k, decode.depth + 1}))
    return ProfileGrid(tuple(fitting), target_queries, draft_queries)


def new_table(target: Target, space: ResolvedSpace, settings: ProfileSettings) -> LatencyTable:
    device = current_device(target.device, target.dtype, settings.threads)
    facts = {"spec": target.spec, "fingerprint": target.fingerprint,
             "hidden_size": target.hidden_size, "num_layers": target.num_layers,
             "num_heads": target.num_heads, "vocab_size": target.vocab_size,
             "image_tokens": image_tokens_of(target)}
    grid = plan_grid(target, settings.decode, settings.contexts)
    return LatencyTable(device, facts, space.to_dict(), settings.decode, grid, settings.timing)


def resume_or_start(path: Path, fresh: LatencyTable) -> LatencyTable:
    """The table at `path` when it was started with the same device, target, space, decode shape,
    grid and timing; else refuse (one line) rather than mix timings."""
    if not path.exists():
        return fresh
    old = load_table(path)
    old.check_target(fresh.target["fingerprint"], repr(fresh.target["spec"]))
    mismatches = [name for name in ("device", "space", "decode", "grid", "timing")
                  if asdict_or_self(getattr(old, name)) != asdict_or_self(getattr(fresh, name))]
    if mismatches:
        raise TableError(f"{path}: exists with another {mismatches[0]} than this profile; "
                         "choose another hardware.name (or output=), or fresh=true to remake it")
    return old


def asdict_or_self(value: object) -> object:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value


@torch.inference_mode()
def profile(target: Target, space: ResolvedSpace, path: str | Path,
            settings: ProfileSettings, fresh: bool = False) -> ProfileReport:
    path = Path(path)
    started = time.perf_counter()
    with pinned_threads(settings.threads):
        table = new_table(target, space, settings)
        if not fresh:
            table = resume_or_start(path, table)
        keys = required_keys(space, table.grid, table.target["image_tokens"])
        todo = [key for key in keys if key not in table.entries]
        benches = PartBenches(target, table.decode, table.target["image_tokens"])
        last_save = time.perf_counter()
        table.complete = False
        for key in tqdm(todo, desc=f"profile {path.stem}", unit="part",
                        disable=not settings.progress):
            benches.release(parse_key(key)[1].get("ctx"))
            call, reset = benches.prepare(key)
            timing = settings.timing
            if parse_key(key)[0] in TARGET_PARTS:
                timing = replace(timing, flush_mb=0)
            table.entries[key] = time_call(call, timing, target.device, reset)
            if time.perf_counter() - last_save > settings.save_every_s:
                table.save(path)
                last_save = time.perf_counter()
        table.complete = True
        table.save(path)
    return ProfileReport(table, path, len(todo), len(keys) - len(todo),
                         time.perf_counter() - started)
