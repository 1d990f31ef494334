"""What adaptive drafting costs and saves on this machine: vanilla vs a draft that never matches
vs a trained draft, each with adaptive on and off, in tree and chain mode (greedy).

The never-matching draft is a real DraftModel of the trained draft's size whose reduced vocabulary
holds only tokens the target never emits on these prompts (checked: its tau must be exactly 1), so
it pays the full cost of drafting and gains nothing. Every method first runs once untimed (warm-up);
then `repeats` rounds time every method over all prompts, the methods taking turns prompt by
prompt so that a busy spell of the shared machine hits them alike; the table gives each method's
median round. Wall seconds are what a user waits; process CPU seconds are also reported because
on a shared machine they hardly see other jobs (one torch thread: the CPU time is our work).
Each method keeps one decoder throughout, as a server would (the adaptive policy
carries over between generations).

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/adaptive_decoding.py \
        --trained /tmp/drafts/shapes-eagle240 --out experiments/adaptive_decoding.json
"""

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from specdec import DecodeConfig, DecodeShape, DraftConfig, DraftModel, SpeculativeDecoder
from specdec.bench.methods import DecoderMethod, MethodRun, Sampling
from specdec.bench.summary import decode_seconds_per_step, total
from targets import load_target
from userdata import prompt_set

TREE = DecodeShape(depth=6, top_k=4, total_tokens=32)
CHAIN = DecodeShape.chain(4)


def never_matching_draft(target, like: DraftConfig, references: list[list[int]]) -> DraftModel:
    """`like`'s architecture over a vocabulary of tokens absent from every reference output."""
    emitted = {token for tokens in references for token in tokens}
    unused = [token for token in range(target.vocab_size) if token not in emitted][:8]
    cfg = DraftConfig.for_target(target, interaction=like.interaction,
                                 injected_layers=list(like.injected_layers),
                                 num_layers=like.num_layers, num_heads=like.num_heads,
                                 intermediate_size=like.intermediate_size,
                                 draft_vocab_size=len(unused))
    return DraftModel.random(cfg, target, unused)


def methods(target, trained: DraftModel, never: DraftModel) -> list[DecoderMethod]:
    found = [DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))]
    for label, draft in (("never-matching", never), ("trained", trained)):
        for mode_name, shape in (("tree", TREE), ("chain", CHAIN)):
            for adaptive in (True, False):
                name = f"{label} {mode_name} adaptive={'on' if adaptive else 'off'}"
                config = DecodeConfig(shape, adaptive=adaptive)
                found.append(DecoderMethod(name, "draft", SpeculativeDecoder(target, draft, config)))
    return found


@dataclass
class Round:
    wall: float = 0.0  # seconds over all prompts
    cpu: float = 0.0  # process CPU seconds over all prompts
    runs: list[MethodRun] = field(default_factory=list)


def timed_round(candidates: list[DecoderMethod], prompts, sampling: Sampling) -> dict[str, Round]:
    """One Round per method name, the methods taking turns on each prompt."""
    rounds = {method.name: Round() for method in candidates}
    for prompt in prompts:
        for method in candidates:
            wall, cpu = time.perf_counter(), time.process_time()
            run = method.run(prompt, sampling)
            timed = rounds[method.name]
            timed.wall += time.perf_counter() - wall
            timed.cpu += time.process_time() - cpu
            timed.runs.append(run)
    return rounds


def main() -> None:
    parser = turn_arguments(__doc__, target="shapes", prompts=8, new_tokens=64, repeats=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.target)
    prompts = test_prompts(target, args.target, args.prompts)
    references = greedy_references(target, prompts, args.new_tokens)
    trained = DraftModel.from_pretrained(args.trained, target)
    candidates = methods(target, trained, never_matching_draft(target, trained.config, references))
    compare(target, prompts, candidates, references, args, trained_draft=args.trained,
            cpu_count=os.cpu_count())


def turn_arguments(doc: str, target: str, prompts: int, new_tokens: int, repeats: int
                   ) -> argparse.ArgumentParser:
    """The arguments every comparison of methods taking turns takes (this script's and the
    scripts that reuse its timing): defaults as given."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--target", default=target)
    parser.add_argument("--trained", required=True, help="a trained draft checkpoint directory")
    parser.add_argument("--prompts", type=int, default=prompts)
    parser.add_argument("--new-tokens", type=int, default=new_tokens)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def test_prompts(target, name: str, count: int, offset: int = 0) -> list:
    """The embedded set's test prompts offset .. offset + count, prepared for `target`."""
    pairs = prompt_set(name, "test", offset + count)[offset:]
    return [target.prepare(prompt=text, images=[image] if image is not None else None)
            for text, image in pairs]


