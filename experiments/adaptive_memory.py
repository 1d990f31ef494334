"""Adaptive drafting's memory on a real model: a trained draft decoding with the shipped policy,
with the policy's previous memory (0.8 a step for drafted and plain steps alike: about 5 steps),
and drafting every step, beside vanilla. Greedy, the draft's recommended shape, the target's fp16
runtime (the CPU default); methods take turns prompt by prompt and each keeps one decoder, as in
experiments/adaptive_decoding.py, whose timing and table this reuses.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python experiments/adaptive_memory.py \
        --target smollm2 --trained <draft> --prompts 16 --new-tokens 128 \
        --out experiments/adaptive_memory.json
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
from specdec.adaptive import AdaptiveDrafting, AlwaysDraft
from specdec.bench.methods import DecoderMethod, Sampling
from specdec.recommended import ShapeKeys, shaped_config
from targets import load_target
from userdata import prompt_set

# The policy before its drafted steps got a longer memory than its plain steps (specdec.adaptive).
PREVIOUS = {"decay": 0.8, "plain_decay": 0.8}


def methods(target, draft: DraftModel) -> list[DecoderMethod]:
    config, _ = shaped_config(draft.config.decode, ShapeKeys())
    found = [DecoderMethod("vanilla", "vanilla", SpeculativeDecoder(target, None))]
    for name, policy in ((f"adaptive, shipped memory ({config.shape.label})", AdaptiveDrafting()),
                         ("adaptive, previous memory", AdaptiveDrafting(**PREVIOUS)),
                         ("every step", AlwaysDraft())):
        decoder = SpeculativeDecoder(target, draft, config, policy)
        found.append(DecoderMethod(name, "draft", decoder))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="smollm2")
    parser.add_argument("--quantize", default="fp16", help="the target's runtime: none | fp16")
    parser.add_argument("--trained", required=True, help="a trained draft checkpoint directory")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = load_target(args.target, quantize=args.quantize)
    prompts = [target.prepare(prompt=text, images=[image] if image is not None else None)
               for text, image in prompt_set(args.target, "test", args.prompts)]
    sampling = Sampling(args.new_tokens)
    references = greedy_references(target, prompts, args.new_tokens)
    candidates = methods(target, DraftModel.from_pretrained(args.trained, target))
    rounds, (load_before, load_after) = timed_rounds(candidates, prompts, sampling, args.repeats)
    rows = summarize(candidates, rounds, references)
    result = {"target": target.spec, "quantize": args.quantize, "prompts": len(prompts),
              "new_tokens": args.new_tokens, "threads": args.threads, "repeats": args.repeats,
              "trained_draft": args.trained, "torch": torch.__version__,
              "load_average_1m": {"before": load_before, "after": load_after}, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(rows))
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")


if __name__ == "__main__":
    main()
