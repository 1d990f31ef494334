"""Does the dream_s supernet rank drafts like training them one by one? (issue 4)

1. `draftnas train target=shapes search_space=dream_s budget=<budget>`: the supernet.
2. Eight configs of dream_s, one per interaction x vocabulary (full, reduced), the other
   dimensions a seeded draw, each extracted without retraining. Stratified because a plain
   seeded draw gave six tokens-only / cross-attention drafts within 2% of each other, whose
   order no ranking can get right; the rule does not look at any tau.
3. The same eight configs trained alone: the same recipe and budget over a one-point space.
4. tau of every draft with the bundled decoder (tree depth 6, top-k 4, 32 tokens, greedy) on
   description prompts of easy-vqa test images; extracted tau / standalone tau per config and
   Kendall's rank correlation between the two lists.
Writes experiments/supernet_ranking.md (and a JSON of the raw numbers beside the work dir).
Resumable: finished trainings in --work are reused.

    .venv/bin/python experiments/supernet_ranking.py --budget default
"""

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from nas.commands import command_config
from nas.run_context import RunContext
from nas.run_dir import execute
from search_spaces import DraftArch, ResolvedSpace
from specdec import DecodeConfig, DecodeShape, SpeculativeDecoder
from supernet.checkpoint import load_supernet
from supernet.corpus import cached_corpus, vocabulary_ranking
from supernet.distributed import World
from supernet.extract import extract
from supernet.sandwich import with_interaction
from supernet.trainer import SupernetRecipe
from targets.embedded.shapes.data import DESCRIBE_PROMPT
from userdata import DataConfig, UserData, prompt_set

# adaptive=False: the draft's own tau, with no plain steps mixed in.
TREE = DecodeConfig(DecodeShape(depth=6, top_k=4, total_tokens=32), adaptive=False)


def pick_configs(space: ResolvedSpace, count: int, seed: int = 0) -> list[DraftArch]:
    """`count` distinct configs cycling through every (interaction, vocabulary) pair."""
    rng, chosen = random.Random(seed), []
    strata = [(interaction, vocab) for interaction in space.interaction
              for vocab in space.draft_vocab_size]
    while len(chosen) < count:
        interaction, vocab = strata[len(chosen) % len(strata)]
        arch = with_interaction(space, space.sample(rng), interaction, rng)
        arch = replace(arch, draft_vocab_size=vocab)
        if arch not in chosen:
            chosen.append(arch)
    return chosen


def measure_tau(target, draft, prompts, max_new_tokens: int) -> float:
    decoder = SpeculativeDecoder(target, draft, TREE)
    tokens = steps = 0
    for text, image in prompts:
        stats = decoder.generate(prompt=text, images=[image], max_new_tokens=max_new_tokens).stats
        tokens, steps = tokens + stats.step_tokens, steps + stats.steps
    return tokens / steps


def train_config(args) -> Any:
    """`draftnas train`'s config with the budget group `args.budget` (a file of conf/budget/)."""
    return replace(command_config("train", [f"budget={args.budget}"]),
                   data=DataConfig(source="shapes"))


