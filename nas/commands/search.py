"""Search a trained supernet for the draft that decodes fastest on one hardware's latency table.

Every trial activates one arch of the supernet (inherited weights), decoding shape included,
estimates its tau with that shape on validation sequences the target generated (nas.estimator;
target features computed once per search) and predicts its step latency and speedup from the
table (nas.objectives). A last stage decodes validation prompts with the real decoder for every
shape of the best few drafts and picks the fastest (draft, shape) by measured tau
(nas.measured_shapes). Writes to the run directory: trials.csv, shapes.csv, best.json,
pareto.png, importance.png (layout: nas.reports), and for Optuna searchers study.db (unless
searcher.storage names another database).

keys:
  target              the target the supernet was trained for
  supernet            a `draftnas train` run directory or its supernet/ directory (required)
  hardware            cpu | gpu: the profiled hardware (device, dtype; its table is
                      hardware_profiles/tables/<hardware.name or <device>-<target>>.json);
                      hardware.table=<table name or .json path> picks another table
  search_space        null: the supernet's own; else a space that must resolve to that same space,
                      except for its decoding shapes (a supernet serves any: nas.supernet_shapes)
  searcher            tpe | nsga2 | ray | exhaustive (searcher.storage, searcher.address,
                      searcher.workers, searcher.cpus_per_trial, searcher.gpus_per_trial, ...)
  n_trials            completed trials the study ends with (a rerun continues the study)
  study_name          the Optuna study (and Ray experiment) name
  objective           kind speedup | pareto, latency_budget_ms, context
  validation_prompts  test prompts the target answers once (cached) for the estimator
  measured_shapes     drafts (distinct best trials; 0: skip the stage) and prompts of the last
                      stage, which decodes every shape of those drafts
"""

import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from hardware_profiles.predictor import LatencyPredictor
from nas.calibration import FILE_NAME as CALIBRATION_FILE
from nas.calibration import Calibration
from nas.commands import CommandConfig
from nas.commands.profile import HardwareConfig
from nas.commands.train import prepared_prompts
from nas.estimator import AcceptanceEstimator, ValidationSet
from nas.measured_shapes import MeasuredShapesConfig, measure_shapes
from nas.objectives import Objective, ObjectiveConfig, SubnetEvaluator
from nas.reports import Provenance, write_reports
from nas.searchers import SearcherConfig, SearchProblem, search
from nas.supernet_shapes import serve_shapes
from nas.target_loading import load_configured_target
from nas.user_errors import UserError
from search_spaces import ResolvedSpace, TargetDims, load_space
from supernet import load_supernet
from supernet.checkpoint import check_meta
from supernet.corpus import CorpusItem, build_corpus
from targets import Target
from targets.embedded import EMBEDDED_TARGETS
from targets.home import draftnas_home

TABLES_DIR = Path(__file__).resolve().parents[2] / "hardware_profiles" / "tables"


@dataclass
class HardwareTable(HardwareConfig):
    """The profile command's hardware group, plus the table to read (null: the one profiling
    that hardware wrote)."""

    table: str | None = None


