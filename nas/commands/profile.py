"""Profile the target and a search space on this machine into a latency table; validate it.

Times the target's forward (the new tokens every decoding shape of the space verifies, several
contexts) and every draft part the space allows (a layer per interaction/heads/FFN width/context,
fusion per number of injected layers, the head per draft vocabulary, the tree bookkeeping per
decoding shape, the vision scoring) with the decoder's real calls, and writes a table among the
user's tables ($DRAFTNAS_HOME/tables: `<device>-<target>-<fingerprint>.json`, or
`<hardware.name>.json`; hardware_profiles.table_store) or to output=. The table is saved as it
grows; rerunning an interrupted profile skips the entries already measured (fresh=true remakes
it). With reuse=true a complete table of this target measured on this device, the user's or a
shipped one, is used as it is and nothing is timed. With validate=true it then times random whole
drafts end to end and reports MAPE and Kendall tau of predicted against measured, with a scatter
plot in the run directory.

keys:
  target            shapes | smollm2 | a Hugging Face model id | a local model directory
  device, dtype     where and in which precision the target runs (hardware=gpu: cuda, bfloat16)
  search_space      a named space (dream_s, dream_s_cpu, eagle, dream) or a space YAML file;
                    its `decode` shapes are the decoding shapes the table serves
  calibration       calibration.json for entropy:N layers; null: any ranking (only how many
                    layers a draft injects changes its latency, not which)
  hardware          cpu | gpu (conf/hardware/); its keys: name (the table's file name), threads
                    (null: every usable core), contexts, warmup, repeats, budget_s (seconds
                    after which a slow part stops repeating, once it has 5 timings), clock
                    (wall; cpu = this process's CPU time, for a shared machine, with threads=1),
                    flush_mb (CPU cache evicted before each timed call; 0: warm caches)
  output            table path; null: among the user's tables (see above)
  fresh             remake the table instead of resuming it
  reuse             use a complete table of this target and device if one exists
  tag               a table profiled with quicker settings than a full one: its name ends in
                    -<tag>, and only a reuse asking for that tag takes it
  validate          after profiling, validate on validate_subnets random drafts
"""

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from hardware_profiles.device import default_threads, device_of
from hardware_profiles.predictor import LatencyPredictor
from hardware_profiles.profiler import HardwareConfig, profile
from hardware_profiles.table_store import measured_on
from hardware_profiles.timing import CLOCKS
from hardware_profiles.validate import plot, validate
from hardware_profiles.verification import plain_tokens_per_s, plot_curve, summary_lines
from nas.calibration import Calibration
from nas.commands import CommandConfig
from nas.run_context import RunContext, ServeConfig
from nas.user_errors import UserError
from search_spaces import ResolvedSpace, TargetDims, load_space
from specdec.shape import DecodeShape
from targets import PreparedInputs, Target


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig):
    search_space: str
    calibration: Path | None
    hardware: HardwareConfig
    output: Path | None
    fresh: bool
    reuse: bool
    tag: str | None
    validate: bool
    validate_subnets: int
    validate_tokens: int
    prompt: str
    seed: int


@dataclass(kw_only=True)
class Result:
    table: str
    profiled: bool  # False: reuse=true found a complete table and timed nothing
    entries: int | None = None
    measured: int | None = None
    skipped: int | None = None
    profile_seconds: float | None = None
    device: dict[str, Any] | None = None
    grid: dict[str, Any] | None = None
    decode: list[str] | None = None
    # {ctx: {q: T(q) / T(1)}}: what verifying q tokens costs (hardware_profiles.verification)
    verification_curve: dict[int, dict[int, float]] | None = None
    memory: dict[str, float] | None = None  # weights per step, read GB/s, memory-bound tokens/s
    plain_tokens_per_s: float | None = None
    plot: str | None = None  # the curve
    validation: dict[str, Any] | None = None


@dataclass(frozen=True)
class AllIntermediateLayers:
    """A stand-in calibration ranking every intermediate tap, shallow first: latency depends on
    how many layers a draft injects, which any ranking gives the same way."""

    candidate_taps: tuple[int, ...]


