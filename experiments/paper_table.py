"""The DREAM-S paper's table, measured here: every method and the ablations, at temperature 0 and 1.

Input: a finished `draftnas pipeline` run (target built, supernet trained, searched and exported,
eagle and dream trained alone with the same budget). This script adds, from that run's supernet
(inherited weights, no retraining), one-knob-at-a-time variants of the searched draft:
  - `none`: no target features (a tokens-only draft); this and the next two start from the
    searched draft, or from it with concat on the entropy layer when it reads no features;
  - `top` / `entropy`: the top layer vs the entropy-chosen layers of the calibration;
  - `keep 1.0 / 0.75 / 0.5 / 0.25`: image positions kept in the draft's context (VLMs only);
  - `tree` / `chain`: the searched draft decoded with the baselines' tree (6/4/32) vs a chain;
  - `eagle arch + searched shape`: what the decoding shape alone is worth.
then runs `draftnas bench` on all of them (vanilla, assisted generation, prompt lookup, the three
pipeline drafts and the variants) at temperature 0 and at temperature 1, on the same prompts,
and writes one markdown page with both tables and a plot.

    .venv/bin/python experiments/paper_table.py --pipeline runs/pipeline/<run> \
        --out experiments/paper_shapes.md

Resumable: variants already written and benches already finished in --work are reused.
"""

import argparse
import json
import os
import platform
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from predicted_vs_bench import draft_arch  # experiments/, beside this script

from nas.candidates import Candidate
from nas.commands import command_config
from nas.run_context import RunContext, TargetConfig
from nas.run_dir import execute
from search_spaces import SpaceError
from specdec.shape import DEFAULT_SHAPE, DecodeShape
from supernet.checkpoint import load_supernet
from supernet.extract import extract

PIPELINE_DRAFTS = ("searched", "eagle", "dream")


def stage_result(run: Path, stage: str) -> dict:
    return json.loads((run / stage / "result.json").read_text())["result"]


def arch_of(draft_dir: Path) -> Candidate:
    return draft_arch(json.loads((draft_dir / "config.json").read_text()))


def variants(searched: Candidate, eagle: Candidate, space, is_vlm: bool) -> dict[str, Candidate]:
    """One knob changed at a time (names become bench rows). The feature ablations (none, top
    vs entropy layer, keep ratio) start from `reads`: the searched draft, or, when it reads no
    target feature, the searched draft with concat on the entropy-chosen layer; the shape
    ablations start from the searched draft."""
    top = space.target.num_layers  # the tap of the last layer's output
    # The space's other one-layer choice is the entropy-chosen layer (search_spaces: entropy:1).
    entropy = next(c for c in space.injected_layers if len(c) == 1 and c != (top,))
    reads = searched if searched.arch.interaction != "none" else Candidate(replace(
        searched.arch, interaction="concat", injected_layers=entropy), searched.shape)

    def changed(base: Candidate, **fields) -> Candidate:
        return Candidate(replace(base.arch, **fields), base.shape)

    chain = searched.shape if searched.shape.is_chain else DecodeShape.chain(3)
    out = {
        "ablation-none": changed(reads, interaction="none", injected_layers=()),
        "ablation-top-layer": changed(reads, injected_layers=(top,)),
        "ablation-entropy-layer": changed(reads, injected_layers=entropy),
        "ablation-tree-6-4-32": Candidate(searched.arch, DEFAULT_SHAPE),
        f"ablation-{chain.label.replace(' ', '-')}": Candidate(searched.arch, chain),
        "eagle-arch-searched-shape": Candidate(eagle.arch, searched.shape),
    }
    if is_vlm:
        for ratio in (1.0, 0.75, 0.5, 0.25):
            out[f"ablation-keep-{ratio}"] = changed(reads, vision_keep_ratio=ratio)
    return out


def write_variants(run: Path, work: Path, ctx: RunContext) -> list[Path]:
    target = ctx.target(TargetConfig(target=stage_result(run, "01-target")["spec"], device="cpu",
                                     dtype="float32"))
    supernet_dir = Path(stage_result(run, "02-train")["supernet"])
    superdraft, _ = load_supernet(supernet_dir, target)
    searched, eagle = arch_of(run / "drafts" / "searched"), arch_of(run / "drafts" / "eagle")
    paths = []
    for name, candidate in variants(searched, eagle, superdraft.space, target.is_vlm).items():
        directory = work / "drafts" / name
        try:
            superdraft.space.validate(candidate.arch)
        except SpaceError as error:  # e.g. eagle's full head in dream_s_cpu: no weights for it
            print(f"{name}: not in the supernet's space, left out ({error})")
            continue
        if not (directory / "config.json").is_file():
            with torch.no_grad():
                draft = extract(superdraft, candidate.arch,
                                {"experiment": "paper_table", "variant": name,
                                 "supernet": str(supernet_dir)}, candidate.shape)
            draft.save_pretrained(directory)
        paths.append(directory)
    return paths


