"""The searched draft's tau before and after the pipeline trained it alone (winner_steps): the
supernet's slice of the search's best draft, decoded on the held-out prompts the export measured
the trained draft on (the data's validation split, drafting every step: nas.measured_shapes), in
the shapes given; the export's own rows (after) are in its result.json.

    HF_HUB_OFFLINE=1 python experiments/winner_before_after.py --run <pipeline run> \
        --prompts 8 --max-new-tokens 96 "chain 1" "chain 2" "tree 3/2/6"
"""

import argparse
import json
from pathlib import Path

import torch

from nas.measured_shapes import decoded_tau, prepared
from search_spaces import DraftArch
from specdec.shape import DecodeShape
from supernet import extract, load_supernet
from supernet.corpus import cached_corpus
from targets import load_target
from targets.home import draftnas_home
from userdata import DataConfig, UserData


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a pipeline run directory")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--quantize", default="fp16", help="the target's runtime (the bench's)")
    parser.add_argument("shapes", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    best = json.loads((args.run / "04-search" / "best.json").read_text())
    target = load_target(best["target"]["spec"], quantize=args.quantize)
    arch = DraftArch.from_dict({k: v for k, v in best["arch"].items() if k != "decode"})
    superdraft, _ = load_supernet(args.run / "02-train" / "supernet", target)
    draft = extract(superdraft.eval(), arch)
    held_out = UserData(DataConfig(), target.spec).take(target, "validation", args.prompts,
                                                        args.max_new_tokens)
    corpus = cached_corpus(target, held_out.inputs, args.max_new_tokens, draftnas_home())
    prompts = [prepared(target, item) for item in corpus]
    after = json.loads((args.run / "05-export" / "result.json").read_text())["result"]
    rows = {row["shape"]: row for row in (after["refinement"] or {}).get("shapes", [])}
    print("| shape | tau before (supernet slice) | tau after (trained alone) |")
    print("|---|---|---|")
    for label in args.shapes:
        tau = decoded_tau(target, draft, DecodeShape.parse(label), prompts)
        trained = rows.get(label, {}).get("tau", "-")
        print(f"| {label} | {tau:.3f} | {trained} |", flush=True)


if __name__ == "__main__":
    main()