def run(cfg: Config, ctx: RunContext) -> Result:
    check_config(cfg)
    target = ctx.target(cfg)
    threads = cfg.hardware.threads or default_threads()
    here = device_of(target, threads)
    found = ctx.tables.find(target.fingerprint, here, cfg.tag) if cfg.reuse else None
    if found is not None:
        print(f"table: {found} matches this target and device, not profiling")
        return Result(table=str(found), profiled=False)
    space, shapes = resolve_space(cfg, target)
    path = cfg.output or ctx.tables.path_for(target.spec, target.fingerprint, here.kind,
                                             cfg.tag, cfg.hardware.name)
    fresh = cfg.fresh
    if cfg.output is None and cfg.hardware.name is None:
        # The default name says target and device kind, not which CPU or GPU: a table another
        # machine measured under it is remade, one this machine started is resumed.
        fresh = fresh or (path.is_file() and not measured_on(path, target.fingerprint, here,
                                                             complete=False))
    report = profile(target, space, shapes, path, cfg.hardware.settings(threads), fresh=fresh)
    table = report.table
    print(f"table: {report.path} ({len(table.entries)} entries, {report.measured} measured "
          f"now, {report.skipped} kept, {report.seconds:.0f} s)")
    for line in summary_lines(table):
        print(line)
    curve = plot_curve(table, Path(cfg.run_dir) / "verification_curve.png",
                       f"{report.path.stem}: {table.device.name}, {table.device.dtype} "
                       f"{table.device.runtime}, {table.device.threads} threads")
    result = Result(
        table=str(report.path), profiled=True, entries=len(table.entries),
        measured=report.measured, skipped=report.skipped,
        profile_seconds=round(report.seconds, 1), device=table.device.to_dict(),
        grid=asdict(table.grid), decode=[shape.label for shape in shapes],
        verification_curve={ctx: {q: round(r, 4) for q, r in row.items()}
                            for ctx, row in table.verification_curve().items()},
        memory=table.memory.to_dict(), plain_tokens_per_s=round(plain_tokens_per_s(table), 2),
        plot=str(curve))
    if cfg.validate:
        result = replace(result, validation=run_validation(cfg, target, space, shapes,
                                                           report.path, threads))
    return result


def check_config(cfg: Config) -> None:
    positive = {"hardware.warmup": cfg.hardware.warmup + 1, "hardware.repeats": cfg.hardware.repeats,
                "hardware.flush_mb": cfg.hardware.flush_mb + 1,
                "validate_subnets": cfg.validate_subnets, "validate_tokens": cfg.validate_tokens}
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{key}: must be positive (warmup may be 0)")
    if cfg.hardware.clock not in CLOCKS:
        raise UserError(f"hardware.clock: {cfg.hardware.clock!r}; use one of {', '.join(CLOCKS)}")
    if cfg.hardware.clock == "cpu" and cfg.hardware.threads != 1:
        raise UserError("hardware.clock=cpu adds up the CPU time of every thread: set "
                        "hardware.threads=1 with it")
    if cfg.hardware.threads is not None and cfg.hardware.threads < 1:
        raise UserError(f"hardware.threads: {cfg.hardware.threads}; use a positive count or null")
    if cfg.validate and cfg.validate_subnets < 2:
        raise UserError("validate_subnets: Kendall tau needs at least 2 drafts; use 30")


def resolve_space(cfg: Config, target: Target) -> tuple[ResolvedSpace, tuple[DecodeShape, ...]]:
    """The space resolved for `target`, and the decoding shapes it lists."""
    space = load_space(cfg.search_space)
    calibration = None
    if cfg.calibration:
        calibration = Calibration.load(cfg.calibration, target.fingerprint)
    elif space.needs_calibration:
        calibration = AllIntermediateLayers(tuple(range(2, target.num_layers)))
    return space.resolve(TargetDims.of(target), calibration), space.decode


def validation_inputs(target: Target, prompt: str, seed: int) -> PreparedInputs:
    """The prompt (with a noise image for a VLM that has a processor); random ids for a target
    without a tokenizer. Only the lengths matter to latency."""
    generator = torch.Generator().manual_seed(seed)
    if target.tokenizer is None:
        ids = torch.randint(3, target.vocab_size - 8, (1, 32), generator=generator)
        return target.prepare(inputs={"input_ids": ids})
    images = None
    if target.is_vlm and target.processor is not None:
        from PIL import Image

        pixels = torch.randint(0, 256, (224, 224, 3), generator=generator, dtype=torch.uint8)
        images = [Image.fromarray(pixels.numpy())]
    return target.prepare(prompt=prompt, images=images)


def run_validation(cfg: Config, target: Target, space: ResolvedSpace,
                   shapes: tuple[DecodeShape, ...], table: Path, threads: int) -> dict[str, Any]:
    predictor = LatencyPredictor.from_file(table, target.fingerprint)
    inputs = validation_inputs(target, cfg.prompt, cfg.seed)
    report = validate(target, space, shapes, predictor, inputs, n=cfg.validate_subnets,
                      new_tokens=cfg.validate_tokens, seed=cfg.seed, threads=threads)
    figure = plot(report, Path(cfg.run_dir) / "latency_validation.png",
                  f"{table.stem}: {len(report.subnets)} random drafts of {space.name}")
    for label, stats in (("draft cost", report.draft), ("decoding step", report.step)):
        print(f"{label}: MAPE {stats.mape:.1f}%, Kendall tau {stats.kendall_tau:.3f}, "
              f"max error {stats.max_error:.1f}%")
    print(f"plot: {figure}")
    return {**report.to_dict(), "plot": str(figure)}
