"""Does a latency table predict the speedup `draftnas bench` measures? (issue 5)

For every draft row of a finished bench run: the predicted speedup
`tau x T_target(1) / (T_verify + draft cost)` from the table (hardware_profiles.predictor), with
the tau the bench measured and the draft's own decoding shape, at the mean target context of the
bench's generations, against
- `speedup after prefill` (bench's decode_speedup): what the formula describes, steps only;
- `speedup`: end to end, the prompt's forward and the draft's prefill included.
The table's prediction from the tau the *search* estimated is in the search's best.json; this
isolates the latency side: same tau, predicted against measured time.

    .venv/bin/python experiments/predicted_vs_bench.py --bench <bench run dir> \
        --table hardware_profiles/tables/cpu-shapes.json --out experiments/predicted_vs_bench.md

Adaptive decoding (the bench's default) takes plain steps while drafting loses; run the bench with
adaptive=false for a prediction of drafting every step, as the formula assumes.
"""

import argparse
import json
from pathlib import Path

from hardware_profiles.predictor import LatencyPredictor
from nas.candidates import Candidate
from search_spaces import DIMENSIONS, DraftArch
from specdec.shape import DEFAULT_SHAPE, DecodeShape


def draft_arch(config: dict, shape_label: str | None = None) -> Candidate:
    """The arch of a draft's config.json (its arch fields are DraftArch's), decoding with
    `shape_label` (`chain 5`, `tree 6/4/32`) if given, else with its recommended shape (none
    recommended: the decoder's default)."""
    arch = DraftArch.from_dict({key: config[key] for key in DIMENSIONS})
    if shape_label:
        return Candidate(arch, DecodeShape.parse(shape_label))
    recommended = config.get("decode")
    return Candidate(arch, DecodeShape.from_dict(recommended) if recommended else DEFAULT_SHAPE)


def rows_of(bench_dir: Path, predictor: LatencyPredictor) -> list[dict]:
    payload = json.loads((bench_dir / "result.json").read_text())
    result, drafts = payload["result"], payload["config"]["drafts"]
    by_name = {Path(d).name: Path(d) for d in drafts}
    out = []
    for row in result["rows"]:
        if row["kind"] != "draft":
            continue
        name = row["method"].removeprefix("draft:").split(" (")[0].split(" [")[0]
        shape = row["method"].split(" (")[1].split(",")[0]
        config = json.loads((by_name[name] / "config.json").read_text())
        candidate = draft_arch(config, shape)
        prompts = row["prompts"]
        # Mean target context over the generation: the prompt plus half the answer.
        prompt_tokens = row.get("prompt_tokens")
        context = ((prompt_tokens / prompts if prompt_tokens else predictor.image_tokens)
                   + row["new_tokens"] / prompts / 2)
        predicted = predictor.speedup(candidate.arch, candidate.shape, row["tau"], context)
        out.append({"draft": name, "shape": shape, "tau": row["tau"],
                    "drafted_steps": row.get("drafted_steps"), "context": context,
                    "predicted": predicted, "decode_speedup": row.get("decode_speedup"),
                    "speedup": row["speedup"]})
    return out


def error(predicted: float, measured: float | None) -> str:
    return "n/a" if measured is None else f"{100 * (predicted - measured) / measured:+.1f}%"


def markdown(rows: list[dict], bench_dir: Path, table: Path, command: str) -> str:
    lines = [f"# Predicted against measured speedup ({table.name})", "",
             f"Reproduce: `{command}` (bench run `{bench_dir}`).", "",
             ("| draft | shape | tau (bench) | context | predicted | measured after prefill | "
              "error | measured end to end | error |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['draft']} | {r['shape']} | {r['tau']:.2f} | {r['context']:.0f} | "
                     f"{r['predicted']:.3f} | {fmt(r['decode_speedup'])} | "
                     f"{error(r['predicted'], r['decode_speedup'])} | {r['speedup']:.3f} | "
                     f"{error(r['predicted'], r['speedup'])} |")
    return "\n".join(lines) + "\n"


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, required=True, help="a `draftnas bench` run dir")
    parser.add_argument("--table", type=Path, required=True, help="the latency table")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = rows_of(args.bench, LatencyPredictor.from_file(args.table))
    command = (f"python experiments/predicted_vs_bench.py --bench <run> --table {args.table} "
               f"--out {args.out}")
    text = markdown(rows, args.bench, args.table, command)
    args.out.write_text(text)
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