@dataclass(kw_only=True)
class Config(CommandConfig):
    target: str
    supernet: str | None
    hardware: HardwareTable = field(default_factory=HardwareTable)
    search_space: str | None
    n_trials: int
    study_name: str
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    validation_prompts: int
    max_new_tokens: int
    threads: int
    seed: int
    searcher: SearcherConfig = field(default_factory=SearcherConfig)
    measured_shapes: MeasuredShapesConfig = field(default_factory=MeasuredShapesConfig)


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything that decides a search's evaluator, picklable: calling it builds the evaluator
    (in this process, or once in each Ray worker)."""

    target: str
    supernet: str
    table: str
    search_space: str | None
    validation_prompts: int
    max_new_tokens: int
    device: str
    dtype: str
    threads: int
    objective: ObjectiveConfig
    home: str  # $DRAFTNAS_HOME as the driver sees it: where the target and corpus are cached

    def __call__(self) -> SubnetEvaluator:
        return build_evaluator(self)[0]


@dataclass
class Setup:
    target: Target
    space: ResolvedSpace
    predictor: LatencyPredictor
    corpus: list[CorpusItem]  # the validation sequences


def run(cfg: Config) -> dict[str, Any]:
    check_config(cfg)
    # Absolute paths: Ray Tune runs every trial in a directory of its own (and a cluster's
    # workers elsewhere), where a relative path would point at nothing.
    spec = EvaluatorSpec(
        target=absolute_if_local(cfg.target), supernet=str(supernet_dir(cfg.supernet).resolve()),
        table=str(table_path(cfg).resolve()), search_space=cfg.search_space,
        validation_prompts=cfg.validation_prompts, max_new_tokens=cfg.max_new_tokens,
        device=cfg.hardware.device, dtype=cfg.hardware.dtype, threads=cfg.threads, objective=cfg.objective,
        home=str(draftnas_home()))
    evaluator, setup = build_evaluator(spec)
    run_dir = Path(cfg.run_dir)
    problem = SearchProblem(space=setup.space, objective=evaluator.objective, evaluator=evaluator,
                            evaluator_factory=spec, n_trials=cfg.n_trials,
                            study_name=cfg.study_name, run_dir=run_dir, seed=cfg.seed)
    records = search(problem, cfg.searcher)
    measurements = measure_shapes(
        evaluator.superdraft, setup.corpus, setup.space.decode_shapes,
        [(record.number, record.result) for record in records], setup.predictor,
        evaluator.objective, evaluator.context, cfg.measured_shapes)
    importance = None
    if cfg.searcher.name in ("tpe", "nsga2"):
        from nas.searchers.optuna_search import param_importance

        importance = param_importance(problem, cfg.searcher)
    provenance = Provenance(
        hardware_table=spec.table, supernet=spec.supernet, target_spec=cfg.target,
        target_fingerprint=setup.target.fingerprint, space=setup.space.name,
        objective=asdict(cfg.objective), searcher=cfg.searcher.name, study_name=cfg.study_name)
    reports = write_reports(run_dir, records, provenance, importance, measurements)
    best = reports["best"]
    if best is not None:
        number, result = best
        how = "measured" if measurements else "estimated"
        print(f"best: trial {number}'s draft decoding {result.arch.decode}, tau {result.tau:.3f} "
              f"({how}), {result.latency_ms:.2f} ms/step, predicted speedup {result.speedup:.3f}")
    return {"completed_trials": len(records), "best_trial": best[0] if best else None,
            "best": reports["best"][1].metrics() if best else None,
            "best_arch": best[1].arch.to_dict() if best else None,
            "measured_shapes": len(measurements), "context": evaluator.context,
            **reports["paths"]}


def check_config(cfg: Config) -> None:
    if cfg.supernet is None:
        raise UserError("supernet: missing; give supernet=<draftnas train run directory>")
    if cfg.n_trials < 1 or cfg.validation_prompts < 1 or cfg.max_new_tokens < 1:
        raise UserError(f"n_trials={cfg.n_trials}, validation_prompts={cfg.validation_prompts}, "
                        f"max_new_tokens={cfg.max_new_tokens}: use positive numbers")
    if cfg.threads < 0:
        raise UserError(f"threads: {cfg.threads}; use 0 (torch's default) or a positive number")
    prompts = cfg.measured_shapes.prompts
    if cfg.measured_shapes.drafts < 0 or (prompts is not None and prompts < 1):
        raise UserError(f"measured_shapes.drafts={cfg.measured_shapes.drafts}, "
                        f"measured_shapes.prompts={prompts}: use drafts >= 0 (0 skips the stage) "
                        "and prompts >= 1 or null (all)")
    cfg.objective.check()


def absolute_if_local(spec: str) -> str:
    """A target given as a local directory, made absolute; an embedded name or hub id as is."""
    if spec in EMBEDDED_TARGETS or not Path(spec).is_dir():
        return spec
    return str(Path(spec).resolve())


def supernet_dir(path: str) -> Path:
    """A train run directory or its supernet/ directory -> the supernet/ directory."""
    directory = Path(path)
    return directory / "supernet" if (directory / "supernet").is_dir() else directory


def table_path(cfg: Config) -> Path:
    """hardware.table as a name in hardware_profiles/tables/ or a path; else the table
    `draftnas profile` writes for this hardware and target."""
    table = cfg.hardware.table
    if table is None:
        name = cfg.hardware.name or f"{torch.device(cfg.hardware.device).type}-{spec_name(cfg)}"
        return TABLES_DIR / f"{name}.json"
    named = TABLES_DIR / f"{table}.json"
    return named if named.is_file() or not (table.endswith(".json") or os.sep in table) \
        else Path(table)


def spec_name(cfg: Config) -> str:
    """The target part of profile's default table name (nas.commands.profile)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(cfg.target).name or cfg.target)


def build_evaluator(spec: EvaluatorSpec) -> tuple[SubnetEvaluator, Setup]:
    os.environ["DRAFTNAS_HOME"] = spec.home
    if spec.threads:
        torch.set_num_threads(spec.threads)
    target = load_configured_target(spec.target, spec.device, spec.dtype)
    superdraft, meta = load_supernet(spec.supernet, target)
    superdraft.eval()
    if spec.search_space is not None:
        requested = requested_space(spec, target)
        trained = replace(requested, decode_shapes=superdraft.space.decode_shapes)
        check_meta(meta, trained, target.fingerprint, Path(spec.supernet))
        serve_shapes(superdraft, requested.decode_shapes)
    space = superdraft.space
    predictor = LatencyPredictor.from_file(spec.table, target.fingerprint)
    check_table_covers(predictor, space)
    prompts = prepared_prompts(spec.target, target, "test", spec.validation_prompts)
    corpus = build_corpus(target, prompts, spec.max_new_tokens, draftnas_home() / "corpus")
    taps = sorted({tap for taps in space.injected_layers for tap in taps})
    validation = ValidationSet.build(target, corpus, taps, min(space.vision_keep_ratio) < 1.0)
    context = spec.objective.context or sum(validation.lengths) / len(validation.lengths)
    evaluator = SubnetEvaluator(superdraft, AcceptanceEstimator(validation), predictor,
                                Objective(spec.objective), context)
    return evaluator, Setup(target, space, predictor, corpus)


def requested_space(spec: EvaluatorSpec, target: Target) -> ResolvedSpace:
    """The space the user named, resolved as `draftnas train` resolved it (with the train run's
    calibration when the space ranks layers by entropy)."""
    space = load_space(spec.search_space)
    calibration = None
    if space.needs_calibration:
        path = Path(spec.supernet).parent / CALIBRATION_FILE
        calibration = Calibration.load(path, fingerprint=target.fingerprint)
    return space.resolve(TargetDims.of(target), calibration)


def check_table_covers(predictor: LatencyPredictor, space: ResolvedSpace) -> None:
    """Every value of every dimension must have table entries (TableError names the missing one)
    before the first trial, not in the middle of a search."""
    largest = space.largest()
    for dimension, values in space.choices().items():
        for value in values:
            arch = replace(largest, **{dimension: value})
            if arch.interaction == "none":  # tokens-only: no layer is injected
                arch = replace(arch, injected_layers=())
            predictor.breakdown(arch, 64.0, 1.0)