def bench(run: Path, work: Path, drafts: list[Path], temperature: float, extra: list[str],
          ctx: RunContext) -> dict:
    """`draftnas bench` (its config with the `extra` overrides) on the pipeline's target."""
    bench_dir = work / f"bench-t{temperature:g}"
    if not (bench_dir / "result.json").is_file():
        cfg = replace(command_config("bench", extra), target=stage_result(run, "01-target")["spec"],
                      temperature=temperature, drafts=drafts)
        execute("bench", cfg, bench_dir, ctx)
    return json.loads((bench_dir / "result.json").read_text())["result"]


def label(method: str) -> str:
    """A bench row's draft (or method) name: `draft:eagle [image placeholders] (tree 6/4/32, ...)`
    -> `eagle`."""
    return method.removeprefix("draft:").split(" (")[0].split(" [")[0]


def shape_of(method: str) -> str:
    """The decoding shape a draft row names, `-` for the other methods."""
    if not method.startswith("draft:"):
        return "-"
    return method.split(" (", 1)[1].split(",")[0]


def markdown(run: Path, results: dict[float, dict], command: str) -> str:
    greedy, sampled = results[0.0], results[1.0]
    by_name = {label(row["method"]): row for row in sampled["rows"]}
    load = {t: r["load_average_1m"] for t, r in results.items()}
    lines = [
        (f"# Paper table: `{greedy['target']}` ({greedy['prompts']} {greedy['prompt_set']} "
         "test prompts)"), "",
        f"Reproduce: `{command}` (on the pipeline run `{run}`).", "",
        (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
         f"bench threads={greedy['threads']}; load average (1 min) during the benches: "
         + ", ".join(f"T={t:g} {v['before']:.2f} -> {v['after']:.2f}" for t, v in load.items())
         + "."), "",
        ("tau: tokens per target forward, bonus token included. Speedup: tokens/s over vanilla's, "
        "end to end, same prompts, same temperature. Our drafts run as the bench overrides above "
        "say (adaptive=false: drafting every step, as the papers measure, so tau is the draft's "
        "own). searched / eagle / dream: trained by the pipeline with "
        "the same budget (eagle and dream alone, searched extracted from the supernet and "
        "exported); ablation rows and `eagle-arch-searched-shape`: extracted from the same "
        "supernet, inherited weights, no retraining, one knob changed at a time: the feature "
        "ablations (none, top / entropy layer, keep) from the searched draft, or from it with "
        "concat on the entropy-chosen layer when it reads no target feature; the shape ablations "
        "(tree 6/4/32, chain) from the searched draft."),
        "",
        ("| method | decoding shape | tau T=0 | speedup T=0 | equals vanilla | tau T=1 | "
         "speedup T=1 |"),
        "|---|---|---|---|---|---|---|",
    ]
    for row in greedy["rows"]:
        name = label(row["method"])
        other = by_name.get(name, {})
        lines.append("| " + " | ".join([
            name, shape_of(row["method"]), fmt(row.get("tau")),
            fmt(row.get("speedup")), {True: "yes", False: "NO"}.get(row.get("equals_vanilla"),
                                                                     "n/a"),
            fmt(other.get("tau")), fmt(other.get("speedup"))]) + " |")
    lines += ["", "![speedups](paper_" + safe(greedy["target"]) + ".png)", ""]
    return "\n".join(lines)


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def safe(spec: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in Path(spec).name)


def plot(results: dict[float, dict], path: Path) -> None:
    rows = results[0.0]["rows"]
    names = [label(row["method"]) for row in rows]
    sampled = {label(row["method"]): row.get("speedup") for row in results[1.0]["rows"]}
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.5))
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], [row.get("speedup") or 0 for row in rows], 0.4,
            label="temperature 0")
    ax.barh([i + 0.2 for i in y], [sampled.get(n) or 0 for n in names], 0.4,
            label="temperature 1")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over vanilla (measured tokens/s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, required=True, help="a finished pipeline run")
    parser.add_argument("--work", type=Path, default=None,
                        help="where variants and benches go (default: <pipeline>/paper_table)")
    parser.add_argument("--out", type=Path, required=True, help="the markdown page to write")
    parser.add_argument("bench_overrides", nargs="*",
                        help="extra `draftnas bench` overrides, e.g. n_prompts=8 threads=1")
    args = parser.parse_args()
    work = args.work or args.pipeline / "paper_table"
    drafts = [args.pipeline / "drafts" / name for name in PIPELINE_DRAFTS]
    ctx = RunContext.from_environment()
    drafts += write_variants(args.pipeline, work, ctx)
    results = {t: bench(args.pipeline, work, drafts, t, args.bench_overrides, ctx)
               for t in (0.0, 1.0)}
    command = ("python experiments/paper_table.py --pipeline <run> --out "
               f"{args.out} {' '.join(args.bench_overrides)}").strip()
    args.out.write_text(markdown(args.pipeline, results, command))
    plot(results, args.out.with_name(f"paper_{safe(results[0.0]['target'])}.png"))
    print(args.out)


if __name__ == "__main__":
    main()
