"""The search's last stage: the decoder's own tau for its best drafts, shape by decoding shape.

The estimator's tau is exact for a chain but an upper estimate for a tree (nas.estimator), so the
trials' ranking across shapes leans towards trees. For the best few distinct drafts of the search
(a candidate's arch: the weights do not depend on the shape) this stage extracts the draft from
the supernet (inherited weights, supernet.extract), decodes validation prompts greedily with the
real SpeculativeDecoder for every shape of the space, and predicts each (draft, shape)'s speedup
from the table with that measured tau. At temperature 0 on the target's own greedy responses the
decoder is deterministic, so the tau is the decoder's, not a sample. The fastest feasible
(draft, shape) is what the search answers (nas.reports: best.json, shapes.csv).
"""

from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from hardware_profiles.predictor import LatencyPredictor
from nas.candidates import Candidate
from nas.objectives import Objective, TrialResult
from search_spaces import DraftArch
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.shape import DecodeShape
from supernet import extract
from supernet.corpus import CorpusItem
from targets import PreparedInputs


@dataclass
class MeasuredShapesConfig:
    # Distinct drafts (best trials first, shapes aside) whose every shape is decoded; 0: skip.
    drafts: int = 5
    # Validation prompts decoded per (draft, shape): the first N of the search's; None: all of
    # them, so that a chain's measured tau and its estimate (the same schedule) are comparable.
    prompts: int | None = None


@dataclass
class ShapeMeasurement:
    trial: int  # the trial whose draft this is (its own shape may differ)
    candidate: Candidate  # the draft with the measured shape
    tau: float  # measured by the decoder, bonus token included
    estimated_tau: float | None  # the estimator's, when this (draft, shape) was a trial
    latency_ms: float  # predicted step with the measured tau
    draft_ms: float
    speedup: float  # predicted with the measured tau
    constraint: float  # latency_ms - budget (<= 0: feasible)

    @property
    def feasible(self) -> bool:
        return self.constraint <= 0

    def metrics(self) -> dict[str, Any]:
        return {"tau": self.tau, "estimated_tau": self.estimated_tau,
                "latency_ms": self.latency_ms, "draft_ms": self.draft_ms, "speedup": self.speedup,
                "constraint": self.constraint, "feasible": self.feasible}


def best_drafts(results: list[tuple[int, TrialResult]], count: int) -> list[tuple[int, DraftArch]]:
    """The `count` best feasible trials by predicted speedup, one per distinct draft."""
    ranked = sorted((pair for pair in results if pair[1].feasible),
                    key=lambda pair: (-pair[1].speedup, pair[0]))
    chosen: dict[DraftArch, tuple[int, DraftArch]] = {}
    for number, result in ranked:
        if len(chosen) == count:
            break
        chosen.setdefault(result.candidate.arch, (number, result.candidate.arch))
    return list(chosen.values())


def measure_shapes(superdraft: Any, corpus: list[CorpusItem], shapes: tuple[DecodeShape, ...],
                   results: list[tuple[int, TrialResult]], predictor: LatencyPredictor,
                   objective: Objective, context: float,
                   config: MeasuredShapesConfig) -> list[ShapeMeasurement]:
    """Every shape of the `config.drafts` best drafts, decoded on `config.prompts` prompts."""
    drafts = best_drafts(results, config.drafts)
    estimated = {r.candidate: r.tau for _, r in results}
    target = superdraft.target
    prompts = [prepared(target, item) for item in corpus[: config.prompts]]
    measurements = []
    with tqdm(total=len(drafts) * len(shapes), desc="measure shapes", unit="shape",
              leave=False) as bar:
        for number, arch in drafts:
            draft = extract(superdraft, arch)
            for shape in shapes:
                tau = decoded_tau(target, draft, shape, prompts)
                candidate = Candidate(arch, shape)
                parts = predictor.breakdown(arch, shape, context, tau)
                measurements.append(ShapeMeasurement(
                    number, candidate, tau, estimated.get(candidate), parts.step_ms,
                    parts.draft_ms, predictor.speedup(arch, shape, tau, context),
                    objective.constraint(parts.step_ms)))
                bar.update(1)
    return measurements


def prepared(target: Any, item: CorpusItem) -> tuple[PreparedInputs, int]:
    """A validation prompt as the decoder takes it, and its response's length."""
    ids = item.input_ids[None, : item.prompt_len].to(target.device)
    kwargs = {name: value.to(target.device) if hasattr(value, "to") else value
              for name, value in item.model_kwargs.items()}
    return PreparedInputs(ids, kwargs, target.image_mask(ids)), len(item.response)


def decoded_tau(target: Any, draft: Any, shape: DecodeShape,
                prompts: list[tuple[PreparedInputs, int]]) -> float:
    """Tokens per target forward over the prompts' responses, pooled over steps. Not adaptive:
    every step drafts, which is the tau the table's step cost is for."""
    decoder = SpeculativeDecoder(target, draft, DecodeConfig(shape, adaptive=False))
    steps = tokens = 0
    for prompt, length in prompts:
        stats = decoder.generate(inputs=prompt, max_new_tokens=length).stats
        steps, tokens = steps + stats.steps, tokens + stats.step_tokens
    return tokens / max(steps, 1)


def best_measured(measurements: list[ShapeMeasurement]) -> ShapeMeasurement | None:
    """The feasible (draft, shape) with the highest predicted speedup."""
    feasible = [m for m in measurements if m.feasible]
    return max(feasible, key=lambda m: (m.speedup, -m.trial), default=None)
