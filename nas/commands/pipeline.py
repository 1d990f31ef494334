"""The whole job on one target: build it, train the supernet, profile, search, export, train the
eagle and dream baselines, bench them all; a summary table at the end.

Each stage is a draftnas command run in-process, its config composed as the CLI composes it, in
its own directory: <run_dir>/01-target, 02-train, 03-profile, 04-search, 05-export,
06-train-eagle, 07-train-dream, 08-bench. A stage whose directory holds result.json is done and
skipped, so `draftnas pipeline run_dir=<an earlier run>` resumes a killed pipeline (training and
profiling also resume from their checkpoints and partial tables). The drafts benched are copied
to <run_dir>/drafts/{searched,eagle,dream}; summary.md and result.json hold the final table.

keys:
  target        shapes | smollm2 | a Hugging Face model id | a local model directory
  budget        smoke | default | long: the training budget (conf/budget/) and, from
                stages.<budget>, the other stages' settings (trials, bench prompts and tokens)
  device, dtype where and in which precision every stage runs
  tables_dir    where a latency table matching the target and device is looked for, and where
                a new profile goes (null: hardware_profiles/tables)
  shapes_build  per budget, which build of the embedded shapes target it uses (smoke: the small
                one built in seconds, so a fresh machine checks every stage in minutes)
  overrides     extra overrides per stage, e.g. overrides.search='[n_trials=10]'
"""

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from hardware_profiles.device import DeviceFingerprint, current_device
from hardware_profiles.table import TableError, load_table
from nas.commands import CommandConfig, command_module, compose_config
from nas.run_dir import RESULT_FILE, write_result
from nas.user_errors import UserError
from targets.embedded.shapes import BUDGET_ENV as SHAPES_BUDGET_ENV

TABLES_DIR = Path(__file__).resolve().parents[2] / "hardware_profiles" / "tables"
DRAFTS = ("searched", "eagle", "dream")
SUMMARY_COLUMNS = {"method": "method", "tokens_per_s": "tokens/s", "speedup": "speedup",
                   "decode_speedup": "speedup after prefill", "tau": "tau",
                   "equals_vanilla": "equals vanilla"}


@dataclass(kw_only=True)
class Config(CommandConfig):
    target: str
    device: str
    dtype: str
    tables_dir: str | None
    shapes_build: dict[str, str] = field(default_factory=dict)
    # The budget group's keys (conf/budget/), passed on to the train stages as overrides.
    budget_name: str
    calibration_prompts: int
    prompts: int
    max_new_tokens: int
    train: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    overrides: dict[str, list[str]] = field(default_factory=dict)


