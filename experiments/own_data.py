"""Does the data key make the draft fit the user's traffic? Two drafts of one target, trained
alike but on different prompts, benched on the held-out test split of the user's data file.

- `embedded`: trained on the target's embedded prompt set (data=smollm2, the default);
- `own`: trained on the user's file (data=<file>): its train split, the test split held out.
Both are `draftnas train` runs of one-point space (eagle by default) with the same budget; the
bench decodes the file's test split with each, drafting every step (adaptive=false: the drafts'
own tau), greedily. Writes <out>.md and <out>.json with the figures and the commands.

Run (about an hour of quiet CPU for smollm2 at the default budget):
    HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python experiments/own_data.py
Smoke (any text target with a tokenizer; seconds):
    .venv/bin/python experiments/own_data.py --target <model dir> --budget smoke \
        --work runs/own_data_smoke --out runs/own_data_smoke/own_data --n-prompts 2 \
        --max-new-tokens 8 --train train.steps=1 --train prompts=8
"""

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from nas.commands import command_config
from nas.run_context import RunContext
from nas.run_dir import RESULT_FILE, execute
from userdata import DataConfig

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--data", type=Path, default=HERE / "data" / "recipes_travel_sports.jsonl")
    parser.add_argument("--baseline", default="smollm2", help="the embedded set to compare with")
    parser.add_argument("--space", default="eagle", help="a one-point space: its draft is benched")
    parser.add_argument("--budget", default="default")
    parser.add_argument("--train", action="append", default=[],
                        help="an override of both trainings, e.g. --train train.steps=100")
    parser.add_argument("--n-prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1,
                        help="bench repeats per prompt (tau is the same in each; speed averages)")
    parser.add_argument("--work", type=Path, default=Path("runs/own_data"))
    parser.add_argument("--out", type=Path, default=HERE / "own_data")
    return parser.parse_args()


def finished(run_dir: Path) -> dict | None:
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run(command: str, cfg, run_dir: Path, ctx: RunContext) -> dict:
    """The command's result.json, from an earlier run of this script if it finished."""
    if finished(run_dir) is None:
        execute(command, cfg, run_dir, ctx)
    return finished(run_dir)


def main() -> None:
    args = parse()
    ctx = RunContext.from_environment()
    sources = {"embedded": args.baseline, "own": str(args.data.resolve())}
    trained = {}
    for name, source in sources.items():
        cfg = replace(command_config("train", [f"budget={args.budget}", *args.train]),
                      target=args.target, search_space=args.space, resume=True,
                      data=DataConfig(source=source))
        trained[name] = run("train", cfg, args.work / name, ctx)
    bench_cfg = replace(
        command_config("bench", []), target=args.target, data=DataConfig(source=sources["own"]),
        drafts=[args.work / name / "draft" for name in sources], baselines=[], adaptive=False,
        n_prompts=args.n_prompts, max_new_tokens=args.max_new_tokens, threads=args.threads,
        repeats=args.repeats)
    bench = run("bench", bench_cfg, args.work / "bench", ctx)
    report = summarise(args, sources, trained, bench)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(args.out.with_suffix(".md").read_text())


def summarise(args: argparse.Namespace, sources: dict[str, str], trained: dict[str, dict],
              bench: dict) -> dict:
    rows = {row["method"].split(" ")[0].removeprefix("draft:"): row
            for row in bench["result"]["rows"] if row["kind"] == "draft"}
    drafts = {}
    for name, source in sources.items():
        train, row = trained[name]["result"], rows[name]
        drafts[name] = {
            "data": source, "train_rows": len(train["data"]["splits"]["train"]["rows"]),
            "steps": train["steps"], "train_seconds": train["train_seconds"],
            "final_loss": train["final_metrics"].get("loss"), "tau": row["tau"],
            "acceptance_by_depth": row.get("acceptance_by_depth"),
            "tokens_per_s": row["tokens_per_s"], "speedup": row["speedup"],
            "equals_vanilla": row["equals_vanilla"],
        }
    test = bench["result"]["data"]["splits"]["test"]
    taus = sorted((draft["tau"], name) for name, draft in drafts.items())
    return {"target": bench["result"]["target"], "space": args.space, "budget": args.budget,
            "command": shlex.join(["python", "experiments/own_data.py", *sys.argv[1:]]),
            "bench_data": sources["own"],
            "test_rows": test["rows"], "max_new_tokens": args.max_new_tokens,
            "threads": args.threads, "quantize": bench["result"]["quantize"],
            "drafts": drafts,
            "higher_tau": taus[-1][1] if taus[-1][0] > taus[0][0] else "neither (equal tau)",
            # The runs' own durations, over every invocation that made them.
            "seconds": round(sum(run["seconds"] for run in [*trained.values(), bench]), 1)}


def markdown(report: dict) -> str:
    lines = [
        f"# Own data: `{report['target']}`, {report['space']} drafts, budget {report['budget']}",
        "",
        (f"Both drafts benched on the {len(report['test_rows'])} held-out test prompts of "
        f"`{Path(report['bench_data']).name}` (rows {report['test_rows']}), greedy, "
        f"{report['max_new_tokens']} new tokens, drafting every step, threads="
        f"{report['threads']}, quantize={report['quantize']}. tau: tokens per target forward, "
        "the bonus token included."),
        "",
        "| draft trained on | train rows | steps | final loss | tau | tokens/s | speedup |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, draft in report["drafts"].items():
        loss = draft["final_loss"]
        lines.append(f"| {name} (`{Path(draft['data']).name}`) | {draft['train_rows']} | "
                     f"{draft['steps']} | {'-' if loss is None else f'{loss:.3f}'} | "
                     f"{draft['tau']:.3f} | {draft['tokens_per_s']:.2f} | "
                     f"{draft['speedup']:.2f}x |")
    lines += ["", f"Higher tau: **{report['higher_tau']}**. Took {report['seconds'] / 60:.1f} min.",
              "", f"Command: `HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE {report['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
