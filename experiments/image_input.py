"""Does a tokens-only draft that sees the image do better where the answer names what it shows?

Two tokens-only drafts of one VLM target (the `specllava` space: 2 layers, interaction none),
trained alone alike, that differ only in what they read at image positions:
- `placeholder`: the image token's embedding (blind to the image);
- `features`: the target's merged image features there (Spec-LLaVA's draft VLM, DREAM's input).
Each is measured two ways, on the test split's prompts with the target's own greedy answers:
- tau by position in the answer: the first sentence (where a description names the shape and
  colour) against the rest, from the acceptance estimator's replay of chain decoding
  (nas.estimator: exact for a chain, what the decoder measures; bonus token included);
- `draftnas bench` (greedy, the same chain, drafting every step): tau, tokens/s, speedup.
Writes <out>.md and <out>.json with the figures and the command.

Run (the shapes target built; about 30 min of quiet CPU at the default budget):
    HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python experiments/image_input.py
Smoke (seconds):
    .venv/bin/python experiments/image_input.py --target shapes:test --budget smoke \
        --work runs/image_input_smoke --out runs/image_input_smoke/image_input --n-prompts 2 \
        --max-new-tokens 8 --train train.steps=1 --train prompts=8
"""

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from own_data import run  # experiments/, beside this script: a command's result, resumable

from nas.commands import command_config
from nas.estimator import AcceptanceEstimator, ValidationSet
from nas.run_context import RunContext, TargetConfig
from search_spaces import IMAGE_INPUTS
from search_spaces.loading import SPACES_DIR
from specdec import DraftModel
from supernet.corpus import cached_corpus
from userdata import DataConfig, UserData

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="shapes")
    parser.add_argument("--space", default="specllava",
                        help="a one-point space (a name or a YAML file) of a tokens-only draft; "
                             "image_input is varied")
    parser.add_argument("--budget", default="default")
    parser.add_argument("--train", action="append", default=[],
                        help="an override of both trainings, e.g. --train train.steps=100")
    parser.add_argument("--k", type=int, default=4, help="the chain both drafts decode with")
    parser.add_argument("--n-prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/image_input"))
    parser.add_argument("--out", type=Path, default=HERE / "image_input")
    return parser.parse_args()


def space_file(work: Path, space: str, image_input: str) -> Path:
    """The named space with `image_input` as its only choice, written under `work`."""
    named = SPACES_DIR / f"{space}.yaml"
    data = yaml.safe_load((named if named.is_file() else Path(space)).read_text())
    data["name"] = f"{data['name']}-{image_input}"
    data["dimensions"]["image_input"] = [image_input]
    path = work / "spaces" / f"{data['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def first_sentence_lengths(target, corpus) -> list[int]:
    """Per answer, how many of its tokens make its first sentence (up to the first '.')."""
    lengths = []
    for item in corpus:
        response = item.input_ids[item.prompt_len:].tolist()
        length = len(response)
        for end in range(1, len(response) + 1):
            if "." in target.tokenizer.decode(response[:end], skip_special_tokens=True):
                length = end
                break
        lengths.append(length)
    return lengths


def tau_by_position(estimator: AcceptanceEstimator, draft, k: int,
                    first: list[int]) -> dict[str, dict]:
    """Chain-k decoding replayed over each answer (as AcceptanceEstimator.replay), its steps
    split by where they start: in the answer's first sentence or after it."""
    validation = estimator.validation
    accepted = estimator.accepted_from(estimator.target_ranks(draft, k) < 1).tolist()
    totals = {"first_sentence": [0, 0], "rest": [0, 0]}
    for row, prompt_len, length, first_len in zip(accepted, validation.prompt_lens,
                                                  validation.lengths, first, strict=True):
        response = length - prompt_len
        emitted, root_slot = 1, prompt_len - 1  # the prefill emits the answer's first token
        while emitted < response:
            new = min(row[root_slot] + 1, response - emitted)
            region = totals["first_sentence" if emitted < first_len else "rest"]
            region[0], region[1] = region[0] + 1, region[1] + new
            emitted, root_slot = emitted + new, root_slot + row[root_slot] + 1
    steps = sum(region[0] for region in totals.values())
    tokens = sum(region[1] for region in totals.values())
    totals["all"] = [steps, tokens]
    return {name: {"steps": s, "tokens": t, "tau": round(t / s, 4) if s else None}
            for name, (s, t) in totals.items()}


