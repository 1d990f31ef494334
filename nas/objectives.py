"""What a search optimises, and the evaluation of one subnet that feeds it.

`SubnetEvaluator.evaluate(candidate)` activates the candidate's arch in the trained supernet
(inherited weights), estimates its acceptance with the candidate's decoding shape (nas.estimator)
and predicts its latency with that shape from the hardware table (hardware_profiles.predictor,
never re-derived here):

    predicted speedup = tau x T_target(1) / (T_verify + draft cost)     (LatencyPredictor.speedup)
    latency_ms        = T_verify + draft cost: one decoding step

tau is exact for a chain and an upper estimate for a tree (nas.estimator), so that tau and the
step cost describe the same decoding shape; the search's final stage replaces the estimate by the
decoder's measurement for its best drafts (nas.measured_shapes). Latencies are taken at `context`
cached target tokens (null: the validation sequences' mean length).

Objectives (`Objective.kind`):
- `speedup`: maximise the predicted speedup (one value).
- `pareto`: maximise tau and minimise latency_ms (two values, the Pareto front).
Both honour an optional `latency_budget_ms`: a trial over it is infeasible (Optuna's
constraints_func: latency - budget <= 0 is feasible) and is never the best trial.
"""

from dataclasses import dataclass, field
from typing import Any

from hardware_profiles.predictor import LatencyPredictor
from nas.candidates import Candidate
from nas.estimator import AcceptanceEstimator
from nas.user_errors import UserError

KINDS = ("speedup", "pareto")


@dataclass
class ObjectiveConfig:
    kind: str = "speedup"
    # Milliseconds per decoding step a draft may cost at most (null: no budget).
    latency_budget_ms: float | None = None
    # Target context (cached tokens) at which latency is predicted; null: validation mean length.
    context: int | None = None

    def check(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"objective.kind: '{self.kind}'; use one of {', '.join(KINDS)}")
        if self.latency_budget_ms is not None and self.latency_budget_ms <= 0:
            raise UserError(f"objective.latency_budget_ms: {self.latency_budget_ms}; use a "
                            "positive number of milliseconds or null")


@dataclass
class TrialResult:
    """Everything one evaluated subnet gives; the searchers store it and the reports read it."""

    candidate: Candidate  # the arch and the shape it decodes with
    tau: float  # the tau the speedup uses: the estimate for the candidate's decoding shape
    chain_tau: float  # a chain as deep as the shape (exact)
    tree_tau: float  # the shape's top_k rule (a chain's: chain_tau)
    acceptance_by_depth: list[float]
    latency_ms: float  # one decoding step: verify + draft
    draft_ms: float
    speedup: float
    constraint: float = 0.0  # latency_ms - budget (<= 0: feasible)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return self.constraint <= 0

    def metrics(self) -> dict[str, Any]:
        """Flat JSON-ready metrics (one row of trials.csv without the candidate)."""
        return {"tau": self.tau, "chain_tau": self.chain_tau, "tree_tau": self.tree_tau,
                "latency_ms": self.latency_ms, "draft_ms": self.draft_ms,
                "speedup": self.speedup, "constraint": self.constraint,
                "feasible": self.feasible,
                "acceptance_by_depth": [round(a, 6) for a in self.acceptance_by_depth]}


@dataclass(frozen=True)
class Objective:
    config: ObjectiveConfig

    def __post_init__(self) -> None:
        self.config.check()

    @property
    def names(self) -> list[str]:
        return ["speedup"] if self.config.kind == "speedup" else ["tau", "latency_ms"]

    @property
    def directions(self) -> list[str]:
        return ["maximize"] if self.config.kind == "speedup" else ["maximize", "minimize"]

    def values(self, result: TrialResult) -> list[float]:
        return [getattr(result, name) for name in self.names]

    def constraint(self, latency_ms: float) -> float:
        budget = self.config.latency_budget_ms
        return 0.0 if budget is None else latency_ms - budget


class SubnetEvaluator:
    """Candidate -> TrialResult with inherited supernet weights, the estimator and the table."""

    def __init__(self, superdraft: Any, estimator: AcceptanceEstimator,
                 predictor: LatencyPredictor, objective: Objective, context: float):
        self.superdraft, self.estimator = superdraft, estimator
        self.predictor, self.objective, self.context = predictor, objective, context

    def evaluate(self, candidate: Candidate) -> TrialResult:
        arch, shape = candidate.arch, candidate.shape
        estimate = self.estimator.estimate(self.superdraft.activate(arch), shape)
        tau = estimate.tau
        parts = self.predictor.breakdown(arch, shape, self.context, tau)
        return TrialResult(
            candidate=candidate, tau=tau, chain_tau=estimate.chain_tau,
            tree_tau=estimate.tree_tau, acceptance_by_depth=estimate.acceptance_by_depth,
            latency_ms=parts.step_ms, draft_ms=parts.draft_ms,
            speedup=self.predictor.speedup(arch, shape, tau, self.context),
            constraint=self.objective.constraint(parts.step_ms))


def best_of(results: list[tuple[int, TrialResult]]) -> tuple[int, TrialResult] | None:
    """The feasible trial with the highest predicted speedup (for a Pareto search: the front's
    member that decodes fastest); None when no trial is feasible."""
    feasible = [(number, result) for number, result in results if result.feasible]
    return max(feasible, key=lambda pair: (pair[1].speedup, -pair[0]), default=None)
