"""Check a latency table against measurement: random whole drafts, timed end to end.

For each of `n` random points of the space, decoding shape included (each at a random context
between the profiled ones, so interpolation is tested too) it measures
- `draft`: the draft's cost per step as the decoder pays it: `build_tree` with the whole extracted
  DraftModel over its real cache, then the advance forward (fusion + draft over the accepted slots);
- `step`: a real `SpeculativeDecoder.generate` of `new_tokens` tokens with that draft (random
  weights, no EOS stop), whose time per step (prefill excluded) is compared with the predicted
  step at the generation's mean context and its measured tau;
both on the table's clock (wall, or CPU time for tables measured on a shared CPU);
and reports MAPE and Kendall's tau of predicted against measured for both, plus plain decoding
(one generation before each draft's, their median) that checks T_target(1) end to end.
"""

import random
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from scipy.stats import kendalltau

from hardware_profiles import figures
from hardware_profiles.benches import generation_step_ms
from hardware_profiles.predictor import LatencyPredictor
from hardware_profiles.timing import TimingConfig, pinned_threads, time_call
from search_spaces import DraftArch, ResolvedSpace
from specdec.config import DraftConfig
from specdec.decoder import DecodeConfig, SpeculativeDecoder
from specdec.model import DraftModel
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from specdec.tree import build_tree
from targets import PreparedInputs, Target


@dataclass
class SubnetResult:
    arch: dict
    ctx: int  # target context of the isolated draft measurement
    tau: int  # accepted slots fed to the advance forward
    draft_measured_ms: float
    draft_predicted_ms: float
    step_measured_ms: float  # per step of a real generation, prefill excluded
    step_predicted_ms: float
    step_tau: float  # the generation's measured tau
    step_mean_ctx: float


@dataclass
class Agreement:
    mape: float  # percent
    kendall_tau: float
    max_error: float  # percent


@dataclass
class ValidationReport:
    subnets: list[SubnetResult]
    draft: Agreement
    step: Agreement
    plain_step_measured_ms: float
    plain_step_predicted_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def agreement(predicted: list[float], measured: list[float]) -> Agreement:
    errors = [abs(p - m) / m * 100 for p, m in zip(predicted, measured, strict=True)]
    return Agreement(statistics.fmean(errors), float(kendalltau(predicted, measured).statistic),
                     max(errors))


@torch.inference_mode()
def measure_draft(target: Target, draft: DraftModel, arch: DraftArch, shape: DecodeShape,
                  predictor: LatencyPredictor, ctx: int, tau: int, timing: TimingConfig,
                  generator: torch.Generator) -> float:
    """Median ms of one step's draft work at target context ctx, as the decoder runs it with
    `shape`."""
    cfg, device = draft.config, target.device
    ctx_d = max(round(predictor.draft_context(arch, ctx)), 1)
    width = target.hidden_size

    def hidden(count: int) -> torch.Tensor:
        return torch.randn(1, count, width, generator=generator).to(device, target.dtype)

    def ids(count: int) -> torch.Tensor:
        return torch.randint(3, target.vocab_size - 8, (1, count), generator=generator).to(device)

    cache = draft.new_cache()
    features = None if not cfg.uses_features else hidden(ctx_d)
    out = draft(ids(ctx_d), features, torch.arange(1, ctx_d + 1, device=device)[None], cache,
                logits="last")
    root_hidden, root_logits = out.hidden[0, -1], out.logits[0, -1]
    taps = {tap: hidden(tau) for tap in cfg.injected_layers}
    advance_ids, positions = ids(tau), torch.arange(ctx + 1, ctx + 1 + tau, device=device)[None]
    root = torch.tensor(3, device=device)

    def step() -> None:
        build_tree(draft, cache, root, root_hidden, root_logits, ctx, shape.depth,
                   shape.top_k, shape.total_tokens)
        cache.crop(ctx_d)
        draft(advance_ids, draft.fuse(taps), positions, cache, logits="last")

    return time_call(step, timing, device, reset=lambda: cache.crop(ctx_d)).ms


def decode_config(shape: DecodeShape) -> DecodeConfig:
    # No EOS stop: every run decodes exactly new_tokens tokens, whatever the random draft says;
    # not adaptive: every step drafts, which is the step the table predicts.
    return DecodeConfig(shape, eos_token_ids=[], adaptive=False)