class Progress:
    """One line per stage start and end, with the time since the pipeline started."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[pipeline {int(elapsed // 60):02d}:{elapsed % 60:04.1f}] {message}", flush=True)


def run(cfg: Config) -> dict[str, Any]:
    check_config(cfg)
    choose_shapes_build(cfg)
    run_dir, progress = Path(cfg.run_dir), Progress()
    device = [f"device={cfg.device}", f"dtype={cfg.dtype}"]
    target = [f"target={cfg.target}"]
    hardware = [f"hardware={'gpu' if cfg.device.startswith('cuda') else 'cpu'}",
                f"hardware.device={cfg.device}", f"hardware.dtype={cfg.dtype}"]

    def stage(name: str, command: str, overrides: list[str]) -> dict[str, Any]:
        return run_stage(run_dir / name, command, overrides + extra(cfg, command), progress)

    facts = stage("01-target", "target", target + device)
    train = train_overrides(cfg) + target + device + ["resume=true"]
    stage("02-train", "train", train + ["search_space=dream_s"])
    table = profile_stage(cfg, run_dir, facts["fingerprint"], target + hardware, progress)
    stage("04-search", "search",
          target + hardware + [f"supernet={run_dir / '02-train'}", f"hardware.table={table}"])
    export = stage("05-export", "export", device + [f"search={run_dir / '04-search'}"])
    eagle = stage("06-train-eagle", "train", train + ["search_space=eagle"])
    dream = stage("07-train-dream", "train", train + ["search_space=dream"])
    drafts = copy_drafts(run_dir, (export["draft"], eagle["draft"], dream["draft"]))
    bench = stage("08-bench", "bench",
                  target + device + bench_threads(table)
                  + [f"drafts=[{','.join(str(d) for d in drafts)}]"])
    table_rows = summary_rows(bench["rows"])
    total = time.perf_counter() - progress.started
    summary = write_summary(run_dir, cfg, table_rows, total, bench)
    print(summary)
    progress.say(f"done: {run_dir / 'summary.md'}")
    return {"target": cfg.target, "budget": cfg.budget_name, "latency_table": str(table),
            "stages": {path.name: str(path) for path in stage_dirs(run_dir)},
            "drafts": {name: str(path) for name, path in zip(DRAFTS, drafts, strict=True)},
            "summary": table_rows, "summary_md": str(run_dir / "summary.md"),
            "total_seconds": round(total, 1)}


def check_config(cfg: Config) -> None:
    if cfg.budget_name not in cfg.stages:
        raise UserError(f"budget: '{cfg.budget_name}' has no stage settings in conf/pipeline.yaml; "
                        f"use one of {', '.join(cfg.stages)}")


def choose_shapes_build(cfg: Config) -> None:
    """Every stage loads `shapes` by name, which builds (once) and loads the build that
    $DRAFTNAS_SHAPES_BUDGET names: set it for this budget, unless the caller already did."""
    build = cfg.shapes_build.get(cfg.budget_name)
    if cfg.target == "shapes" and build and SHAPES_BUDGET_ENV not in os.environ:
        os.environ[SHAPES_BUDGET_ENV] = build


def extra(cfg: Config, command: str) -> list[str]:
    """The budget's settings for this command, then the user's (later overrides win)."""
    return list(cfg.stages[cfg.budget_name].get(command, [])) + list(cfg.overrides.get(command, []))


def train_overrides(cfg: Config) -> list[str]:
    """The pipeline's composed training budget, key by key: `draftnas pipeline train.steps=2`
    reaches all three train stages as `budget` + `train.steps` would reach one."""
    flat = [f"budget={cfg.budget_name}", f"calibration_prompts={cfg.calibration_prompts}",
            f"prompts={cfg.prompts}", f"max_new_tokens={cfg.max_new_tokens}"]

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        else:
            flat.append(f"{prefix}={'null' if node is None else node}")

    walk("train", cfg.train)
    return flat


def run_stage(stage_dir: Path, command: str, overrides: list[str],
              progress: Progress) -> dict[str, Any]:
    """Run `command` as the CLI would, with its run dir set to `stage_dir`; skip it when an
    earlier run finished it (result.json is written last and atomically)."""
    done = stage_dir / RESULT_FILE
    if done.is_file():
        progress.say(f"{stage_dir.name}: done before, skipped")
        return OmegaConf.to_container(OmegaConf.load(done))["result"]
    progress.say(f"{stage_dir.name}: draftnas {command} {' '.join(overrides)}")
    started = time.perf_counter()
    cfg = compose_config(command, overrides + [f"run_dir={stage_dir}"])
    stage_dir.mkdir(parents=True, exist_ok=True)
    result = command_module(command).run(OmegaConf.to_object(cfg))
    write_result(stage_dir, command, result, OmegaConf.to_container(cfg, resolve=True))
    progress.say(f"{stage_dir.name}: finished in {time.perf_counter() - started:.1f} s")
    return result


def profile_stage(cfg: Config, run_dir: Path, fingerprint: str, overrides: list[str],
                  progress: Progress) -> Path:
    """A table of this target measured on this device if one exists (profiling takes minutes),
    else a fresh profile. Threads and torch version may differ: they shift latencies a little,
    the ranking of drafts hardly. A budget that profiles with settings of its own (smoke: fewer
    repeats) writes a table tagged with its name, which no other budget uses."""
    stage_dir = run_dir / "03-profile"
    if not (stage_dir / RESULT_FILE).is_file():
        tables = Path(cfg.tables_dir) if cfg.tables_dir else TABLES_DIR
        here = current_device(cfg.device, getattr(torch, cfg.dtype), 0)
        # Full-quality tables first; a quick one only serves the budget that made it.
        tag = f"-{cfg.budget_name}" if extra(cfg, "profile") else ""
        usable = [path for path in sorted(tables.glob("*.json"))
                  if not budget_tag(path, cfg) or budget_tag(path, cfg) == tag]
        found = next((path for path in sorted(usable, key=lambda path: budget_tag(path, cfg))
                      if measured_here(path, fingerprint, here, complete=True)), None)
        if found is not None:
            stage_dir.mkdir(parents=True, exist_ok=True)
            write_result(stage_dir, "profile", {"table": str(found), "profiled": False},
                         {"tables_dir": str(tables)})
            progress.say(f"03-profile: {found} matches this target and device, not profiling")
            return found
        # Named by fingerprint: a table of another build of the target stays as it is.
        name = f"{torch.device(cfg.device).type}-{safe(cfg.target)}-{fingerprint[:8]}{tag}"
        output = tables / f"{name}.json"
        # A partial table of a killed run resumes; one measured elsewhere is remade.
        fresh = output.is_file() and not measured_here(output, fingerprint, here, complete=False)
        overrides = overrides + [f"output={output}", f"fresh={str(fresh).lower()}"]
    result = run_stage(stage_dir, "profile", overrides + extra(cfg, "profile"), progress)
    return Path(result["table"])


def bench_threads(table: Path) -> list[str]:
    """The bench times with the CPU threads the latency table was measured with, so that the
    measured speedups answer the predictions the search made from that table."""
    threads = load_table(table).device.threads
    return [f"threads={threads}"] if threads else []


def budget_tag(path: Path, cfg: Config) -> str:
    """`-smoke` for a table profiled with a budget's own (quicker) settings, else ''."""
    return next((f"-{name}" for name in cfg.stages if path.stem.endswith(f"-{name}")), "")


