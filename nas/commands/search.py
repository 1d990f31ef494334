"""Search a trained supernet for the draft that decodes fastest on one hardware's latency table.

Every trial activates one arch of the supernet (inherited weights) and picks a decoding shape
(nas.candidates), estimates its tau with that shape on validation sequences the target generated (nas.estimator;
target features computed once per search) and predicts its step latency and speedup from the
table (nas.objectives). A last stage decodes validation prompts with the real decoder for every
shape of the best few drafts and picks the fastest (draft, shape) by measured tau
(nas.measured_shapes). Writes to the run directory: trials.csv, shapes.csv, best.json,
pareto.png, importance.png (layout: nas.reports), and for Optuna searchers study.db (unless
searcher.storage names another database).

keys:
  target              the target the supernet was trained for
  supernet            a `draftnas train` run directory or its supernet/ directory (required)
  hardware            cpu | gpu: where the target runs (device, dtype); the table is the
                      complete one of this target measured on this device, the user's
                      ($DRAFTNAS_HOME/tables) or a shipped one (hardware_profiles.table_store);
                      hardware.table=<table name or .json path> picks another
  search_space        null: the supernet's own space and shapes; else a space that must resolve to
                      that same space, its decoding shapes the ones tried (a supernet serves any)
  searcher            tpe | nsga2 | ray | exhaustive (searcher.storage, searcher.address,
                      searcher.workers, searcher.cpus_per_trial, searcher.gpus_per_trial, ...)
  n_trials            completed trials the study ends with (a rerun continues the study)
  study_name          the Optuna study (and Ray experiment) name
  objective           kind speedup | pareto, latency_budget_ms, context
  data                the prompts: data=<source> (null: the embedded target's own set), data.*
                      keys (userdata.DataConfig); the search reads its validation split
  validation_prompts  validation prompts the target answers once (cached) for the estimator
  measured_shapes     drafts (distinct best trials; 0: skip the stage) and prompts of the last
                      stage, which decodes every shape of those drafts
"""

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from hardware_profiles.device import device_of
from hardware_profiles.predictor import LatencyPredictor
from hardware_profiles.profiler import HardwareConfig
from nas.calibration import FILE_NAME as CALIBRATION_FILE
from nas.calibration import Calibration
from nas.candidates import CandidateSpace
from nas.commands import CommandConfig
from nas.estimator import AcceptanceEstimator, ValidationSet
from nas.measured_shapes import MeasuredShapesConfig, measure_shapes
from nas.objectives import Objective, ObjectiveConfig, SubnetEvaluator
from nas.reports import Provenance, write_reports
from nas.run_context import RunContext, ServeConfig
from nas.searchers import SearcherConfig, SearchProblem, search
from nas.user_errors import UserError
from search_spaces import ResolvedSpace, TargetDims, load_space
from specdec.shape import DecodeShape
from supernet import load_supernet
from supernet.checkpoint import check_meta
from supernet.corpus import CorpusItem, cached_corpus
from targets import Target
from userdata import DataConfig, UserData


@dataclass
class HardwareTable(HardwareConfig):
    """The hardware group, plus the table to read (null: the one measured for this target and
    device)."""

    table: str | None = None


@dataclass(kw_only=True)
class Config(CommandConfig, ServeConfig):
    supernet: Path | None
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
    data: DataConfig = field(default_factory=DataConfig)