def compare(target, prompts, candidates: list[DecoderMethod], references: list[list[int]],
            args: argparse.Namespace, **record) -> None:
    """Time `candidates` taking turns (`timed_rounds`), then print their table and write it to
    args.out as JSON with the run's settings and `record`."""
    rounds, (load_before, load_after) = timed_rounds(candidates, prompts,
                                                     Sampling(args.new_tokens), args.repeats)
    rows = summarize(candidates, rounds, references)
    result = {"target": target.spec, "prompts": len(prompts), "new_tokens": args.new_tokens,
              "threads": args.threads, "repeats": args.repeats, **record,
              "torch": torch.__version__,
              "load_average_1m": {"before": load_before, "after": load_after}, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(rows))
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")


def greedy_references(target, prompts, new_tokens: int) -> list[list[int]]:
    """Vanilla's greedy output per prompt: what every method must reproduce."""
    vanilla = SpeculativeDecoder(target, None)
    return [vanilla.generate(inputs=p, max_new_tokens=new_tokens).token_ids for p in prompts]


def timed_rounds(candidates: list[DecoderMethod], prompts, sampling: Sampling, repeats: int
                 ) -> tuple[dict[str, list[Round]], tuple[float, float]]:
    """A warm-up run of every method, then `repeats` rounds; and the 1-minute load average
    before and after them."""
    for method in candidates:
        method.run(prompts[0], sampling)
    load_before = os.getloadavg()[0]
    rounds: dict[str, list[Round]] = {method.name: [] for method in candidates}
    for _ in range(repeats):
        for name, timed in timed_round(candidates, prompts, sampling).items():
            rounds[name].append(timed)
    return rounds, (load_before, os.getloadavg()[0])


def summarize(candidates, rounds: dict[str, list[Round]], references) -> list[dict]:
    """Per method: median wall and CPU seconds over rounds, cost over vanilla's, and the stats of
    its median-wall round (tau, drafted share, efficiency as `draftnas bench` computes it)."""
    def median_round(found: list[Round]) -> Round:
        return sorted(found, key=lambda timed: timed.wall)[len(found) // 2]

    def median_cpu(found: list[Round]) -> float:
        return statistics.median(timed.cpu for timed in found)

    vanilla = median_round(rounds["vanilla"])
    vanilla_cpu = median_cpu(rounds["vanilla"])
    t_target_1 = decode_seconds_per_step(total(vanilla.runs))
    rows = []
    for method in candidates:
        timed = median_round(rounds[method.name])
        stats = total(timed.runs)
        speedup = vanilla.wall / timed.wall
        rows.append({
            "method": method.name, "wall_s": timed.wall, "cpu_s": median_cpu(rounds[method.name]),
            "wall_rounds_s": [round(found.wall, 3) for found in rounds[method.name]],
            "cpu_rounds_s": [round(found.cpu, 3) for found in rounds[method.name]],
            "cost_wall": timed.wall / vanilla.wall,
            "cost_cpu": median_cpu(rounds[method.name]) / vanilla_cpu,
            "speedup": speedup, "tau": stats.tau,
            "drafted_steps": stats.drafted_steps, "steps": stats.steps,
            "efficiency": speedup / (stats.tau * t_target_1 / decode_seconds_per_step(stats)),
            "equals_vanilla": [run.token_ids for run in timed.runs] == references,
        })
    return rows


def markdown(rows: list[dict]) -> str:
    header = ("| method | wall s | cost / vanilla (wall) | CPU s | cost / vanilla (CPU) | tau | "
              "drafted / steps | efficiency | equals vanilla |")
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        lines.append(f"| {row['method']} | {row['wall_s']:.3f} | {row['cost_wall']:.2f} | "
                     f"{row['cpu_s']:.3f} | {row['cost_cpu']:.2f} | {row['tau']:.2f} | "
                     f"{row['drafted_steps']} / {row['steps']} | {row['efficiency']:.2f} | "
                     f"{'yes' if row['equals_vanilla'] else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