def measured_here(path: Path, fingerprint: str, here: DeviceFingerprint, complete: bool) -> bool:
    try:
        table = load_table(path)
    except TableError:
        return False  # a broken or foreign file is no match; profiling makes a good one
    theirs = table.device
    return ((table.complete or not complete) and table.target.get("fingerprint") == fingerprint
            and (theirs.kind, theirs.name, theirs.dtype) == (here.kind, here.name, here.dtype))


def safe(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in Path(spec).name or spec)


def copy_drafts(run_dir: Path, sources: tuple[str, ...]) -> list[Path]:
    """Bench names a draft by its directory, and every stage writes `draft/`: copies under
    distinct names keep the rows apart (and leave the pipeline's drafts in one place)."""
    copies = []
    for name, source in zip(DRAFTS, sources, strict=True):
        copy = run_dir / "drafts" / name
        shutil.copytree(source, copy, dirs_exist_ok=True)
        copies.append(copy)
    return copies


def stage_dirs(run_dir: Path) -> list[Path]:
    return sorted(path for path in run_dir.iterdir() if path.is_dir() and path.name[:2].isdigit())


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: row.get(key) for key in SUMMARY_COLUMNS} for row in rows]


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def write_summary(run_dir: Path, cfg: Config, rows: list[dict[str, Any]], seconds: float,
                  bench: dict[str, Any]) -> str:
    load = bench["load_average_1m"]
    setting = (f"{bench['prompts']} {bench['prompt_set']} prompts, {cfg.device} {cfg.dtype}; "
               f"pipeline {seconds / 60:.1f} min; load average (1 min) during the bench "
               f"{load['before']:.2f} -> {load['after']:.2f}")
    lines = [f"# draftnas pipeline: {cfg.target}, budget {cfg.budget_name}", "", setting, "", "| " + " | ".join(SUMMARY_COLUMNS.values()) + " |",
             "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell(row[key]) for key in SUMMARY_COLUMNS) + " |" for row in rows]
    plots = [Path(bench["files"]["png"]), run_dir / "04-search" / "pareto.png"]
    lines += ["", "tau: tokens per target forward, the bonus token included.", "",
              *[f"![{path.stem}]({path.relative_to(run_dir)})" for path in plots if path.is_file()],
              "",
              "stages: " + ", ".join(path.name for path in stage_dirs(run_dir)), ""]
    text = "\n".join(lines)
    (run_dir / "summary.md").write_text(text)
    return text
