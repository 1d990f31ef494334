"""Stopping a step's draft early on a real model: a trained draft decoding its recommended shape
with the tree's early stop at several thresholds (`DecodeConfig.stop_below`: the tree stops
growing once its best frontier node's cumulative draft probability is below it; 0 drafts the
whole shape), beside vanilla. Greedy, the shipped adaptive policy, the target's fp16 runtime;
methods take turns prompt by prompt and each keeps one decoder, as in
experiments/adaptive_decoding.py, whose timing and table this reuses. The prompts are test
prompts after the first `--offset`, which `draftnas bench` reports, so that the default chosen
here is not fitted to the bench's prompts.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/early_stop.py \
        --target smollm2 --trained <draft> --prompts 16 --offset 16 --new-tokens 128 \
        --stops 0 0.1 0.2 0.3 --out experiments/early_stop.json
"""

import argparse
import json
from pathlib import Path

import torch
from adaptive_decoding import (  # experiments/, beside this script
    greedy_references,
    markdown,
    summarize,
    timed_rounds,
)

from specdec import DraftModel, SpeculativeDecoder
from specdec.bench.methods import DecoderMethod, Sampling
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target
from userdata import prompt_set


def methods(target, draft: DraftModel, stops: list[float]) -> list[DecoderMethod]:
    found = [DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))]
    for stop in stops:
        config, _ = shaped_config(draft.config.decode, ShapeKeys(), stop_below=stop)
        found.append(DecoderMethod(f"{config.shape.label}, stop_below={stop}", "draft",
                                   SpeculativeDecoder(target, draft, config)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--quantize", default="fp16", help="the target's runtime: none | fp16")
    parser.add_argument("--trained", required=True, help="a trained draft checkpoint directory")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--offset", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--stops", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.target, quantize=args.quantize)
    pairs = prompt_set(args.target, "test", args.offset + args.prompts)[args.offset:]
    prompts = [target.prepare(prompt=text, images=[image] if image is not None else None)
               for text, image in pairs]
    sampling = Sampling(args.new_tokens)
    references = greedy_references(target, prompts, args.new_tokens)
    candidates = methods(target, DraftModel.from_pretrained(args.trained, target), args.stops)
    rounds, (load_before, load_after) = timed_rounds(candidates, prompts, sampling, args.repeats)
    rows = summarize(candidates, rounds, references)
    result = {"target": target.spec, "quantize": args.quantize, "prompts": len(prompts),
              "offset": args.offset, "new_tokens": args.new_tokens, "threads": args.threads,
              "repeats": args.repeats, "trained_draft": args.trained, "torch": torch.__version__,
              "load_average_1m": {"before": load_before, "after": load_after}, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(rows))
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")


if __name__ == "__main__":
    main()