def train_alone(args, ctx: RunContext, target, supernet_run: Path, arch: DraftArch, index: int):
    """The supernet's recipe and budget over the one-point space of `arch`; its draft."""
    run_dir = args.work / f"alone-{index}"
    cfg = train_config(args)
    superspace, meta = load_supernet(supernet_run / "supernet", target)
    space = superspace.space.point(arch)
    prompts = UserData(cfg.data, target.spec).take(target, "train", cfg.prompts,
                                                   cfg.max_new_tokens)
    corpus = cached_corpus(target, prompts.inputs, cfg.max_new_tokens, ctx.home)
    ranking = vocabulary_ranking(superspace.space.draft_vocab_size, corpus, target)
    recipe = SupernetRecipe(cfg.train, run_dir, World(0, 1, "cpu"))
    recipe.setup(target, space, corpus, ranking, meta.intermediate_tap, None, resume=True)
    summary = recipe.train()
    recipe.cleanup()
    return extract(recipe.superdraft, arch), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="shapes", help="shapes, or its built directory")
    parser.add_argument("--budget", default="default")
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--work", type=Path, default=Path("runs/supernet_ranking"))
    parser.add_argument("--out", type=Path, default=Path("experiments/supernet_ranking.md"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    supernet_run = args.work / "supernet"
    started = time.perf_counter()
    ctx = RunContext.from_environment()
    train = replace(train_config(args), target=args.target, search_space="dream_s", resume=True)
    if not (supernet_run / "supernet").is_dir():
        execute("train", train, supernet_run, ctx)
    supernet_result = json.loads((supernet_run / "result.json").read_text())["result"]
    torch.set_num_threads(1)  # as `draftnas train` does: spinning threads are slower on a busy CPU
    target = ctx.target(train)
    superdraft, _ = load_supernet(supernet_run / "supernet", target)
    prompts = [(text, image) for text, image in prompt_set("shapes", "test", 4 * args.prompts)
               if text == DESCRIBE_PROMPT][: args.prompts]
    rows = []
    for index, arch in enumerate(pick_configs(superdraft.space, args.configs)):
        with torch.no_grad():
            extracted = measure_tau(target, extract(superdraft, arch), prompts,
                                    args.max_new_tokens)
        alone, summary = train_alone(args, ctx, target, supernet_run, arch, index)
        with torch.no_grad():
            standalone = measure_tau(target, alone, prompts, args.max_new_tokens)
        rows.append({"arch": arch.to_dict(), "extracted_tau": extracted,
                     "standalone_tau": standalone, "standalone_train_seconds":
                     summary["train_seconds"]})
        print(f"[{index}] {arch}: extracted {extracted:.3f} alone {standalone:.3f}", flush=True)
    correlation = kendalltau([r["extracted_tau"] for r in rows],
                             [r["standalone_tau"] for r in rows]).statistic
    report = {"budget": args.budget, "prompts": len(prompts), "tree": TREE.shape.to_dict(),
              "supernet_training": supernet_result, "rows": rows, "kendall_tau": correlation,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (args.work / "supernet_ranking.json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.write_text(markdown(report))
    print(args.out)


def markdown(report: dict) -> str:
    train = report["supernet_training"]
    lines = [
        "# Supernet ranking on `shapes` (dream_s)",
        "",
        (f"Produced by `experiments/supernet_ranking.py --budget {report['budget']}`. tau = tokens "
        "per target forward, bonus token included, bundled decoder: tree depth 6, top-k 4, 32 "
        f"tokens, greedy; {report['prompts']} description prompts of easy-vqa test images."),
        "",
        (f"Supernet training: {train['steps']} steps in {train['train_seconds']} s, "
        f"{train['samples_per_second']} samples/s, peak memory {train['peak_memory_mb']} MB."),
        "",
        ("| # | interaction | taps | layers | heads | ffn | keep | vocab | tau extracted | "
        "tau alone | ratio |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(report["rows"]):
        arch = row["arch"]
        lines.append(
            f"| {i} | {arch['interaction']} | {arch['injected_layers']} | {arch['num_layers']} | "
            f"{arch['num_heads']} | {arch['intermediate_size']} | {arch['vision_keep_ratio']} | "
            f"{arch['draft_vocab_size'] or 'full'} | {row['extracted_tau']:.3f} | "
            f"{row['standalone_tau']:.3f} | {row['extracted_tau'] / row['standalone_tau']:.3f} |")
    ratios = [r["extracted_tau"] / r["standalone_tau"] for r in report["rows"]]
    lines += ["", (f"Kendall rank correlation: {report['kendall_tau']:.3f}; extracted / alone: "
              f"min {min(ratios):.3f}, mean {sum(ratios) / len(ratios):.3f}."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
