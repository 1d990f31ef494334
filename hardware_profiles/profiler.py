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
from hardware_profiles.device import device_of
from hardware_profiles.memory import MemoryFacts, read_bandwidth_gbs, step_weight_bytes
from hardware_profiles.parts import WARM_PARTS, ProfileGrid, parse_key, required_keys
from hardware_profiles.table import LatencyTable, TableError, load_table
from hardware_profiles.timing import (
    TimingConfig,
    pinned_threads,
    summarize,
    time_call,
    time_samples,
)
from search_spaces import ResolvedSpace
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from targets import Target

# Passes of plain-step and verification samples, spread over a profile (see `profile`).
PLAIN_PASSES = 5
# Parts sampled in those passes: T_target(1) and the target's verifications, whose ratio is the
# verification curve every predicted step rests on.
SPREAD_PARTS = ("plain", "target")
# New tokens of the verification curve (LatencyTable.verification_curve), timed at every context.
CURVE_QUERIES = (1, 2, 3, 4, 6, 8, 16, 32)


@dataclass
class ProfileSettings:
    timing: TimingConfig = field(default_factory=TimingConfig)
    threads: int = 1
    contexts: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    save_every_s: float = 10.0
    progress: bool = True


@dataclass
class HardwareConfig:
    """The `hardware` group of the commands that make or read a latency table (conf/hardware/):
    how this device is timed. The device and dtype themselves are the command's own keys."""

    name: str | None = None  # the table's name; None: named by target and device (table_store)
    threads: int | None = None  # None: every core this process may use
    contexts: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024])
    warmup: int = 3
    repeats: int = 15
    budget_s: float = 2.0
    clock: str = "wall"
    flush_mb: int = 20

    def settings(self, threads: int) -> ProfileSettings:
        timing = TimingConfig(self.warmup, self.repeats, budget_s=self.budget_s,
                              clock=self.clock, flush_mb=self.flush_mb)
        return ProfileSettings(timing=timing, threads=threads, contexts=tuple(self.contexts))


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

    Target queries: each shape's verified tokens (causal for chains, masked for trees; plain
    decoding is timed whole, as `plain`), powers of two in between so that a shape given by hand
    (decode, bench) is interpolated, and the verification curve's (CURVE_QUERIES, causal);
    draft queries: every count up to the deepest accepted path (depth + 1: the advance over tau
    slots) and each tree's frontier top_k.
    """
    limit = target.max_positions - max(max(CURVE_QUERIES),
                                       *(s.total_tokens + s.depth * s.top_k for s in shapes))
    if limit < 1:
        raise TableError(f"target context {target.max_positions} cannot hold the space's largest "
                         "tree; drop its largest decode shapes")
    fitting = sorted({min(c, limit) for c in contexts if c >= 1})
    if not fitting:
        raise TableError("hardware.contexts is empty; list context lengths such as [64, 256]")

    def with_powers(sizes: set[int], low: int) -> tuple[int, ...]:
        powers = {2 ** i for i in range(12) if low <= 2 ** i < max(sizes, default=0)}
        return tuple(sorted(sizes | powers))

    causal = with_powers({s.total_tokens for s in shapes if s.is_chain} | set(CURVE_QUERIES), 1)
    tree = with_powers({s.total_tokens for s in shapes if not s.is_chain}, 2)
    deepest = max(s.depth for s in shapes) + 1
    draft = tuple(sorted({*range(1, deepest + 1), *(s.top_k for s in shapes)}))
    return ProfileGrid(tuple(fitting), causal, tree, draft)


def new_table(target: Target, space: ResolvedSpace, shapes: tuple[DecodeShape, ...],
              settings: ProfileSettings) -> LatencyTable:
    device = device_of(target, settings.threads)
    facts = {"spec": target.spec, "fingerprint": target.fingerprint,
             "hidden_size": target.hidden_size, "num_layers": target.num_layers,
             "num_heads": target.num_heads, "vocab_size": target.vocab_size,
             "image_tokens": image_tokens_of(target)}
    grid = plan_grid(target, shapes, settings.contexts)
    return LatencyTable(device, facts, space_record(space, shapes), grid, settings.timing)


def space_record(space: ResolvedSpace, shapes: tuple[DecodeShape, ...]) -> dict:
    """What a table records of what it serves: the space and its decoding shapes (no `decode`
    key for the default tree alone, as tables made before shapes were searched wrote)."""
    record = space.to_dict()
    if shapes != (DEFAULT_SHAPE,):
        record["decode"] = [shape.label for shape in shapes]
    return record


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


def part_timing(part: str, timing: TimingConfig, first_pass: bool = True) -> TimingConfig:
    """How a part is timed: `parts.WARM_PARTS` without the flush; the target's forward, sampled in
    PLAIN_PASSES passes, with three times the samples in all, a pass's share each, and ten warm-up
    calls in its first pass (a small target's, a millisecond on a CPU, takes that many to settle;
    later passes two)."""
    if part == "target":
        return replace(timing, warmup=max(timing.warmup, 10) if first_pass else 2,
                       repeats=-(-3 * timing.repeats // PLAIN_PASSES),
                       min_repeats=min(timing.min_repeats, 2),
                       budget_s=3 * timing.budget_s / PLAIN_PASSES)
    if part in WARM_PARTS:
        return replace(timing, flush_mb=0)
    return timing


@torch.inference_mode()
def profile(target: Target, space: ResolvedSpace, shapes: tuple[DecodeShape, ...],
            path: str | Path,
            settings: ProfileSettings, fresh: bool = False) -> ProfileReport:
    """Time every part the space needs. Plain decoding steps (`plain`, T_target(1): the
    numerator of every predicted speedup, one entry per context) and the target's verifications
    (`target`) are sampled in PLAIN_PASSES passes spread over the whole profile rather than in one
    go: a shared machine drifts by 10% and more over tens of seconds, and a T_target(1) caught in
    one fast or slow moment moved every predicted speedup with it, while the many parts of a step
    average such moments out. Verifications timed one after another at single moments made a
    noisy curve (T(2)/T(1) from 0.78 to 1.23 over one table's contexts) that picked decoding
    shapes by their noise. Either entry is the median of all its passes' samples."""
    path = Path(path)
    started = time.perf_counter()
    with pinned_threads(settings.threads):
        table = new_table(target, space, shapes, settings)
        if not fresh:
            table = resume_or_start(path, table)
        keys = required_keys(space, shapes, table.grid, table.target["image_tokens"])
        todo = [key for key in keys if key not in table.entries]
        spread = [key for key in todo if parse_key(key)[0] in SPREAD_PARTS]
        plain = [key for key in spread if parse_key(key)[0] == "plain"]
        # A pass reuses each context's cache for all its verifications.
        verifications = sorted((key for key in spread if key not in plain),
                               key=lambda key: parse_key(key)[1]["ctx"])
        parts = [key for key in todo if key not in spread]
        benches = PartBenches(target, table.target["image_tokens"])
        samples: dict[str, list[float]] = {key: [] for key in spread}
        # A pass first, one last, and the others between equal runs of the remaining parts.
        runs = PLAIN_PASSES - 1 if spread else 1
        size = -(-len(parts) // runs)
        chunks = [parts[i * size:(i + 1) * size] for i in range(runs)] + [[]]
        last_save = time.perf_counter()
        table.complete = False
        with tqdm(total=len(todo), desc=f"profile {path.stem}", unit="part",
                  disable=not settings.progress) as bar:
            for index, chunk in enumerate(chunks):
                for key in plain:
                    samples[key] += benches.plain_samples(parse_key(key)[1]["ctx"],
                                                          settings.timing, PLAIN_PASSES)
                for key in verifications:
                    part, fields = parse_key(key)
                    benches.release(fields["ctx"])
                    call, reset = benches.prepare(key)
                    timing = part_timing(part, settings.timing, first_pass=index == 0)
                    samples[key] += time_samples(call, timing, target.device, reset)
                for key in chunk:  # in key order: a context's caches are reused
                    part, fields = parse_key(key)
                    benches.release(fields.get("ctx"))
                    call, reset = benches.prepare(key)
                    table.entries[key] = time_call(call, part_timing(part, settings.timing),
                                                   target.device, reset)
                    bar.update()
                    if time.perf_counter() - last_save > settings.save_every_s:
                        table.save(path)
                        last_save = time.perf_counter()
            for key in spread:
                table.entries[key] = summarize(samples[key])
                bar.update()
        if table.memory is None:
            table.memory = MemoryFacts(step_weight_bytes(target.model),
                                       round(read_bandwidth_gbs(target.device), 2))
        table.complete = True
        table.save(path)
    return ProfileReport(table, path, len(todo), len(keys) - len(todo),
                         time.perf_counter() - started)
