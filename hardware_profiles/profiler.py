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
from hardware_profiles.parts import TARGET_PARTS, ProfileGrid, parse_key, required_keys
from hardware_profiles.table import LatencyTable, TableError, load_table
from hardware_profiles.timing import TimingConfig, pinned_threads, time_call
from search_spaces import DecodeShape, ResolvedSpace
from targets import Target


@dataclass
class ProfileSettings:
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


def plan_grid(target: Target, shapes: tuple[DecodeShape, ...],
              contexts: tuple[int, ...]) -> ProfileGrid:
    """Contexts that fit the target (the largest tree on top included), and the query counts of
    every shape.

    Target queries: each shape's verified tokens (causal for chains and plain decoding, masked
    for trees), and powers of two in between so that a shape given by hand (decode, bench) is
    interpolated; draft queries: every count up to the deepest accepted path (depth + 1: the
    advance over tau slots) and each tree's frontier top_k.
    """
    limit = target.max_positions - max(s.total_tokens + s.depth * s.top_k for s in shapes)
    if limit < 1:
        raise TableError(f"target context {target.max_positions} cannot hold the space's largest "
                         "tree; drop its largest decode shapes")
    fitting = sorted({min(c, limit) for c in contexts if c >= 1})
    if not fitting:
        raise TableError("hardware.contexts is empty; list context lengths such as [64, 256]")

    def with_powers(sizes: set[int], low: int) -> tuple[int, ...]:
        powers = {2 ** i for i in range(12) if low <= 2 ** i < max(sizes, default=0)}
        return tuple(sorted(sizes | powers))

    causal = with_powers({1} | {s.total_tokens for s in shapes if s.is_chain}, 1)
    tree = with_powers({s.total_tokens for s in shapes if not s.is_chain}, 2)
    deepest = max(s.depth for s in shapes) + 1
    draft = tuple(sorted({*range(1, deepest + 1), *(s.top_k for s in shapes)}))
    return ProfileGrid(tuple(fitting), causal, tree, draft)


def new_table(target: Target, space: ResolvedSpace, settings: ProfileSettings) -> LatencyTable:
    device = current_device(target.device, target.dtype, settings.threads)
    facts = {"spec": target.spec, "fingerprint": target.fingerprint,
             "hidden_size": target.hidden_size, "num_layers": target.num_layers,
             "num_heads": target.num_heads, "vocab_size": target.vocab_size,
             "image_tokens": image_tokens_of(target)}
    grid = plan_grid(target, space.decode_shapes, settings.contexts)
    return LatencyTable(device, facts, space.to_dict(), grid, settings.timing)


def resume_or_start(path: Path, fresh: LatencyTable) -> LatencyTable:
    """The table at `path` when it was started with the same device, target, space (decoding
    shapes included), grid and timing; else refuse (one line) rather than mix timings."""
    if not path.exists():
        return fresh
    old = load_table(path)
    old.check_target(fresh.target["fingerprint"], repr(fresh.target["spec"]))
    mismatches = [name for name in ("device", "space", "grid", "timing")
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
        benches = PartBenches(target, table.target["image_tokens"])
        last_save = time.perf_counter()
        table.complete = False
        for key in tqdm(todo, desc=f"profile {path.stem}", unit="part",
                        disable=not settings.progress):
            benches.release(parse_key(key)[1].get("ctx"))
            call, reset = benches.prepare(key)
            timing = settings.timing
            part, fields = parse_key(key)
            if part == "target":
                # Three times the samples: T_target(1) is the numerator of every predicted
                # speedup, and a small target's forward (a millisecond on a CPU) takes ten calls
                # to settle. Plain decoding runs the target back to back (warm caches); a
                # verification runs right after the draft's tree, which evicted part of the
                # target, so it is timed after the same flush as the draft's parts.
                timing = replace(timing, warmup=max(timing.warmup, 10),
                                 repeats=3 * timing.repeats,
                                 flush_mb=0 if fields["q"] == 1 else timing.flush_mb)
            elif part in TARGET_PARTS:
                timing = replace(timing, flush_mb=0)
            table.entries[key] = time_call(call, timing, target.device, reset)
            if time.perf_counter() - last_save > settings.save_every_s:
                table.save(path)
                last_save = time.perf_counter()
        table.complete = True
        table.save(path)
    return ProfileReport(table, path, len(todo), len(keys) - len(todo),
                         time.perf_counter() - started)