def main() -> None:
    args = parse()
    ctx = RunContext.from_environment()
    trained = {}
    for image_input in IMAGE_INPUTS:
        cfg = replace(command_config("train", [f"budget={args.budget}", *args.train]),
                      target=args.target, resume=True,
                      search_space=str(space_file(args.work, args.space, image_input)))
        trained[image_input] = run("train", cfg, args.work / image_input, ctx)
    target = ctx.target(TargetConfig(target=args.target, device="cpu", dtype="float32"))
    data = UserData(DataConfig(), target.spec)
    prompts = data.take(target, "test", args.n_prompts, args.max_new_tokens)
    corpus = cached_corpus(target, prompts.inputs, args.max_new_tokens, ctx.home)
    estimator = AcceptanceEstimator(ValidationSet.build(target, corpus, [], image_scores=False,
                                                        image_embeds=True))
    first = first_sentence_lengths(target, corpus)
    positions = {}
    with torch.inference_mode():
        for image_input in IMAGE_INPUTS:
            draft = DraftModel.from_pretrained(args.work / image_input / "draft", target)
            positions[image_input] = tau_by_position(estimator, draft, args.k, first)
    bench_cfg = replace(
        command_config("bench", ["mode=chain", f"k={args.k}"]), target=args.target,
        drafts=[args.work / image_input / "draft" for image_input in IMAGE_INPUTS],
        baselines=[], adaptive=False, n_prompts=args.n_prompts,
        max_new_tokens=args.max_new_tokens, threads=args.threads)
    bench = run("bench", bench_cfg, args.work / "bench", ctx)
    report = summarise(args, trained, positions, first, bench)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(args.out.with_suffix(".md").read_text())


def summarise(args: argparse.Namespace, trained: dict, positions: dict, first: list[int],
              bench: dict) -> dict:
    rows = {row["method"].split(" ")[0].removeprefix("draft:"): row
            for row in bench["result"]["rows"] if row["kind"] == "draft"}
    drafts = {}
    for image_input in IMAGE_INPUTS:
        train, row = trained[image_input]["result"], rows[image_input]
        drafts[image_input] = {
            "steps": train["steps"], "train_seconds": train["train_seconds"],
            "final_loss": train["final_metrics"].get("loss"), "by_position": positions[image_input],
            "bench_tau": row["tau"], "tokens_per_s": row["tokens_per_s"],
            "speedup": row["speedup"], "equals_vanilla": row["equals_vanilla"]}
    return {"target": bench["result"]["target"], "space": args.space, "budget": args.budget,
            "chain": args.k, "answers": len(first), "first_sentence_tokens": sum(first),
            "max_new_tokens": args.max_new_tokens, "threads": args.threads,
            "quantize": bench["result"]["quantize"],
            "load_average_1m": bench["result"]["load_average_1m"],
            "command": shlex.join(["python", "experiments/image_input.py", *sys.argv[1:]]),
            "drafts": drafts,
            "seconds": round(sum(run["seconds"] for run in [*trained.values(), bench]), 1)}


def markdown(report: dict) -> str:
    lines = [
        (f"# What a tokens-only draft reads at image positions: `{report['target']}`, "
         f"`{report['space']}` drafts, budget {report['budget']}"),
        "",
        (f"{report['answers']} test prompts with the target's greedy answers "
         f"({report['first_sentence_tokens']} tokens in first sentences), chain "
         f"{report['chain']}, {report['max_new_tokens']} new tokens at most. tau: tokens per "
         "target forward, the bonus token included; by position from the acceptance estimator's "
         "replay (a step counts where it starts), the bench's drafting every step, threads="
         f"{report['threads']}, quantize={report['quantize']}, load average (1 min) during the "
         f"bench {report['load_average_1m']['before']:.2f} -> "
         f"{report['load_average_1m']['after']:.2f} (above 1: other jobs shared the CPU, so "
         "tokens/s and speedups are noisy; tau is not)."),
        "",
        ("| image input | steps | final loss | tau, first sentence | tau, the rest | tau, all | "
         "bench tau | tokens/s | speedup | equals vanilla |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    def tau(region: dict) -> str:
        return "-" if region["tau"] is None else f"{region['tau']:.3f} ({region['steps']} steps)"

    for image_input, draft in report["drafts"].items():
        loss, where = draft["final_loss"], draft["by_position"]
        lines.append(
            f"| {image_input} | {draft['steps']} | {'-' if loss is None else f'{loss:.3f}'} | "
            f"{tau(where['first_sentence'])} | {tau(where['rest'])} | {tau(where['all'])} | "
            f"{draft['bench_tau']:.3f} | "
            f"{draft['tokens_per_s']:.2f} | {draft['speedup']:.2f}x | {draft['equals_vanilla']} |")
    lines += ["", f"Took {report['seconds'] / 60:.1f} min.", "",
              f"Command: `HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE {report['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