@dataclass(kw_only=True)
class Result:
    completed_trials: int
    best_trial: int | None
    best_metrics: dict[str, Any] | None  # the best trial's TrialResult.metrics()
    best_arch: dict[str, Any] | None  # the best candidate: its arch, its shape under "decode"
    measured_shapes: int
    context: float
    data: dict[str, Any]  # the validation rows (userdata.UserData.report)
    # The reports (nas.reports).
    trials: str
    best: str | None = None  # best.json
    shapes: str | None = None
    pareto_plot: str | None = None
    importance_plot: str | None = None


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything that decides a search's evaluator, picklable: calling it builds the evaluator
    (in this process, or once in each Ray worker, which gets the run context without its
    loaded targets). Paths are absolute: Ray Tune runs every trial in a directory of its own
    (and a cluster's workers elsewhere), where a relative path would point at nothing."""

    ctx: RunContext
    target: ServeConfig  # the spec as the run context writes it: a directory made absolute
    supernet: Path
    table: Path
    search_space: str | None
    data: DataConfig  # its source made absolute
    validation_prompts: int
    max_new_tokens: int
    threads: int
    objective: ObjectiveConfig

    def __call__(self) -> SubnetEvaluator:
        return build_evaluator(self)[0]


@dataclass
class Setup:
    target: Target
    space: CandidateSpace
    predictor: LatencyPredictor
    corpus: list[CorpusItem]  # the validation sequences
    data: dict[str, Any]  # which rows they are (userdata.UserData.report)


def run(cfg: Config, ctx: RunContext) -> Result:
    check_config(cfg)
    if cfg.searcher.name in ("tpe", "nsga2"):  # before minutes of setup, a storage to write to
        from nas.searchers.optuna_storage import check_storage

        check_storage(Path(cfg.run_dir), cfg.searcher)
    UserData(cfg.data, ctx.spec(cfg.target))  # bad data fails before the target loads
    target = ctx.target(cfg)
    spec = EvaluatorSpec(
        ctx=ctx, target=replace(ServeConfig.of(cfg), target=target.spec),
        supernet=supernet_dir(cfg.supernet).resolve(),
        table=table_path(cfg, ctx, target).resolve(), search_space=cfg.search_space,
        data=absolute_source(cfg.data), validation_prompts=cfg.validation_prompts, max_new_tokens=cfg.max_new_tokens,
        threads=cfg.threads, objective=cfg.objective)
    evaluator, setup = build_evaluator(spec)
    run_dir = Path(cfg.run_dir)
    problem = SearchProblem(space=setup.space, objective=evaluator.objective, evaluator=evaluator,
                            evaluator_factory=spec, n_trials=cfg.n_trials,
                            study_name=cfg.study_name, run_dir=run_dir, seed=cfg.seed)
    records = search(problem, cfg.searcher)
    if cfg.measured_shapes.drafts:
        print(f"measured shapes: decoding every shape of the {cfg.measured_shapes.drafts} best "
              f"drafts on {cfg.measured_shapes.prompts or len(setup.corpus)} validation prompts "
              "(quicker: fewer measured_shapes.drafts= or measured_shapes.prompts=; "
              "measured_shapes.drafts=0 skips it)", flush=True)
    measurements = measure_shapes(
        evaluator.superdraft, setup.corpus, setup.space.shapes,
        [(record.number, record.result) for record in records], setup.predictor,
        evaluator.objective, evaluator.context, cfg.measured_shapes)
    importance = None
    if cfg.searcher.name in ("tpe", "nsga2"):
        from nas.searchers.optuna_search import param_importance

        importance = param_importance(problem, cfg.searcher)
    provenance = Provenance(
        hardware_table=str(spec.table), supernet=str(spec.supernet), target_spec=target.spec,
        target_fingerprint=target.fingerprint, space=setup.space.name,
        objective=asdict(cfg.objective), searcher=cfg.searcher.name, study_name=cfg.study_name)
    reports = write_reports(run_dir, records, provenance, importance, measurements)
    best = reports["best"]
    if best is not None:
        number, result = best
        how = "measured" if measurements else "estimated"
        print(f"best: trial {number}'s draft decoding {result.candidate.shape}, tau {result.tau:.3f} "
              f"({how}), {result.latency_ms:.2f} ms/step, predicted speedup {result.speedup:.3f}")
    return Result(completed_trials=len(records), best_trial=best[0] if best else None,
                  best_metrics=best[1].metrics() if best else None,
                  best_arch=best[1].candidate.to_dict() if best else None,
                  measured_shapes=len(measurements), context=evaluator.context,
                  data=setup.data, **reports["paths"])


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


def absolute_source(data: DataConfig) -> DataConfig:
    """`data` with a source that is a path made absolute: Ray runs trials in other directories."""
    path = Path(data.source or "").expanduser()
    return replace(data, source=str(path.resolve())) if data.source and path.exists() else data


def supernet_dir(path: Path) -> Path:
    """A train run directory or its supernet/ directory -> the supernet/ directory."""
    directory = Path(path)
    return directory / "supernet" if (directory / "supernet").is_dir() else directory


def table_path(cfg: Config, ctx: RunContext, target: Target) -> Path:
    """hardware.table (or hardware.name): a table name or path; else the complete table of this
    target measured on this device."""
    if cfg.hardware.table or cfg.hardware.name:
        return ctx.tables.named(cfg.hardware.table or cfg.hardware.name)
    here = device_of(target, 0)
    found = ctx.tables.find(target.fingerprint, here)
    if found is None:
        raise UserError(
            f"hardware.table: no complete latency table of target '{target.spec}' measured on "
            f"this {here.kind} ({here.name}, {here.dtype}) in {ctx.tables.directory} or "
            f"{ctx.tables.shipped}; make one with `draftnas profile` (same target, device and "
            "dtype) or give hardware.table=<table file>")
    return found


def build_evaluator(spec: EvaluatorSpec) -> tuple[SubnetEvaluator, Setup]:
    if spec.threads:
        torch.set_num_threads(spec.threads)
    target = spec.ctx.target(spec.target)
    superdraft, meta = load_supernet(spec.supernet, target)
    superdraft.eval()
    shapes = meta.shapes
    if spec.search_space is not None:
        requested, shapes = requested_space(spec, target)
        check_meta(meta, requested, target.fingerprint, spec.supernet)
    space = CandidateSpace(superdraft.space, shapes)
    predictor = LatencyPredictor.from_file(spec.table, target.fingerprint)
    check_table_covers(predictor, space)
    data = UserData(spec.data, target.spec)
    prompts = data.take(target, "validation", spec.validation_prompts, spec.max_new_tokens)
    corpus = cached_corpus(target, prompts.inputs, spec.max_new_tokens, spec.ctx.home,
                           shorten="fewer validation_prompts= or max_new_tokens=")
    validation = ValidationSet.for_space(target, corpus, superdraft.space)
    context = spec.objective.context or sum(validation.lengths) / len(validation.lengths)
    evaluator = SubnetEvaluator(superdraft, AcceptanceEstimator(validation), predictor,
                                Objective(spec.objective), context)
    return evaluator, Setup(target, space, predictor, corpus, data.report())


def requested_space(spec: EvaluatorSpec,
                    target: Target) -> tuple[ResolvedSpace, tuple[DecodeShape, ...]]:
    """The space the user named, resolved as `draftnas train` resolved it (with the train run's
    calibration when the space ranks layers by entropy), and its decoding shapes."""
    space = load_space(spec.search_space)
    calibration = None
    if space.needs_calibration:
        path = spec.supernet.parent / CALIBRATION_FILE
        calibration = Calibration.load(path, fingerprint=target.fingerprint)
    return space.resolve(TargetDims.of(target), calibration), space.decode


def check_table_covers(predictor: LatencyPredictor, candidates: CandidateSpace) -> None:
    """Every value of every dimension, and every shape, must have table entries (TableError names
    the missing one) before the first trial, not in the middle of a search."""
    space, largest_shape = candidates.space, candidates.shapes[-1]
    largest = space.largest()
    for dimension, values in space.choices().items():
        for value in values:
            arch = replace(largest, **{dimension: value})
            if arch.interaction == "none":  # tokens-only: no layer is injected
                arch = replace(arch, injected_layers=())
            predictor.breakdown(arch, largest_shape, 64.0, 1.0)
    for shape in candidates.shapes:
        predictor.breakdown(largest, shape, 64.0, 1.0)