def measure_generation(target: Target, draft: DraftModel | None, shape: DecodeShape,
                       predictor: LatencyPredictor, inputs: PreparedInputs,
                       new_tokens: int, rounds: int = 3) -> tuple[float, float, float]:
    """(ms per step, tau, mean target context) of a generation of new_tokens tokens, prefill
    excluded (benches.generation_step_ms), on the table's clock. The median of `rounds`: one
    generation is a few milliseconds, which one burst of a neighbour on a shared machine can
    double."""
    decoder = SpeculativeDecoder(target, draft, decode_config(shape))
    clock = predictor.table.timing.clock
    runs = [generation_step_ms(decoder, inputs, new_tokens, clock) for _ in range(rounds)]
    stats = runs[-1][1]
    return (statistics.median(ms for ms, _ in runs), stats.tau,
            stats.prompt_tokens + stats.new_tokens / 2)


def validate(target: Target, space: ResolvedSpace, shapes: tuple[DecodeShape, ...],
             predictor: LatencyPredictor,
             inputs: PreparedInputs, n: int = 30, new_tokens: int = 24, seed: int = 0,
             timing: TimingConfig | None = None, threads: int | None = None,
             progress: bool = True) -> ValidationReport:
    from tqdm import tqdm

    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    timing = timing or replace(predictor.table.timing, warmup=3, repeats=15)
    contexts = predictor.table.grid.contexts
    threads = threads or predictor.table.device.threads or torch.get_num_threads()
    results = []
    with pinned_threads(threads):
        # A plain generation before each draft's (the first also warms the target up): their
        # median is T_target(1) over the same minutes as the drafts' steps, as in the profile.
        measure_generation(target, None, DEFAULT_SHAPE, predictor, inputs, new_tokens, rounds=1)
        plain = []
        for index in tqdm(range(n), desc="validate", unit="draft", disable=not progress):
            plain.append(measure_generation(target, None, DEFAULT_SHAPE, predictor, inputs,
                                            new_tokens, rounds=1))
            arch, shape = space.sample(rng), rng.choice(shapes)
            cfg = DraftConfig.for_target(target, **arch.to_dict())
            draft = DraftModel.random(cfg, target, seed=index)
            ctx = rng.randint(contexts[0], contexts[-1])
            tau = rng.randint(1, shape.depth + 1)
            draft_ms = measure_draft(target, draft, arch, shape, predictor, ctx, tau, timing,
                                     generator)
            step_ms, step_tau, mean_ctx = measure_generation(target, draft, shape, predictor,
                                                             inputs, new_tokens)
            results.append(SubnetResult(
                {**arch.to_dict(), "decode": shape.to_dict()}, ctx, tau, draft_ms,
                predictor.draft_ms(arch, shape, ctx, tau), step_ms,
                predictor.step_ms(arch, shape, mean_ctx, step_tau), step_tau, mean_ctx))
    return ValidationReport(
        results,
        agreement([r.draft_predicted_ms for r in results], [r.draft_measured_ms for r in results]),
        agreement([r.step_predicted_ms for r in results], [r.step_measured_ms for r in results]),
        statistics.median(ms for ms, _, _ in plain), predictor.target_step_ms(plain[0][2]))


def plot(report: ValidationReport, path: str | Path, title: str) -> Path:
    """Predicted against measured, one panel per quantity, with the y = x line."""
    plt = figures.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    panels = (("draft cost per step", "draft", report.draft),
              ("decoding step (real generation)", "step", report.step))
    for axis, (label, name, stats) in zip(axes, panels, strict=True):
        measured = [getattr(r, f"{name}_measured_ms") for r in report.subnets]
        predicted = [getattr(r, f"{name}_predicted_ms") for r in report.subnets]
        axis.scatter(measured, predicted, s=18)
        low, high = min(measured + predicted), max(measured + predicted)
        axis.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
        axis.set_xlabel("measured ms")
        axis.set_ylabel("predicted ms")
        axis.set_title(f"{label}\nMAPE {stats.mape:.1f}%, Kendall tau {stats.kendall_tau:.2f}")
    figure.suptitle(title)
    figure.tight_layout()
    return figures.save(figure, path)
